"""The side-by-side reader: `python -m tools.reader` builds the static docs site (docs/site/).

`pages` builds the pages, `style` holds the stylesheet; the names below are what the suite and
`make docs` use.
"""

from tools.reader.pages import (  # noqa: F401
    MARKDOWN,
    ROOT,
    build,
    doc_names,
    explanation_for,
    explanations,
    heading_sections,
    main,
    page,
    proofs,
    read,
    sections,
    title_and_body,
    twin_names,
    twin_page,
    twin_path,
)
