"""One page per test file that proves a section: each test function under its own anchor, so
a "proved by" link lands on the test itself, highlighted like the twins."""

from __future__ import annotations

import ast
import html

from tools.reader.source import read


def test_page_name(path: str) -> str:
    """`tests/test_mlp.py` -> `tests-test_mlp.html`."""
    return "tests-" + path.rsplit("/", 1)[-1].removesuffix(".py") + ".html"


def test_page_body(path: str, code_html) -> str:
    """The file's docstring, then every top-level test function with its decorators, each in a
    section whose id is the function's name."""
    text = read(path)
    tree, lines = ast.parse(text), text.split("\n")
    doc = ast.get_docstring(tree) or ""
    rows = [f"<p>{html.escape(doc)}</p>" if doc else "", '<div class="tests">']
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
            first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
            source = "\n".join(lines[first - 1 : node.end_lineno])
            rows.append(f'<div class="section" id="{node.name}"><h2>{node.name}</h2></div>')
            rows.append(f'<div class="code" data-side="test">{code_html(source)}</div>')
    rows.append("</div>")
    return "\n".join(rows)
