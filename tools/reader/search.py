"""The site's search: an index of every page's text, cut at its headings and twin sections (a grid
model's page holds its four sides' code, so the corners' code is found there too), written at
`make docs` time into `search-index.js`, and a small script that filters it as the reader
types. Nothing is fetched: the index is a script file beside the pages, which a browser loads
from the file system as it loads the stylesheet."""

from __future__ import annotations

import html
import json
import re

from tools.reader.frame import HEADING, TAG

SCRIPT = """(function () {
  var box = document.getElementById("search"), out = document.getElementById("results");
  if (!box || typeof SEARCH === "undefined") return;
  box.addEventListener("input", function () {
    var words = box.value.toLowerCase().split(/\\s+/).filter(Boolean), n = 0;
    out.innerHTML = "";
    if (!words.length) return;
    for (var i = 0; i < SEARCH.length && n < 30; i++) {
      var e = SEARCH[i];
      if (!words.every(function (w) { return e.t.indexOf(w) >= 0; })) continue;
      var li = document.createElement("li"), a = document.createElement("a");
      a.href = e.u; a.textContent = e.p + (e.h ? ": " + e.h : "");
      li.appendChild(a); out.appendChild(li); n++;
    }
    if (!n) { var none = document.createElement("li"); none.textContent = "no match";
      out.appendChild(none); }
  });
})();
"""


def entries(href: str, label: str, page_html: str) -> list[dict[str, str]]:
    """The page cut at its headings: `{u: link, p: page, h: heading, t: lower-case text}`."""
    body = re.sub(r'<nav class="(side|toc|prevnext)".*?</nav>', "", page_html, flags=re.DOTALL)
    body = re.sub(r"<(script|style|title|label)[^>]*>.*?</\1>", "", body, flags=re.DOTALL)
    marks = list(HEADING.finditer(body))
    cuts = [(0, "", "")] + [(m.start(), m.group(1), TAG.sub("", m.group(2))) for m in marks]
    out = []
    for i, (start, anchor, heading) in enumerate(cuts):
        end = cuts[i + 1][0] if i + 1 < len(cuts) else len(body)
        text = html.unescape(TAG.sub(" ", body[start:end]))
        text = re.sub(r"\s+", " ", text).strip().lower()
        if text:
            out.append({"u": f"{href}#{anchor}" if anchor else href, "p": label,
                        "h": html.unescape(heading).strip(), "t": text})  # fmt: skip
    return out


def index_script(pages: dict[str, tuple[str, str]]) -> str:
    """`search-index.js` for `{href: (label, html)}`: one global, SEARCH."""
    found = [e for href, (label, text) in pages.items() for e in entries(href, label, text)]
    return "var SEARCH = " + json.dumps(found, ensure_ascii=False, separators=(",", ":")) + ";\n"
