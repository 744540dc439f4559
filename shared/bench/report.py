"""Merge benchmark files into one report: `python -m shared.bench.report FILES... [--md OUT.md]
[--png OUT.png] [--baseline oop:eager]`.

FILES are the JSON files `python -m functional.bench --out F.json` and `python -m oop.bench --out
O.json` write, several per side when the runs were interleaved (A B A B). The report, in
Markdown on stdout (and in --md), states the machine, each side's versions and threads, then:

- the main table: one row per (model, batch size, dtype), one column per `side:variant`; a cell
  is the median ms per update ± its IQR and the ratio to the baseline of the same row;
- the cost table: warm-up time, peak RSS, FLOPs per step (measured, and the analytic count where
  the bench has one), achieved GFLOP/s and the share of the side's measured matmul peak.

Results that measured the same (side, model, variant, batch size, dtype) in several files are
combined: the median of their medians, the median of their IQRs, and the count of runs. --png
draws the main table as grouped bars on a log axis, the baseline hatched and marked per group.
Reading and combining the files: `shared/bench/results.py`; the tables: `shared/bench/tables.py`;
the chart: `shared/bench/plot.py`.
"""

from __future__ import annotations

import argparse
import os
import sys

from shared import errors
from shared.bench.plot import plot
from shared.bench.results import DEFAULT_BASELINE, SIDES, build, load
from shared.bench.tables import markdown
from shared.cli.base import HelpFormatter, Parser


def _baseline(text: str) -> str:
    side, sep, variant = text.partition(":")
    if not sep or side not in SIDES or not variant:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not SIDE:VARIANT; pass e.g. oop:eager or functional:jit"
        )
    return text


BEGIN, END = "<!-- report -->", "<!-- /report -->"


def splice(page: str, text: str) -> None:
    """Replace what stands between BEGIN and END in the Markdown file `page` with `text` (its
    title line dropped, since the page has its own), leaving the rest of the page alone."""
    with open(page, encoding="utf-8") as f:
        old = f.read()
    if BEGIN not in old or END not in old:
        raise ValueError(f"{page} has no {BEGIN} ... {END} block to replace; add one")
    body = text.split("\n", 1)[1] if text.startswith("# ") else text
    head, rest = old.split(BEGIN, 1)
    new = f"{head}{BEGIN}\n{body.strip()}\n{END}{rest.split(END, 1)[1]}"
    with open(page, "w", encoding="utf-8") as f:
        f.write(new)


@errors.entry_point("python -m shared.bench.report", refuse=(ValueError,))
def main(argv: list[str] | None = None) -> int:
    p = Parser(
        prog="python -m shared.bench.report",
        description="Merge the JSON files of python -m functional.bench and python -m oop.bench "
        "(several per side for interleaved runs) into a Markdown report on stdout, and a chart.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="a bench --out file")
    p.add_argument("--md", default=None, metavar="OUT.md", help="also write the report here")
    p.add_argument(
        "--png", default=None, metavar="OUT.png", help="write a grouped bar chart of ms per update"
    )
    p.add_argument(
        "--into",
        default=None,
        metavar="PAGE.md",
        help=f"replace the block between {BEGIN} and {END} in PAGE.md with the report",
    )
    p.add_argument(
        "--baseline",
        default=DEFAULT_BASELINE,
        type=_baseline,
        metavar="SIDE:VARIANT",
        help="the column every cell's ratio divides by",
    )
    args = p.parse_args(argv)
    try:
        report = build([load(path) for path in args.files], args.baseline)
        image = args.png  # the chart's link in the report: as given, or relative to the page
        page = args.md or args.into
        if args.png is not None and page is not None:
            start = os.path.dirname(os.path.abspath(page))
            image = os.path.relpath(os.path.abspath(args.png), start)
        text = markdown(report, image)
        for out in (args.md, args.png):
            folder = os.path.dirname(os.path.abspath(out)) if out else "."
            if not os.path.isdir(folder):
                raise ValueError(f"cannot write {out}: no folder {folder}; create it first")
        if args.md is not None:
            with open(args.md, "w", encoding="utf-8") as f:
                f.write(text)
        if args.png is not None:
            plot(report, args.png)
        if args.into is not None:
            splice(args.into, text)
    except OSError as e:  # a file to read or write: nothing printed yet
        raise errors.Refused(errors.os_reason(e)) from None
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
