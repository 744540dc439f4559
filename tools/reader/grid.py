"""A twin page's columns: the heads, the code cells of each row, and for a model other sides
build (`shared.sides`: the grid's other corners, the Keras side), the pick of which two sides
stand side by side.

Such a page holds, in every section's row, a cell of code for each side that builds the model
(its `data-side`), under a head per side; the twins' cells are shown, functional on the left and
OOP on the right, and the others' are `hidden`, so without scripts the page reads as the
twins' page. Two selectors above the columns, which the page's script (`grid.js`) reveals,
pick the side of each column: the script shows that side's head and cells in that column, hides
the others, and puts the two shown cells of each row in the order of their columns, so the grid
still places them in one row and each section of the two starts at the same height. Picking
for one column the side the other shows swaps the two. A section a side's file lacks is an
empty cell; a section only a corner has no row to stand in, and is refused. Besides the sides,
a page may offer a view (`VIEWS`): a file that writes one model's update another way, such as
Keras's pure step on JAX beside the functional twin's on the MLP's page.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

from shared.sides import SIDES, Side
from tools.reader.source import ROOT, reused, sections

TWINS = ("functional", "oop")  # the two sides of every twin page, left and right
CELL_SIDE = {"oop": "OOP"}  # a cell's `data-side`, where it is not the side's name
PLAIN_HEADS = {"functional": "functional (JAX)", "oop": "OOP (PyTorch)"}  # with no corners


def code_html(code: str) -> str:
    return highlight(code, PythonLexer(), HtmlFormatter(nowrap=False)) if code.strip() else ""


def shared_code(code: str, source: str) -> str:
    """The code a reusing section runs, shown under it and marked as another file's."""
    return "".join(
        f'<div class="shared"><div class="label">shared: <code>{name}</code> of {path}</div>'
        f"{code_html(text)}</div>"
        for path, name, text in reused(code, source)
    )


# a view: its name (the cells' `data-side`) -> (its file, the model's page, its head)
VIEWS = {"keras3_pure": ("keras3/stateless.py", "mlp",
                         "functions · Keras on JAX (stateless_call, jax.jit)")}  # fmt: skip


def title(side: Side) -> str:
    """A side's name in the selectors and its column head: "objects · JAX (Flax NNX, optax)";
    a side on several backends: "objects · Keras 3 on JAX, PyTorch or TensorFlow"."""
    kind = "functions" if side.paradigm == "functional" else "objects"
    if side.backends:
        return f"{kind} · {side.libraries.removesuffix(' (--backend)')}"
    built_on = [lib for lib in side.libraries.split(" + ") if lib != side.framework]
    return f"{kind} · {side.framework}" + (f" ({', '.join(built_on)})" if built_on else "")


def side_path(side: str, model: str) -> str:
    """`crossover/oop_jax/models/gpt.py`: a side's file of a model, from the repository's root."""
    return f"{SIDES[side].package.replace('.', '/')}/models/{model}.py"


def corners(model: str) -> dict[str, str]:
    """`{side: its file}` for each side beside the twins that builds `model` (the grid's other
    corners, then the Keras side), then `{view: its file}` for the views of `model`'s page."""
    sides = {s.name: side_path(s.name, model) for s in SIDES.values()
             if s.name not in TWINS and model in s.models
             and os.path.exists(os.path.join(ROOT, side_path(s.name, model)))}  # fmt: skip
    return sides | {v: path for v, (path, page, _) in VIEWS.items() if page == model}


@dataclass(frozen=True)
class Column:
    """One side's file on a twin page."""

    side: str  # its name in `shared.sides`
    head: str  # the column head's name
    path: str  # the file, from the repository's root
    source: str  # its text
    href: str  # the file from the page, for the head ("" for none)
    cut: dict[str, str]  # section -> its code

    @property
    def cell(self) -> str:
        return CELL_SIDE.get(self.side, self.side)

    @property
    def hidden(self) -> str:  # its cells' and head's attribute: a corner's wait to be picked
        return "" if self.side in TWINS else " hidden"


