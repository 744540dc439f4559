"""The site's stylesheet: light and dark (`prefers-color-scheme`), wide and narrow."""

STYLE = """
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1800px; padding: 0 1em; }
h1 { font-size: 1.5em; } a { color: #0550ae; }
.twins { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); column-gap: 1em; }
.twins > .head { font-weight: bold; border-bottom: 2px solid #888; padding: .3em 0;
  position: sticky; top: 0; background: #fff; z-index: 1; }
.section { grid-column: 1 / -1; margin-top: 1.2em; border-top: 1px solid #ccc; }
.section h2 { font-size: 1.1em; margin: .4em 0; }
.explain { grid-column: 1 / -1; color: #333; font-size: .92em; max-width: 60em; min-width: 0;
  overflow-x: auto; }
.doc, .rest { max-width: 60em; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: .2em .5em; }
img { max-width: 100%; } pre { overflow-x: auto; } .doc pre, .rest pre, .explain pre {
  background: #f6f8fa; padding: .5em; }
nav.pages { float: right; margin: 0 0 1em 1.5em; padding: .5em 1em; border: 1px solid #ccc; }
.proofs { grid-column: 1 / -1; font-size: .85em; margin: .2em 0 .4em; }
.code { overflow-x: auto; min-width: 0; } .code pre { margin: 0; font-size: 12.5px;
  white-space: pre-wrap; }
.ladder { display: grid; grid-template-columns: repeat(3, minmax(0, 1fr)); column-gap: 1em; }
@media (max-width: 1000px) {
  .twins, .ladder { grid-template-columns: minmax(0, 1fr); }
  .twins > .head { display: none; }
  .code::before { content: attr(data-side); font-weight: bold; display: block; }
}
"""
