"""Scripts that read every tier, so they stand above them: the docs site (`reader`, with its
Markdown in `docs_markdown`), the GPU check (`gpu_check`) and the traps table (`render_traps`).
They are neither part of a side nor tests; nothing in `shared/`, `functional/` or `oop/`
imports them."""
