"""The side-by-side reader: `python -m tools.reader` builds a static site under `docs/site/`.

One page per model, and one each for the layers and the interface the models share: the
functional twin on the left, the OOP twin on the right, cut at the
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

import functools
import html
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

from shared import errors, registry
from shared.cli.base import HelpFormatter, Parser
from tools.docs_markdown import MARKDOWN, Links, slug
from tools.reader.style import STYLE

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SECTION = re.compile(r"^# -- (.+) --$", re.MULTILINE)
PROVES = re.compile(r"^@pytest\.mark\.proves\(([^)]*)\)\s*$", re.MULTILINE)
TEST_DEF = re.compile(r"^def (test_\w+)\(", re.MULTILINE)


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


def explanations(markdown: str) -> tuple[str, list[tuple[str, str]]]:
    """A docs page cut at its `## ` headings (as Markdown parses them, so not at a `## ` line
    inside a code block): the text above the first, and `(heading, text)` for each in order."""
    tokens = MARKDOWN.parse(markdown)
    lines = markdown.split("\n")
    heads = [  # (first line, line after the heading, heading text)
        (t.map[0], t.map[1], tokens[i + 1].content.strip())
        for i, t in enumerate(tokens)
        if t.type == "heading_open" and t.tag == "h2" and t.level == 0
    ]
    ends = [start for start, _, _ in heads[1:]] + [len(lines)]
    parts = [
        (head, "\n".join(lines[after:end]).strip())
        for (_, after, head), end in zip(heads, ends, strict=True)
    ]
    first = heads[0][0] if heads else len(lines)
    return "\n".join(lines[:first]).strip(), parts


def heading_sections(heading: str) -> list[str]:
    """The sections a docs heading explains: what stands before its colon, split at commas and
    "and" ("Loss and train step" -> loss, train step; "Layers: the cells" -> layers)."""
    head = heading.split(":")[0].lower()
    return [p.strip() for p in re.split(r",| and ", head) if p.strip()]


def explanation_for(name: str, parts: list[tuple[str, str]]) -> tuple[str, str] | None:
    """The `(heading, text)` of a docs page that explains the section `name`, if any."""
    return next(((h, t) for h, t in parts if name and name in heading_sections(h)), None)


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


def title_and_body(markdown: str, default: str) -> tuple[str, str]:
    """A Markdown page's `# ` title and the text below it."""
    m = re.match(r"\s*# (.+)(?:\n|$)", markdown)
    return (m.group(1).strip(), markdown[m.end() :]) if m else (default, markdown)


def page(title: str, body: str) -> str:
    """A page of the site; `title` is one line of Markdown (code spans show as code)."""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title.replace('`', ''))}</title>"
        '<link rel="stylesheet" href="style.css"></head>\n'
        f'<body><p><a href="index.html">index</a></p>'
        f'<h1 id="{slug(title.replace("`", ""))}">{MARKDOWN.renderInline(title)}</h1>\n'
        f"{body}\n</body></html>\n"
    )


def twin_page(
    name: str,
    functional: str,
    oop: str,
    docs: str,
    tests: dict[str, list[tuple[str, str]]],
    render: Callable[[str], str] = MARKDOWN.render,
    files: tuple[str, str] = ("", ""),
) -> str:
    """The aligned two-column page of one model.

    **Arguments:**

    - `functional`, `oop`: the twin files' text.
    - `docs`: the model's docs page (Markdown). Its title and opening text head the page, the
      text under each `## ` heading that names a section stands above that section's row, and
      the other headings follow the twins.
    - `tests`: section -> `[(href, test name)]`, the tests that prove it.
    - `render`: Markdown -> HTML (the site's renderer rewrites the links).
    - `files`: the links of the two source files from the page, for the column heads.
    """
    left, right = sections(functional), sections(oop)
    names = [s.name for s in left]
    if names != [s.name for s in right]:
        raise ValueError(
            f"{name}: the twins' sections differ: {names} vs {[s.name for s in right]}"
        )
    title, text = title_and_body(docs, name)
    preamble, parts = explanations(text)
    repeated = {slug(h) for h, _ in parts if [slug(g) for g, _ in parts].count(slug(h)) > 1}
    if repeated:  # the page is assembled out of order, so GitHub's -1, -2 numbering can't hold
        raise ValueError(f"{name}'s docs page has two headings with the anchor {sorted(repeated)}")
    shown: set[str] = set()  # a heading that explains two sections is shown at the first
    heads = [
        f'<div class="head">{side}: <a href="{html.escape(href)}">{path}</a></div>'
        if href
        else f'<div class="head">{side}</div>'
        for side, href, path in zip(
            ("functional (JAX)", "OOP (PyTorch)"),
            files,
            (twin_path("functional", name), twin_path("oop", name)),
            strict=True,
        )
    ]
    rows = ['<div class="twins">' + "".join(heads)]
    for a, b in zip(left, right, strict=True):
        label = a.name or "module"
        found = explanation_for(a.name, parts)
        new = found is not None and found[0] not in shown
        heading = html.escape(label)
        if new and slug(found[0]) != slug(label):  # the docs heading's anchor, and its subtitle
            heading = f'<span id="{slug(found[0])}"></span>{heading}'
            if ":" in found[0]:
                heading += ": " + MARKDOWN.renderInline(found[0].split(":", 1)[1].strip())
        rows.append(f'<div class="section" id="{slug(label)}"><h2>{heading}</h2></div>')
        if tests.get(a.name):
            links = ", ".join(
                f'<a href="{html.escape(href)}">{html.escape(test)}</a>'
                for href, test in tests[a.name]
            )
            rows.append(f'<div class="proofs">proved by {links}</div>')
        if new:
            shown.add(found[0])
            rows.append(f'<div class="explain">{render(found[1])}</div>')
        for side, section in (("functional", a), ("OOP", b)):
            rows.append(f'<div class="code" data-side="{side}">{code_html(section.code)}</div>')
    rows.append("</div>")
    rest = "\n\n".join(f"## {h}\n\n{t}" for h, t in parts if h not in shown)
    body = (
        render(preamble)
        + "\n".join(rows)
        + (f'<div class="rest">{render(rest)}</div>' if rest else "")
    )
    return page(title, body)


