"""The side-by-side reader: `python -m shared.reader` builds a static site under `docs/site/`.

One page per model: the functional twin on the left, the OOP twin on the right, cut at the
section headers both files carry (`# -- config --` ... `# -- evaluate --`) and laid out row by
row, so corresponding code starts at the same height; each row carries the explanation of the
model's docs page (`docs/models/NAME.md`) under the `## ` heading that names that section,
rendered from Markdown (its relative links and figures resolve from `docs/site/` as from
`docs/models/`, one folder down from `docs/`). One
ladder page per side puts level 0, level 1 and level 2 of the MLP next to each other. The pages
are plain HTML with one stylesheet beside them: they open from the file system, with no server
and nothing fetched from the network. Text processing only: this never imports jax or torch.
"""

from __future__ import annotations

import argparse
import html
import os
import re
import sys
from dataclasses import dataclass

from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECTION = re.compile(r"^# -- (.+) --$", re.MULTILINE)
PROVES = re.compile(r"^@pytest\.mark\.proves\(([^)]*)\)\s*$", re.MULTILINE)
TEST_DEF = re.compile(r"^def (test_\w+)\(", re.MULTILINE)
STYLE = """
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1800px; padding: 0 1em; }
h1 { font-size: 1.5em; } a { color: #0550ae; }
.twins { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); column-gap: 1em; }
.twins > .head { font-weight: bold; border-bottom: 2px solid #888; padding: .3em 0; }
.section { grid-column: 1 / -1; margin-top: 1.2em; border-top: 1px solid #ccc; }
.section h2 { font-size: 1.1em; margin: .4em 0; }
.explain { grid-column: 1 / -1; color: #333; font-size: .92em; max-width: 60em; min-width: 0;
  overflow-x: auto; }
.explain table { border-collapse: collapse; } .explain td, .explain th { border: 1px solid #ccc;
  padding: .2em .5em; } .explain img { max-width: 100%; }
.proofs { grid-column: 1 / -1; font-size: .85em; margin: .2em 0 .4em; }
.code { overflow-x: auto; min-width: 0; } .code pre { margin: 0; font-size: 12.5px; }
.ladder { display: grid; grid-template-columns: repeat(3, minmax(0, 1fr)); column-gap: 1em; }
@media (max-width: 1000px) {
  .twins, .ladder { grid-template-columns: minmax(0, 1fr); }
  .twins > .head { display: none; }
  .code::before { content: attr(data-side); font-weight: bold; display: block; }
}
"""


@dataclass(frozen=True)
class Section:
    name: str  # "config", "layers", ..., or "" for the text before the first header
    code: str


def sections(source: str) -> list[Section]:
    """A twin file cut at its `# -- name --` headers; the text above the first is the preamble."""
    marks = list(SECTION.finditer(source))
    out = [Section("", source[: marks[0].start()] if marks else source)]
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(source)
        out.append(Section(m.group(1), source[m.end() : end].strip("\n")))
    return out


def explanations(markdown: str) -> dict[str, str]:
    """`## ` heading (lower case) -> the text under it, from a model's docs page."""
    parts = re.split(r"^## (.+)$", markdown, flags=re.MULTILINE)
    return {parts[i].strip().lower(): parts[i + 1].strip() for i in range(1, len(parts), 2)}


def explanation_for(name: str, texts: dict[str, str]) -> str:
    """The docs text for a section: the heading equal to its name, else the first heading that
    contains it ("loss" and "train step" both read "Loss and train step")."""
    if name in texts:
        return texts[name]
    return next((t for heading, t in texts.items() if name and name in heading), "")


MARKDOWN = MarkdownIt("commonmark").enable("table")


def proofs() -> dict[tuple[str, str], list[tuple[str, str]]]:
    """`(model, section) -> [(test file, test name)]`, read as text from the tests' markers
    `@pytest.mark.proves("model", "section", ...)` (the test below the marker proves those
    sections of that model's twins)."""
    out: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for name in sorted(os.listdir(os.path.join(ROOT, "tests"))):
        if not (name.startswith("test_") and name.endswith(".py")):
            continue
        text = read(f"tests/{name}")
        for m in PROVES.finditer(text):
            model, *names = re.findall(r'"([^"]+)"', m.group(1))
            test = TEST_DEF.search(text, m.end())
            for section in names:
                out.setdefault((model, section), []).append((f"tests/{name}", test.group(1)))
    return out


def code_html(code: str) -> str:
    return highlight(code, PythonLexer(), HtmlFormatter(nowrap=False)) if code.strip() else ""


def page(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        '<link rel="stylesheet" href="style.css"></head>\n'
        f'<body><p><a href="index.html">index</a></p><h1>{html.escape(title)}</h1>\n'
        f"{body}\n</body></html>\n"
    )


