"""The frame of every page: the sidebar in the course's order, a table of contents, previous
and next, figures that open full size, and table numbers that do not break."""

from __future__ import annotations

import html
import re

from tools.docs_markdown import MARKDOWN, slug

# The sidebar's docs pages, in the course's order; the twin pages come from the registry
# (`site_map`), and a docs page not named here is listed under "More".
DOC_GROUPS: list[tuple[str, list[tuple[str, str]]]] = [
    ("Across the models", [("paradigms", "The grid: two paradigms, two frameworks"),
                           ("optimizers", "Optimizers and schedules"), ("traps", "Traps"),
                           ("debugging", "Debugging"), ("benchmarks", "Benchmarks"),
                           ("reproducibility", "Reproducibility"), ("safety", "Safety")]),
    ("The package", [("architecture", "Architecture"), ("reading", "Reading the site"),
                     ("orientation", "Which framework for what")]),
]  # fmt: skip


def label(title: str) -> str:
    """A twin page's sidebar name from its docs title: "The CNN + BatchNorm twins: `cnn_bn`"
    -> "CNN + BatchNorm"."""
    name = title.split(":")[0].replace("`", "").strip().removeprefix("The ").removesuffix(" twins")
    return name[:1].upper() + name[1:]


def site_map(models: list[str], shared: list[str], docs: list[str], labels: dict[str, str]):
    """The sidebar as `[(group, [(page file, name)])]`: the start pages, the registry's models
    in its order, what they share, then the docs pages. `labels`: twin page -> its name."""
    twins = [(f"{m}.html", labels[m]) for m in models]
    start = [("index.html", "paradigms"), ("levels.html", "The three levels"),
             *[t for t in twins if t[0] == "level1.html"],
             ("ladder-functional.html", "Ladder, functional"),
             ("ladder-oop.html", "Ladder, OOP"), ("runs.html", "Your runs")]  # fmt: skip
    placed = {d for _, items in DOC_GROUPS for d, _ in items}
    groups = [("Start", start),
              ("Models", [t for t in twins if t[0][:-5] not in (*shared, "level1")]),
              ("What the models share", [t for t in twins if t[0][:-5] in shared])]  # fmt: skip
    groups += [(g, [(f"{d}.html", n) for d, n in items if d in docs]) for g, items in DOC_GROUPS]
    groups.append(("More", [(f"{d}.html", d) for d in docs if d not in placed | {"levels"}]))
    return [(g, items) for g, items in groups if items]


SCRIPTS = '<script src="search-index.js"></script><script src="search.js"></script>'
HEADING = re.compile(
    r'<(?:h[23]|div class="section") id="([^"]+)">(?:<h2>)?(.*?)</h[23]>', re.DOTALL
)


TAG = re.compile(r"(<[^>]+>)")


NUMBER = re.compile(r"\d+(?:\.\d+)?(?:e[-+]?\d+|×)")


CELL = re.compile(r"(<td[^>]*>)(.*?)(</td>)", re.DOTALL)


IMAGE = re.compile(r'(<a [^>]*>\s*)?<img ([^>]*?)src="([^"]+)"([^>]*)>')


def unbroken_numbers(body: str) -> str:
    """Numbers with an exponent in table cells as one unbreakable piece (no "8.3e-" / "17")."""

    def cell(m: re.Match) -> str:
        parts = TAG.split(m.group(2))  # text and tags alternate; only the text changes
        text = [p if p.startswith("<") else NUMBER.sub(r'<span class="num">\g<0></span>', p)
                for p in parts]  # fmt: skip
        return m.group(1) + "".join(text) + m.group(3)

    return CELL.sub(cell, body)


def linked_figures(body: str) -> str:
    """Every figure a link to itself, unless it is a link already: a click opens it full size."""

    def link(m: re.Match) -> str:
        if m.group(1):
            return m.group(0)
        src = m.group(3)
        return f'<a class="figure" href="{src}"><img {m.group(2)}src="{src}"{m.group(4)}></a>'

    return IMAGE.sub(link, body)


def sidebar(here: str, site: list[tuple[str, list[tuple[str, str]]]]) -> str:
    out = ['<nav class="side" aria-label="pages">'
           '<input id="search" type="search" placeholder="search code and docs" '
           'aria-label="search"><ul id="results"></ul>']  # fmt: skip
    for group, items in site:
        out.append(f"<h3>{html.escape(group)}</h3><ul>")
        for href, label in items:
            mark = ' class="here" aria-current="page"' if href == here else ""
            out.append(f'<li><a href="{href}"{mark}>{html.escape(label)}</a></li>')
        out.append("</ul>")
    return "".join(out) + "</nav>"


def contents(body: str) -> str:
    """The page's table of contents: its `h2` and `h3` headings and twin sections, linked."""
    found = [(anchor, TAG.sub("", text).strip()) for anchor, text in HEADING.findall(body)]
    if len(found) < 2:
        return ""
    items = "".join(
        f'<li><a href="#{a}">{html.escape(html.unescape(t))}</a></li>' for a, t in found
    )
    return f'<nav class="toc" aria-label="contents"><b>On this page</b><ol>{items}</ol></nav>'


def prev_next(here: str, site: list[tuple[str, list[tuple[str, str]]]]) -> str:
    """Links to the pages before and after `here` in the sidebar's order."""
    order = [item for _, items in site for item in items]
    hrefs = [href for href, _ in order]
    if here not in hrefs:
        return ""
    at = hrefs.index(here)
    before = f'<a href="{order[at - 1][0]}" rel="prev">← {html.escape(order[at - 1][1])}</a>'
    after = (f'<a href="{order[at + 1][0]}" rel="next">{html.escape(order[at + 1][1])} →</a>'
             if at + 1 < len(order) else "")  # fmt: skip
    return f'<nav class="prevnext"><span>{before if at else ""}</span><span>{after}</span></nav>'


def page(title: str, body: str, here: str = "", site=None) -> str:
    """A page of the site; `title` is one line of Markdown (code spans show as code). With
    `here` (this page's file) and `site` (SITE as built), it gets the sidebar, a table of
    contents and previous/next links."""
    body = linked_figures(unbroken_numbers(body))
    main = (
        f'<h1 id="{slug(title.replace("`", ""))}">{MARKDOWN.renderInline(title)}</h1>\n'
        f"{contents(body)}{body}"
    )
    if site:
        main = f"{main}{prev_next(here, site)}"
        main = f'<div class="layout">{sidebar(here, site)}<div>{main}</div></div>'
    else:
        main = f'<p><a href="index.html">index</a></p>{main}'
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title.replace('`', ''))}</title>"
        '<link rel="stylesheet" href="style.css"></head>\n'
        f"<body>{main}\n{SCRIPTS if site else ''}</body></html>\n"
    )
