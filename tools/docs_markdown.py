"""The docs' Markdown as HTML pages of the reader's site, with every link checked.

`Links` knows which Markdown file became which page. `render(text, source)` turns the Markdown
of one file into HTML with GitHub's heading anchors (`## A trap: x.std()` gets `id="a-trap-xstd"`,
so the anchors the docs already use on GitHub work in the site too) and rewrites each relative
link and image from the Markdown file's folder to the site's: a link to a rendered `.md` goes to
its page, anything else (a figure, a source file) to its path from the site. A link to a file
that does not exist, or to an anchor its page does not have, is recorded in `Links.broken`
instead of being written as a dead link. Text processing only: no jax, no torch.
"""

from __future__ import annotations

import os
import re
from urllib.parse import unquote, urlsplit

from markdown_it import MarkdownIt
from markdown_it.token import Token

MARKDOWN = MarkdownIt("commonmark").enable("table")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text: lower case, punctuation dropped, spaces to hyphens
    (`"clip_grad_norm_ divides by norm + 1e-6"` -> `"clip_grad_norm_-divides-by-norm--1e-6"`)."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def inline_text(token: Token) -> str:
    """The plain text of an inline token (code spans without their backticks)."""
    return "".join(c.content for c in token.children or [] if c.type in ("text", "code_inline"))


def heading_anchors(tokens: list[Token]) -> list[str]:
    """The anchor of each heading among parsed tokens, in order, as GitHub numbers repeats: the
    second `## Example` is `example-1`, the third `example-2`."""
    out: list[str] = []
    seen: dict[str, int] = {}
    for i, t in enumerate(tokens):
        if t.type == "heading_open":
            base = slug(inline_text(tokens[i + 1]))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.append(base if n == 0 else f"{base}-{n}")
    return out


def anchors(text: str) -> set[str]:
    """The anchors of every heading in a Markdown text."""
    return set(heading_anchors(MARKDOWN.parse(text)))


RAW_LINK = re.compile(r"""\b(?:src|href)\s*=""", re.IGNORECASE)


class Links:
    """Where each rendered Markdown file went, and the links that lead nowhere.

    **Arguments:**

    - `root`: the repository's folder; Markdown paths are relative to it.
    - `out`: the site's folder.
    - `pages`: `{Markdown path relative to root: page name in out}`, e.g.
      `{"docs/traps.md": "traps.html"}`.
    """

    def __init__(self, root: str, out: str, pages: dict[str, str]):
        self.root, self.out, self.pages = root, out, pages
        self.broken: list[str] = []
        self._anchors: dict[str, set[str]] = {}

    def anchors_of(self, path: str) -> set[str]:
        if path not in self._anchors:
            with open(os.path.join(self.root, path), encoding="utf-8") as f:
                self._anchors[path] = anchors(f.read())
        return self._anchors[path]

    def rewrite(self, href: str, source: str) -> str:
        """A link written in `source` (a Markdown path), as the site's pages must write it."""
        if SCHEME.match(href):
            return href
        parts = urlsplit(href)  # markdown-it percent-encodes: `#σ` arrives as `#%CF%83`
        path, fragment = unquote(parts.path), unquote(parts.fragment)
        if not path:  # an anchor on the same page
            target = source
        else:
            target = os.path.normpath(os.path.join(os.path.dirname(source), path))
            if not os.path.exists(os.path.join(self.root, target)):
                self.broken.append(f"{source}: {href} (no such file)")
                return href
        if fragment and target.endswith(".md") and fragment not in self.anchors_of(target):
            self.broken.append(f"{source}: {href} (no heading with that anchor)")
        if not path:
            return href
        page = self.pages.get(target)
        if page is None:
            page = os.path.relpath(os.path.join(self.root, target), self.out)
        query = f"?{parts.query}" if parts.query else ""
        return page + query + (f"#{fragment}" if fragment else "")

    def render(self, text: str, source: str) -> str:
        """Markdown `text` from the file `source`, as HTML for the site. A link written in raw
        HTML (`<img src=...>`) would be neither rewritten nor checked, so it is reported."""
        tokens = MARKDOWN.parse(text)
        ids = iter(heading_anchors(tokens))
        for t in tokens:
            if t.type == "heading_open":
                t.attrSet("id", next(ids))
            for c in [t, *(t.children or [])]:
                if c.type in ("html_block", "html_inline") and RAW_LINK.search(c.content):
                    self.broken.append(f"{source}: {c.content.strip()} (write it in Markdown)")
                for attr in ("href", "src"):
                    value = c.attrGet(attr)
                    if isinstance(value, str):
                        c.attrSet(attr, self.rewrite(value, source))
        return MARKDOWN.renderer.render(tokens, MARKDOWN.options, {})