def twin_page(
    name: str, functional: str, oop: str, docs: str, tests: dict[str, list[tuple[str, str]]]
) -> str:
    """The aligned two-column page of one model; `tests` maps a section to the links of the
    tests that prove it, `(href, test name)`."""
    left, right = sections(functional), sections(oop)
    names = [s.name for s in left]
    if names != [s.name for s in right]:
        raise ValueError(
            f"{name}: the twins' sections differ: {names} vs {[s.name for s in right]}"
        )
    texts = explanations(docs)
    rows = [
        '<div class="twins"><div class="head">functional (JAX)</div>'
        '<div class="head">OOP (PyTorch)</div>'
    ]
    for a, b in zip(left, right, strict=True):
        label = a.name or "module"
        rows.append(
            f'<div class="section" id="{html.escape(label)}"><h2>{html.escape(label)}</h2></div>'
        )
        if tests.get(a.name):
            links = ", ".join(
                f'<a href="{html.escape(href)}">{html.escape(test)}</a>'
                for href, test in tests[a.name]
            )
            rows.append(f'<div class="proofs">proved by {links}</div>')
        text = explanation_for(a.name, texts)
        if text:
            rows.append(f'<div class="explain">{MARKDOWN.render(text)}</div>')
        rows.append(f'<div class="code" data-side="functional">{code_html(a.code)}</div>')
        rows.append(f'<div class="code" data-side="OOP">{code_html(b.code)}</div>')
    rows.append("</div>")
    return page(f"{name}: functional beside OOP", "\n".join(rows))


def ladder_page(side: str) -> str:
    """Level 0, level 1 and level 2 of the MLP on one side, in three columns."""
    files = ["shared/level0/mlp.py", f"{side}/level1/mlp.py", f"{side}/models/mlp.py"]
    cols = ['<div class="ladder">']
    cols += [f'<div class="head"><b>level {i}</b>: {f}</div>' for i, f in enumerate(files)]
    cols += [
        f'<div class="code" data-side="level {i}">{code_html(read(f))}</div>'
        for i, f in enumerate(files)
    ]
    cols.append("</div>")
    return page(f"The MLP ladder, {side} side", "\n".join(cols))


def read(path: str) -> str:
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def twin_names() -> list[str]:
    folder = os.path.join(ROOT, "functional", "models")
    return sorted(
        f[:-3]
        for f in os.listdir(folder)
        if f.endswith(".py")
        and f != "__init__.py"
        and os.path.exists(os.path.join(ROOT, "oop", "models", f))
    )


def build(out: str) -> list[str]:
    """Write the site into `out`; returns the pages written."""
    os.makedirs(out, exist_ok=True)
    written = []

    def write(name: str, text: str) -> None:
        with open(os.path.join(out, name), "w", encoding="utf-8") as f:
            f.write(text)
        written.append(name)

    models, proved = twin_names(), proofs()
    for model, section in proved:  # a marker must name a section the twins have
        known = (
            [s.name for s in sections(read(f"functional/models/{model}.py"))]
            if model in models
            else []
        )
        if section not in known:
            tests = ", ".join(t for _, t in proved[(model, section)])
            raise ValueError(f"{tests}: proves({model!r}, {section!r}), which no twin file has")
    for name in models:
        docs_page = os.path.join(ROOT, "docs", "models", f"{name}.md")
        docs = read(docs_page) if os.path.exists(docs_page) else ""
        functional, oop = read(f"functional/models/{name}.py"), read(f"oop/models/{name}.py")
        tests = {
            section: [(os.path.relpath(os.path.join(ROOT, f), out), t) for f, t in found]
            for (model, section), found in proved.items()
            if model == name
        }
        write(f"{name}.html", twin_page(name, functional, oop, docs, tests))
    for side in ("functional", "oop"):
        write(f"ladder-{side}.html", ladder_page(side))
    docs = ["architecture", "levels", "traps", "optimizers", "benchmarks", "reading"]
    items = [f'<li><a href="{m}.html">{m}</a></li>' for m in models]
    items += [
        f'<li><a href="ladder-{s}.html">the MLP ladder, {s}</a></li>' for s in ("functional", "oop")
    ]
    items += [
        f'<li><a href="../{d}.md">{d}.md</a></li>'
        for d in docs
        if os.path.exists(os.path.join(ROOT, "docs", f"{d}.md"))
    ]
    write(
        "index.html", page("paradigms: the twins side by side", "<ul>" + "".join(items) + "</ul>")
    )
    write("style.css", STYLE + HtmlFormatter().get_style_defs(".highlight"))
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m shared.reader", description=__doc__.split("\n")[0])
    p.add_argument("--out", default=os.path.join(ROOT, "docs", "site"), help="the site's folder")
    args = p.parse_args(argv)
    try:
        pages = build(args.out)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {len(pages)} files to {args.out}; open {os.path.join(args.out, 'index.html')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