def columns(name: str, files: dict[str, tuple[str, str, str]]) -> list[Column]:
    """The page's columns, in `shared.sides`'s order, from `{side: (path, text, href)}`: the
    twins, then the other sides that build the model, then the views. A section the twins lack
    is refused."""
    plain = len(files) == len(TWINS)
    heads = {s: PLAIN_HEADS.get(s, s) if plain else title(side) for s, side in SIDES.items()}
    heads |= {v: head for v, (_, _, head) in VIEWS.items()}
    out = [Column(s, heads[s], path, text, href, {sec.name: sec.code for sec in sections(text)})
           for s in heads if s in files for path, text, href in [files[s]]]  # fmt: skip
    twins = out[0].cut
    for c in out:
        extra = [n for n in c.cut if n not in twins]
        if extra:
            raise ValueError(f"{name}: {c.path} has sections the twins lack: {extra}")
    return out


def top(cols: list[Column]) -> str:
    """The grid's first rows: with corners, the two selectors (hidden until the script reveals
    them) and a head per side; without, the twins' two heads. Each names its file and links it."""
    grid = len(cols) > len(TWINS)
    out = ['<div class="twins">']
    for i, where in enumerate(("left", "right") if grid else ()):  # the twins by default
        options = "".join(f'<option value="{c.cell}"{" selected" if c.side == TWINS[i] else ""}>'
                          f"{html.escape(c.head)}</option>" for c in cols)  # fmt: skip
        out.append(f'<label class="pick" hidden>{where} column: <select data-column="{i}">'
                   f"{options}</select></label>")  # fmt: skip
    for c in cols:
        mark = f' data-side="{c.cell}"{c.hidden}' if grid else ""
        link = f': <a href="{html.escape(c.href)}">{c.path}</a>' if c.href else ""
        out.append(f'<div class="head"{mark}>{html.escape(c.head)}{link}</div>')
    return "".join(out)


def cells(cols: list[Column], name: str) -> list[str]:
    """Section `name`'s row: a cell per side with its file's code of that section (empty where
    the file has none) and the code that code reuses from another file."""
    return [f'<div class="code" data-side="{c.cell}"{c.hidden}>'
            f"{code_html(c.cut.get(name, ''))}{shared_code(c.cut.get(name, ''), c.source)}</div>"
            for c in cols]  # fmt: skip


def script(cols: list[Column]) -> str:
    """The page's pick of sides: `grid.js`, on a page with corners only."""
    return '<script src="grid.js"></script>' if len(cols) > len(TWINS) else ""


SCRIPT = """(function () {
  var grid = document.querySelector(".twins"), picks = [];
  if (grid) picks = Array.from(grid.querySelectorAll("select[data-column]"));
  if (picks.length !== 2) return;
  var was = picks.map(function (p) { return p.value; });
  function show() {  // in the heads and in each row's cells: the two picked, in column order
    var chosen = picks.map(function (p) { return p.value; }), run = [];
    function place() {  // (the grid would start a new row at a cell that came before its left)
      var by = {}, at = run[0];
      run.forEach(function (e) {
        by[e.dataset.side] = e; e.hidden = chosen.indexOf(e.dataset.side) < 0;
      });
      chosen.forEach(function (s) {
        if (by[s]) { grid.insertBefore(by[s], at); at = by[s].nextSibling; }
      });
      run = [];
    }
    Array.from(grid.children).forEach(function (e) {
      if (e.dataset.side) run.push(e); else if (run.length) place();
    });
    if (run.length) place();
  }
  picks.forEach(function (p, i) {
    p.addEventListener("change", function () {
      var other = picks[1 - i];  // the side the other column shows: the two swap
      if (other.value === p.value) other.value = was[i];
      was = picks.map(function (q) { return q.value; });
      show();
    });
    p.parentNode.hidden = false;
  });
  show();
})();
"""
