"""Merge benchmark files into one report: `python -m shared.report FILES... [--md OUT.md]
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
Reading and combining the files: `shared/bench_results.py`; the chart: `shared/report_plot.py`.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

from shared import errors
from shared.bench_results import (
    DEFAULT_BASELINE,
    FRAMEWORK,
    SIDES,
    BenchFile,
    Report,
    build,
    distinct,
    load,
    median_of,
)
from shared.cli import HelpFormatter, Parser
from shared.report_plot import plot

# -- formatting --


def _num(x: float | None, digits: int = 3) -> str:
    """`digits` significant digits, never an exponent: 1.20, 0.0123, 1234."""
    if x is None:
        return "—"
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    return f"{x:.{decimals}f}"


def _si(x: float | None) -> str:
    if x is None:
        return "—"
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{_num(x / scale)} {prefix}"
    return _num(x)


def _table(header: list[str], rows: list[list[str]], right: set[int]) -> str:
    """A Markdown table padded to line up in a terminal; columns in `right` align right."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells):
        padded = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = ["-" * (w - 1) + ":" if i in right else "-" * w for i, w in enumerate(widths)]
    return "\n".join([line(header), line(rule), *(line(r) for r in rows)])


def describe(column: str) -> str:
    """`oop:eager` -> `torch eager`, `functional:jit` -> `JAX jit`."""
    side, variant = column.split(":", 1)
    return f"{FRAMEWORK[side]} {variant}"


def _row_cells(report: Report, row: tuple) -> list[str]:
    model, batch, dtype, device = row
    return [model, str(batch), dtype] + ([device] if len(report.devices) > 1 else [])


def _row_header(report: Report) -> list[str]:
    return ["model", "batch", "dtype"] + (["device"] if len(report.devices) > 1 else [])


def main_table(report: Report) -> str:
    lead = _row_header(report)
    body = []
    for row in report.rows:
        cells = _row_cells(report, row)
        for column in report.columns:
            e = report.entries.get((row, column))
            if e is None:
                cells.append("")
                continue
            ratio = report.ratio(row, column)
            cell = f"{_num(e.step_ms)} ± {_num(e.iqr_ms, 2)}"
            if ratio is not None:  # two decimals; two significant digits below 0.1
                cell += f" ({ratio:.2f}×)" if ratio >= 0.1 else f" ({_num(ratio, 2)}×)"
            cell += f" [{e.runs} runs]" if e.runs > 1 else ""
            cells.append(cell)
        body.append(cells)
    right = set(range(len(lead), len(lead) + len(report.columns))) | {1}
    return _table(lead + report.columns, body, right)


def cost_table(report: Report) -> str:
    header = _row_header(report) + [
        "side:variant",
        "runs (run medians, ms)",
        "warm-up s",
        "peak RSS MB",
        "FLOPs/step (source)",
        "analytic (Δ)",
        "GFLOP/s",
        "% of peak",
    ]
    body = []
    for row in report.rows:
        for column in report.columns:
            e = report.entries.get((row, column))
            if e is None:
                continue
            runs = str(e.runs)
            if e.runs > 1:
                runs += f" ({_num(min(e.run_ms))}–{_num(max(e.run_ms))})"
            flops = _si(e.flops) + (f" ({e.flops_source})" if e.flops is not None else "")
            analytic = _si(e.analytic_flops)
            if e.analytic_flops and e.flops is not None:
                analytic += f" ({(e.flops - e.analytic_flops) / e.analytic_flops:+.1%})"
            roofline = "—" if e.roofline is None else f"{_num(100 * e.roofline)}%"
            body.append(
                _row_cells(report, row)
                + [
                    column,
                    runs,
                    _num(e.warmup_s),
                    _num(e.peak_rss_mb),
                    flops,
                    analytic,
                    _num(e.achieved_gflops),
                    roofline,
                ]
            )
    n = len(_row_header(report))
    right = {1, n + 2, n + 3, n + 6, n + 7}
    return _table(header, body, right)


def _machine_line(m: dict) -> str:
    cpus = "? CPUs" if m["cpu_count"] is None else f"{m['cpu_count']} CPUs"
    return (
        f"{m['platform']} · {m['processor'] or 'unknown processor'} · {cpus} · "
        f"device {m['device_name']}"
    )


def _names(files: list[BenchFile]) -> str:
    return ", ".join(os.path.basename(f.path) for f in files)