def ladder_page(side: str) -> str:
    """Level 0, level 1 and level 2 of the MLP on one side, in three columns."""
    files = ["shared/level0/mlp.py", f"{side}/level1/mlp.py", f"{side}/models/mlp.py"]
    cols = ['<p>The three levels of <a href="levels.html">levels</a>, one beside the other.</p>']
    cols += ['<div class="ladder">']
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


SIDE_TWINS = ("layers", "interface")  # twins beside the models, each with a page of its own


def twin_path(side: str, name: str) -> str:
    """`functional/models/mlp.py`, or `functional/layers.py` for a twin beside the models."""
    return f"{side}/{name}.py" if name in SIDE_TWINS else f"{side}/models/{name}.py"


def twin_names() -> list[str]:
    """Every twin pair with a page: the model files in the order the course climbs
    (`shared.registry`, the mlp first), then the layers and the interface they share."""
    return [f for f in (*registry.FILES, *SIDE_TWINS)
            if all(os.path.exists(os.path.join(ROOT, twin_path(side, f)))
                   for side in ("functional", "oop"))]  # fmt: skip


def doc_names() -> list[str]:
    """The docs pages beside the models' (`docs/NAME.md`), in the index's order."""
    first = ["architecture", "levels", "traps", "debugging", "optimizers", "benchmarks",
             "reading", "safety", "orientation"]  # fmt: skip
    found = {f[:-3] for f in os.listdir(os.path.join(ROOT, "docs")) if f.endswith(".md")}
    return [d for d in first if d in found] + sorted(found - set(first))


def check_proofs(models: list[str], proved: dict) -> None:
    """A `proves` marker must name a model that has twins and a section its files have."""
    for model, section in proved:
        known = (
            [s.name for s in sections(read(twin_path("functional", model)))]
            if model in models
            else []
        )
        if section not in known:
            tests = ", ".join(t for _, t in proved[(model, section)])
            raise ValueError(f"{tests}: proves({model!r}, {section!r}), which no twin file has")


def build(out: str) -> list[str]:
    """Write the site into `out`; returns the files written. Raises ValueError, naming each,
    where a docs link leads to no file or to no heading."""
    os.makedirs(out, exist_ok=True)
    written = []

    def write(name: str, text: str) -> None:
        with open(os.path.join(out, name), "w", encoding="utf-8") as f:
            f.write(text)
        written.append(name)

    models, docs, proved = twin_names(), doc_names(), proofs()
    check_proofs(models, proved)
    pages = {f"docs/{d}.md": f"{d}.html" for d in docs}
    pages |= {f"docs/models/{m}.md": f"{m}.html" for m in models}
    pages["README.md"] = "index.html"
    links = Links(ROOT, out, pages)
    for name in models:
        docs_page = f"docs/models/{name}.md"
        text = read(docs_page) if os.path.exists(os.path.join(ROOT, docs_page)) else ""
        functional, oop = read(twin_path("functional", name)), read(twin_path("oop", name))
        tests = {
            section: [(os.path.relpath(os.path.join(ROOT, f), out), t) for f, t in found]
            for (model, section), found in proved.items()
            if model == name
        }
        render = functools.partial(links.render, source=docs_page)
        files = tuple(
            os.path.relpath(os.path.join(ROOT, twin_path(side, name)), out)
            for side in ("functional", "oop")
        )
        write(f"{name}.html", twin_page(name, functional, oop, text, tests, render, files))
    for side in ("functional", "oop"):
        write(f"ladder-{side}.html", ladder_page(side))
    for d in docs:
        title, text = title_and_body(read(f"docs/{d}.md"), d)
        body = links.render(text, f"docs/{d}.md")
        write(f"{d}.html", page(title, f'<main class="doc">{body}</main>'))
    items = [f'<li><a href="{m}.html">{m}</a></li>' for m in models]
    items += [
        f'<li><a href="ladder-{s}.html">the MLP ladder, {s}</a></li>' for s in ("functional", "oop")
    ]
    items += [f'<li><a href="{d}.html">{d}</a></li>' for d in docs]
    title, readme = title_and_body(read("README.md"), "paradigms")
    nav = '<nav class="pages"><b>The site</b><ul>' + "".join(items) + "</ul></nav>"
    body = links.render(readme, "README.md")
    write("index.html", page(title, f'{nav}<main class="doc">{body}</main>'))
    write("style.css", STYLE + HtmlFormatter().get_style_defs(".highlight"))
    if links.broken:
        raise ValueError("broken links in the docs: " + "; ".join(links.broken))
    return written


@errors.entry_point("python -m tools.reader", refuse=(ValueError,))
def main(argv: list[str] | None = None) -> int:
    p = Parser(
        prog="python -m tools.reader",
        description=__doc__.split("\n")[0],
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "--out",
        default=os.path.join(ROOT, "docs", "site"),
        help="the site's folder (default: docs/site)",
    )
    args = p.parse_args(argv)
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        p.error(f"--out {args.out} is a file; name a folder for the site")
    try:
        pages = build(args.out)
    except OSError as e:
        raise errors.Refused(errors.os_reason(e) + "; choose another --out") from None
    print(f"wrote {len(pages)} files to {args.out}; open {os.path.join(args.out, 'index.html')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
