"""The side-by-side reader: `python -m tools.reader` builds the static docs site (docs/site/).

`source` reads the twin files, docs pages and tests as text; `pages` lays out the twin, ladder
and docs pages and builds the site; `grid` sets out a twin page's columns (on a model the
grid's other corners build, all four sides' code, two of them picked to stand side by side);
`frame` gives every page its sidebar, contents and previous/next; `style` is the stylesheet.
The names below are what the suite and `make docs` use.
"""

from tools.docs_markdown import MARKDOWN  # noqa: F401
from tools.reader.pages import build, main, title_and_body, twin_page  # noqa: F401
from tools.reader.source import (  # noqa: F401
    ROOT,
    doc_names,
    explanation_for,
    explanations,
    heading_sections,
    proofs,
    read,
    sections,
    twin_names,
    twin_path,
)