def warnings(report: Report) -> list[str]:
    """Differences between the files that make their times hard to compare; not errors."""
    out = []
    machines = distinct(report.files, lambda f: f.machine["processor"])
    if len(machines) > 1:
        where = "; ".join(f"{p or 'unknown'!r} in {_names(fs)}" for p, fs in machines.items())
        out.append(
            f"the files come from different machines (processor {where}); "
            "their times do not compare"
        )
    names = distinct(report.files, lambda f: f.machine["device_name"])
    if len(names) > 1 and len(machines) == 1:
        where = "; ".join(f"{d!r} in {_names(fs)}" for d, fs in names.items())
        out.append(f"the files ran on different devices ({where}); their times do not compare")
    if len(report.devices) > 1:
        out.append(
            f"the files mix devices ({', '.join(report.devices)}); each device has its own rows"
        )
    for side in SIDES:
        files = [f for f in report.files if f.side == side]
        for label, key in (("versions", _versions), ("threads", _threads)):
            seen = distinct(files, key)
            if len(seen) > 1:
                where = "; ".join(f"{v} in {_names(fs)}" for v, fs in seen.items())
                out.append(f"the {side} files differ in {label}: {where}")
    return out


def _versions(f: BenchFile) -> str:
    return ", ".join(f"{k} {v}" for k, v in f.versions.items()) or "no versions given"


def _threads(f: BenchFile) -> str:
    note = f" ({f.threads['note']})" if f.threads["note"] else ""
    return f"{f.threads['intra_op']} intra-op{note}"


def markdown(report: Report, image: str | None = None) -> str:
    files = report.files
    combined = sum(e.runs for e in report.entries.values())
    lines = ["# Benchmark report", ""]
    machines = distinct(files, lambda f: _machine_line(f.machine))
    if len(machines) == 1:
        lines.append(f"Machine: {next(iter(machines))}")
    else:
        lines.append("Machines:")
        lines += [f"- {m} ({_names(fs)})" for m, fs in machines.items()]
    lines += [
        "",
        f"Files: {len(files)}, {combined} results combined into {len(report.entries)} cells.",
        "",
    ]
    for side in SIDES:
        side_files = [f for f in files if f.side == side]
        if not side_files:
            lines.append(f"- {side}: no files")
            continue
        first = side_files[0]
        peaks = [f.matmul_peak_gflops for f in side_files if f.matmul_peak_gflops]
        peak = f"{_num(median_of(peaks))} GFLOP/s" if peaks else "not measured"
        lines.append(
            f"- {side} ({_names(side_files)}): {_versions(first)}; threads: {_threads(first)}; "
            f"Python {first.machine['python']}; float32 matmul peak {peak}"
        )
    lines += ["", f"Baseline: {report.baseline} ({describe(report.baseline)}).", ""]
    found = warnings(report)
    lines += [f"> warning: {w}" for w in found] + ([""] if found else [])
    lines += ["## Time per update", "", main_table(report), ""]
    lines.append(
        f"Each cell is the median ms per update ± the interquartile range over the repeats, "
        f"then the ratio (this time / the {report.baseline} time of the same row): below 1 is "
        f"faster than {describe(report.baseline)}."
    )
    if any((row, report.baseline) not in report.entries for row in report.rows):
        lines.append(f"Rows without a result for {report.baseline} show no ratio.")
    if any(e.runs > 1 for e in report.entries.values()):
        lines.append(
            "[k runs]: the same setting measured in k files (interleaved runs); the cell is the "
            "median of their medians, the ± the median of their IQRs."
        )
    lines += ["", "## Cost", "", cost_table(report), ""]
    lines.append(
        "Warm-up: compilation or warm-up time, measured apart from the timed steps. Peak RSS: "
        "the largest over the runs. Analytic (Δ): the hand-counted FLOPs and the measured "
        "count's relative difference from it. % of peak: achieved GFLOP/s as a share of the "
        "side's own measured float32 matmul peak."
    )
    if image is not None:
        lines += ["", f"![ms per update, log scale]({image})"]
    return "\n".join(lines) + "\n"


# -- command line --


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


@errors.entry_point("python -m shared.report", refuse=(ValueError,))
def main(argv: list[str] | None = None) -> int:
    p = Parser(
        prog="python -m shared.report",
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
