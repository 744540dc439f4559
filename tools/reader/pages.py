"""The side-by-side reader: `python -m tools.reader` builds a static site under `docs/site/`.

One page per model, and one each for the layers and the interface the models share: the
functional twin on the left, the OOP twin on the right, cut at the section headers both files
carry (`# -- config --` ... `# -- evaluate --`) and laid out row by row, so corresponding code
starts at the same height (on a model the grid's other corners build, the reader picks which
two of the four sides stand side by side: `grid.py`); each row carries the explanation of the
model's docs page (`docs/models/NAME.md`) under the `## ` heading that names that section,
rendered from Markdown (its relative links and figures resolve from `docs/site/` as from
`docs/models/`, one folder down from `docs/`). A level-1 page sets the two level-1 MLPs side by
side; one ladder page per side puts level 0, level 1 and level 2 of the MLP next to each other,
section by section. Beside them: the docs pages, the "your runs" page (`runs.py`), a page per
proving test file (`proofs.py`) and the search index (`search.py`); every page gets its frame
(`frame.py`). The pages are plain HTML with one stylesheet and three scripts beside them: they open
from the file system, with no server and nothing fetched from the network. Text processing only:
this never imports jax or torch.
"""

from __future__ import annotations

import functools
import html
import os
import re
import sys
from collections.abc import Callable

from shared import errors, registry
from shared.cli.base import HelpFormatter, Parser
from tools.docs_markdown import MARKDOWN, Links, slug
from tools.reader import grid, search
from tools.reader import proofs as proofs_page
from tools.reader import runs as runs_page
from tools.reader.frame import label, page, site_map
from tools.reader.grid import code_html
from tools.reader.source import (
    ROOT,
    SIDE_TWINS,
    check_proofs,
    doc_names,
    explanation_for,
    explanations,
    proofs,
    read,
    sections,
    twin_names,
    twin_path,
)
from tools.reader.style import stylesheet


def title_and_body(markdown: str, default: str) -> tuple[str, str]:
    """A Markdown page's `# ` title and the text below it."""
    m = re.match(r"\s*# (.+)(?:\n|$)", markdown)
    return (m.group(1).strip(), markdown[m.end() :]) if m else (default, markdown)


