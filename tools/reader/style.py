"""The site's stylesheet: light and dark (`prefers-color-scheme`), wide and narrow.

Code keeps its lines whole (`white-space: pre`) and its pane scrolls sideways, so a long line
never wraps back to column 0 and Python's indentation reads true. Anchors land below the
sticky column heads (`scroll-margin-top`). Numbers in tables never break at their exponent.
"""

from pygments.formatters import HtmlFormatter

COLOURS = """
:root { color-scheme: light dark; --bg: #fff; --fg: #1f2328; --muted: #424a53; --line: #d0d7de;
  --code-bg: #f6f8fa; --link: #0550ae; --mark: #fff8c5; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #0d1117; --fg: #e6edf3; --muted: #c9d1d9; --line: #3d444d; --code-bg: #161b22;
    --link: #58a6ff; --mark: #3b2e00; }
}
"""

LAYOUT = """
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1900px; padding: 0 1em;
  background: var(--bg); color: var(--fg); }
h1 { font-size: 1.5em; } a { color: var(--link); }
.layout { display: grid; grid-template-columns: 14em minmax(0, 1fr); column-gap: 1.5em; }
nav.side { position: sticky; top: 0; align-self: start; max-height: 100vh; overflow-y: auto;
  font-size: .88em; padding: .8em 0; }
nav.side h3 { font-size: .95em; margin: .9em 0 .2em; color: var(--muted); }
nav.side ul { list-style: none; margin: 0; padding: 0; } nav.side li { margin: .15em 0; }
#search { width: 95%; margin: .3em 0; padding: .25em; background: var(--bg); color: var(--fg);
  border: 1px solid var(--line); } #results { font-size: .95em; margin-bottom: .8em; }
nav.side a.here { font-weight: bold; background: var(--mark); }
nav.toc { font-size: .9em; border: 1px solid var(--line); padding: .3em 1em; margin: .5em 0 1em;
  max-width: 60em; } nav.toc ol { margin: .3em 0; columns: 2 18em; }
nav.prevnext { display: flex; justify-content: space-between; margin: 2em 0 1em;
  border-top: 1px solid var(--line); padding-top: .6em; }
[id] { scroll-margin-top: 3em; }
.twins { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); column-gap: 1em; }
.twins > .head, .ladder > .head { font-weight: bold; border-bottom: 2px solid #888;
  padding: .3em 0; position: sticky; top: 0; background: var(--bg); z-index: 1; }
.section { grid-column: 1 / -1; margin-top: 1.2em; border-top: 1px solid var(--line); }
.section h2 { font-size: 1.1em; margin: .4em 0; }
.explain { grid-column: 1 / -1; color: var(--muted); font-size: .92em; max-width: 60em;
  min-width: 0; overflow-x: auto; }
.doc, .rest, .run { max-width: 60em; } .run pre { background: var(--code-bg); padding: .5em; }
table { border-collapse: collapse; } td, th { border: 1px solid var(--line); padding: .2em .5em; }
.num { white-space: nowrap; }
img { max-width: 100%; } a.figure img { cursor: zoom-in; }
pre { overflow-x: auto; } .doc pre, .rest pre, .explain pre { background: var(--code-bg);
  padding: .5em; }
.proofs { grid-column: 1 / -1; font-size: .85em; margin: .2em 0 .4em; }
.code { overflow-x: auto; min-width: 0; } .code pre { margin: 0; font-size: 12.5px;
  white-space: pre; }
.pick { font-size: .9em; margin: .2em 0 .5em; } .pick select { font: inherit;
  background: var(--bg); color: var(--fg); border: 1px solid var(--line); }
.shared { border-left: 3px solid #888; padding-left: .5em; margin-top: .3em; }
.shared .label { font-size: .8em; color: var(--muted); }
.ladder { display: grid; grid-template-columns: repeat(3, minmax(0, 1fr)); column-gap: 1em; }
.ladder > .section { grid-column: 1 / -1; }
@media (max-width: 1000px) {
  .layout { grid-template-columns: minmax(0, 1fr); } nav.side { position: static; }
  .twins, .ladder { grid-template-columns: minmax(0, 1fr); }
  .twins > .head, .ladder > .head { display: none; }
  .code::before { content: attr(data-side); font-weight: bold; display: block; }
}
"""


def stylesheet() -> str:
    """The whole stylesheet: colours, layout, and the code's highlighting in both schemes."""
    light = HtmlFormatter(style="default").get_style_defs(".highlight")
    dark = HtmlFormatter(style="github-dark").get_style_defs(".highlight")
    return f"{COLOURS}{LAYOUT}{light}\n@media (prefers-color-scheme: dark) {{\n{dark}\n}}\n"