def twin_page(
    name: str,
    functional: str,
    oop: str,
    docs: str,
    tests: dict[str, list[tuple[str, str]]],
    render: Callable[[str], str] = MARKDOWN.render,
    files: tuple[str, str] = ("", ""),
    corners: dict[str, tuple[str, str, str]] | None = None,
    **frame,
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
    - `corners`: `{side: (path, text, link)}` of the grid's other corners that build the model;
      the reader picks which two sides stand side by side (`grid`).
    - `frame`: `here` and `site`, for `frame.page`'s sidebar.
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
    twins = {
        side: (twin_path(side, name), text, href)
        for side, text, href in zip(grid.TWINS, (functional, oop), files, strict=True)
    }
    cols = grid.columns(name, twins | (corners or {}))
    rows = [grid.top(cols)]
    for a in left:
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
        rows += grid.cells(cols, a.name)
    rows.append("</div>" + grid.script(cols))
    rest = "\n\n".join(f"## {h}\n\n{t}" for h, t in parts if h not in shown)
    body = (
        render(preamble)
        + commands(name)
        + "\n".join(rows)
        + (f'<div class="rest">{render(rest)}</div>' if rest else "")
    )
    return page(title, body, **frame)


def commands(name: str) -> str:
    """How to train a model page's twins from one init and compare them, for every registered
    model its file serves (rnn.py: rnn, gru and lstm); empty for the other twin pages."""
    entries = [e for e in registry.ENTRIES if e.file == name]
    if not entries:
        return ""
    lines = []
    for e in entries:
        run = f"runs/{e.name}-{e.bench_data}"
        flags = f"--model {e.name} --dataset {e.bench_data}"
        lines += [
            f".venv/bin/python -m functional.train {flags} --out {run}-functional",
            f".venv/bin/python -m oop.train {flags} --out {run}-oop \\",
            f"    --init {run}-functional/init.safetensors   # the same weights",
            f".venv/bin/python -m shared.compare {run}-functional {run}-oop",
        ]
    code = html.escape("\n".join(lines))
    return (f'<div class="run"><b>Train the twins from one init and compare them</b> (add '
            f"<code>--dry-run</code> for three updates):<pre>{code}</pre></div>")  # fmt: skip


def ladder_page(side: str, **frame) -> str:
    """Level 0, level 1 and level 2 of the MLP on one side, in three columns cut at the same
    section headers, so each section of the three levels starts at one height."""
    files = ["shared/level0/mlp.py", f"{side}/level1/mlp.py", f"{side}/models/mlp.py"]
    cut = [{sec.name: sec.code for sec in sections(read(f))} for f in files]
    names = list(cut[0])  # level 0 has every section; level 2 has no layers of its own
    rows = [
        '<p>The three levels of <a href="levels.html">levels</a>, one beside the other, '
        "section by section; a blank cell is a section that level does not need.</p>"
    ]
    rows += ['<div class="ladder">']
    rows += [f'<div class="head"><b>level {i}</b>: {f}</div>' for i, f in enumerate(files)]
    for name in names:
        label = name or "module"
        rows.append(f'<div class="section" id="{slug(label)}"><h2>{html.escape(label)}</h2></div>')
        rows += [f'<div class="code" data-side="level {i}">{code_html(c.get(name, ""))}</div>'
                 for i, c in enumerate(cut)]  # fmt: skip
    rows.append("</div>")
    return page(f"The MLP ladder, {side} side", "\n".join(rows), **frame)


def build(out: str, runs: str | None = None) -> list[str]:
    """Write the site into `out` (the "your runs" page from the run folders under `runs`,
    default ROOT/runs); returns the files written. Raises ValueError, naming each,
    where a docs link leads to no file or to no heading."""
    os.makedirs(out, exist_ok=True)
    written = []

    texts: dict[str, str] = {}  # page -> its HTML, for the search index

    def write(name: str, text: str) -> None:
        with open(os.path.join(out, name), "w", encoding="utf-8") as f:
            f.write(text)
        written.append(name)
        if name.endswith(".html"):
            texts[name] = text

    models, docs, proved = twin_names(), doc_names(), proofs()
    check_proofs(models, proved)
    pages = {f"docs/{d}.md": f"{d}.html" for d in docs}
    pages |= {f"docs/models/{m}.md": f"{m}.html" for m in models}
    pages["README.md"] = "index.html"
    links = Links(ROOT, out, pages)
    planned = {*pages.values(), "ladder-functional.html", "ladder-oop.html", "runs.html"}
    titles = {m: title_and_body(read(f"docs/models/{m}.md"), m)[0]
              if os.path.exists(os.path.join(ROOT, f"docs/models/{m}.md")) else m
              for m in models}  # fmt: skip
    site = site_map(models, list(SIDE_TWINS), docs, {m: label(t) for m, t in titles.items()})
    assert planned == {h for _, items in site for h, _ in items}, "every page in the sidebar"
    for name in models:
        docs_page = f"docs/models/{name}.md"
        text = read(docs_page) if os.path.exists(os.path.join(ROOT, docs_page)) else ""
        functional, oop = read(twin_path("functional", name)), read(twin_path("oop", name))
        tests = {
            section: [(f"{proofs_page.test_page_name(f)}#{t}", t) for f, t in found]
            for (model, section), found in proved.items()
            if model == name
        }
        render = functools.partial(links.render, source=docs_page)
        files = tuple(
            os.path.relpath(os.path.join(ROOT, twin_path(side, name)), out)
            for side in ("functional", "oop")
        )
        corners = {side: (path, read(path), os.path.relpath(os.path.join(ROOT, path), out))
                   for side, path in grid.corners(name).items()}  # fmt: skip
        page_html = twin_page(name, functional, oop, text, tests, render, files, corners,
                              here=f"{name}.html", site=site)  # fmt: skip
        write(f"{name}.html", page_html)
    for side in ("functional", "oop"):
        write(f"ladder-{side}.html", ladder_page(side, here=f"ladder-{side}.html", site=site))
    for d in docs:
        title, text = title_and_body(read(f"docs/{d}.md"), d)
        body = links.render(text, f"docs/{d}.md")
        write(f"{d}.html", page(title, f'<main class="doc">{body}</main>', f"{d}.html", site))
    title, readme = title_and_body(read("README.md"), "paradigms")
    body = links.render(readme, "README.md")
    write("index.html", page(title, f'<main class="doc">{body}</main>', "index.html", site))
    body = runs_page.runs_page_body(runs or os.path.join(ROOT, "runs"), out)
    write("runs.html", page("Your runs", body, "runs.html", site))
    for path in sorted({f for found in proved.values() for f, _ in found}):
        body = proofs_page.test_page_body(path, code_html)
        write(proofs_page.test_page_name(path), page(f"`{path}`", body, "", site))
    write("style.css", stylesheet())
    labels = {href: label for _, items in site for href, label in items}
    labels |= {proofs_page.test_page_name(f): f for found in proved.values() for f, _ in found}
    write("search-index.js", search.index_script({h: (labels[h], t) for h, t in texts.items()}))
    write("search.js", search.SCRIPT)
    write("grid.js", grid.SCRIPT)
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
    p.add_argument("--runs", default=None, metavar="DIR",
                   help="the run folders the 'your runs' page lists (default: runs/)")  # fmt: skip
    args = p.parse_args(argv)
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        p.error(f"--out {args.out} is a file; name a folder for the site")
    try:
        pages = build(args.out, args.runs)
    except OSError as e:
        raise errors.Refused(errors.os_reason(e) + "; choose another --out") from None
    print(f"wrote {len(pages)} files to {args.out}; open {os.path.join(args.out, 'index.html')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
