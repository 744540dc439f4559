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
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
from dataclasses import dataclass

from shared.cli import HelpFormatter, Parser

SIDES = ("functional", "oop")
FRAMEWORK = {"functional": "JAX", "oop": "torch"}
# Column order within a side; a variant not listed here follows its side's known ones.
VARIANTS = {"functional": ("jit", "scan", "loop"), "oop": ("eager", "compile", "loop")}
DTYPES = ("float32", "float64")
DEFAULT_BASELINE = "oop:eager"

# The schema the bench scripts write: key -> accepted JSON types (None: null allowed).
NUMBER = (int, float)
TOP_KEYS = {
    "side": (str,),
    "device": (str,),
    "machine": (dict,),
    "versions": (dict,),
    "threads": (dict,),
    "matmul_peak_gflops": (*NUMBER, type(None)),
    "results": (list,),
}
MACHINE_KEYS = {
    "platform": (str,),
    "processor": (str,),
    "cpu_count": (int, type(None)),
    "python": (str,),
    "device_name": (str,),
}
THREAD_KEYS = {"intra_op": (int,), "note": (str,)}
RESULT_KEYS = {
    "model": (str,),
    "variant": (str,),
    "batch_size": (int,),
    "dtype": (str,),
    "steps": (int,),
    "repeats": (int,),
    "warmup_s": NUMBER,
    "step_ms_median": NUMBER,
    "step_ms_iqr": NUMBER,
    "samples_per_s": NUMBER,
    "peak_rss_mb": NUMBER,
    "flops_per_step": (*NUMBER, type(None)),
    "flops_source": (str,),
    "analytic_flops_per_step": (*NUMBER, type(None)),
    "achieved_gflops": (*NUMBER, type(None)),
    "roofline_fraction": (*NUMBER, type(None)),
}


# -- reading --


@dataclass(frozen=True)
class BenchFile:
    path: str
    side: str
    device: str
    machine: dict
    versions: dict
    threads: dict
    matmul_peak_gflops: float | None
    results: list[dict]


def _fix(path: str, side: str | None = None) -> str:
    if side in SIDES:
        return f"rewrite it with python -m {side}.bench --out {path}"
    return f"write it with python -m functional.bench --out {path} (or oop.bench)"


def _check(obj: dict, keys: dict, where: str, path: str, side: str | None) -> None:
    for key, types in keys.items():
        if key not in obj:
            raise ValueError(f"{path}: the key '{where}{key}' is missing; {_fix(path, side)}")
        value = obj[key]
        if isinstance(value, bool) or not isinstance(value, types):
            wanted = "/".join("null" if t is type(None) else t.__name__ for t in types)
            raise ValueError(
                f"{path}: '{where}{key}' is {value!r}, not {wanted}; {_fix(path, side)}"
            )


def load(path: str) -> BenchFile:
    """One bench file, checked against the schema; a ValueError names the key and the fix."""
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such file; {_fix(path)}")
    try:
        with open(path, encoding="utf-8") as f:
            info = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not JSON ({e.msg} at line {e.lineno}); {_fix(path)}") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: cannot read it ({e}); {_fix(path)}") from e
    if not isinstance(info, dict):
        raise ValueError(
            f"{path} holds a JSON {type(info).__name__}, not a bench object; {_fix(path)}"
        )
    side = info.get("side")
    _check(info, TOP_KEYS, "", path, side)
    if side not in SIDES:
        raise ValueError(f"{path}: 'side' is {side!r}, not functional or oop; {_fix(path)}")
    _check(info["machine"], MACHINE_KEYS, "machine.", path, side)
    _check(info["threads"], THREAD_KEYS, "threads.", path, side)
    for i, result in enumerate(info["results"]):
        if not isinstance(result, dict):
            raise ValueError(f"{path}: results[{i}] is not an object; {_fix(path, side)}")
        _check(result, RESULT_KEYS, f"results[{i}].", path, side)
        if not result["step_ms_median"] > 0:
            raise ValueError(
                f"{path}: results[{i}].step_ms_median is {result['step_ms_median']}, not a "
                f"positive time; {_fix(path, side)}"
            )
    return BenchFile(
        path=path,
        side=side,
        device=info["device"],
        machine=info["machine"],
        versions=info["versions"],
        threads=info["threads"],
        matmul_peak_gflops=info["matmul_peak_gflops"],
        results=info["results"],
    )


# -- combining --


@dataclass(frozen=True)
class Entry:
    """One (side, variant) on one row: every run of it combined."""

    side: str
    variant: str
    row: tuple  # (model, batch_size, dtype, device)
    runs: int
    step_ms: float  # the median of the runs' medians
    iqr_ms: float  # the median of the runs' IQRs
    run_ms: tuple[float, ...]  # each run's median, in file order
    warmup_s: float
    samples_per_s: float
    peak_rss_mb: float  # the largest of the runs'
    flops: float | None
    flops_source: str
    analytic_flops: float | None
    achieved_gflops: float | None
    roofline: float | None  # a fraction of the side's matmul peak

    @property
    def column(self) -> str:
        return f"{self.side}:{self.variant}"


def _median(values) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _combine(side: str, variant: str, row: tuple, runs: list[tuple[BenchFile, dict]]) -> Entry:
    results = [r for _, r in runs]
    step_ms = _median(r["step_ms_median"] for r in results)
    flops = _median(r["flops_per_step"] for r in results)
    achieved = _median(r["achieved_gflops"] for r in results)
    if achieved is None and flops is not None:
        achieved = flops / (step_ms * 1e-3) / 1e9

    def fraction(f: BenchFile, r: dict) -> float | None:
        if r["roofline_fraction"] is not None:
            return r["roofline_fraction"]
        if r["achieved_gflops"] is not None and f.matmul_peak_gflops:
            return r["achieved_gflops"] / f.matmul_peak_gflops
        return None

    roofline = _median(fraction(f, r) for f, r in runs)
    if roofline is None and achieved is not None:
        peak = _median(f.matmul_peak_gflops or None for f, _ in runs)
        roofline = None if peak is None else achieved / peak
    sources = dict.fromkeys(
        r["flops_source"] for r in results if r["flops_per_step"] is not None and r["flops_source"]
    )
    return Entry(
        side=side,
        variant=variant,
        row=row,
        runs=len(results),
        step_ms=step_ms,
        iqr_ms=_median(r["step_ms_iqr"] for r in results),
        run_ms=tuple(r["step_ms_median"] for r in results),
        warmup_s=_median(r["warmup_s"] for r in results),
        samples_per_s=_median(r["samples_per_s"] for r in results),
        peak_rss_mb=max(r["peak_rss_mb"] for r in results),
        flops=flops,
        flops_source=", ".join(sources),
        analytic_flops=_median(r["analytic_flops_per_step"] for r in results),
        achieved_gflops=achieved,
        roofline=roofline,
    )


def _column_key(column: str) -> tuple:
    side, variant = column.split(":", 1)
    known = VARIANTS[side]
    return (SIDES.index(side), known.index(variant) if variant in known else len(known), variant)


@dataclass(frozen=True)
class Report:
    files: list[BenchFile]
    baseline: str  # "side:variant"
    rows: list[tuple]  # (model, batch_size, dtype, device), in table order
    columns: list[str]  # "side:variant", in table order
    entries: dict[tuple, Entry]  # (row, column) -> Entry

    def ratio(self, row: tuple, column: str) -> float | None:
        """This cell's time / the baseline's time on the same row; None without a baseline."""
        base = self.entries.get((row, self.baseline))
        cell = self.entries.get((row, column))
        return None if base is None or cell is None else cell.step_ms / base.step_ms

    @property
    def devices(self) -> list[str]:
        return sorted({row[3] for row in self.rows})


def build(files: list[BenchFile], baseline: str = DEFAULT_BASELINE) -> Report:
    """Group every result by (side, model, variant, batch size, dtype, device) and combine."""
    groups: dict[tuple, list[tuple[BenchFile, dict]]] = {}
    models: dict[str, int] = {}  # model -> order of first appearance
    for f in files:
        for r in f.results:
            models.setdefault(r["model"], len(models))
            row = (r["model"], r["batch_size"], r["dtype"], f.device)
            groups.setdefault((row, f"{f.side}:{r['variant']}"), []).append((f, r))
    if not groups:
        names = ", ".join(f.path for f in files)
        raise ValueError(f"{names}: no results in the files; run the bench scripts with --out")
    entries = {}
    for (row, column), runs in groups.items():
        side, variant = column.split(":", 1)
        entries[(row, column)] = _combine(side, variant, row, runs)
    columns = sorted({c for _, c in entries}, key=_column_key)
    if baseline not in columns:
        raise ValueError(
            f"--baseline {baseline} matches no result in the files; pass one of "
            + ", ".join(columns)
        )

    def row_key(row):
        model, batch, dtype, device = row
        return (models[model], batch, DTYPES.index(dtype) if dtype in DTYPES else 9, dtype, device)

    rows = sorted({row for row, _ in entries}, key=row_key)
    return Report(files, baseline, rows, columns, entries)


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


def _distinct(files: list[BenchFile], key) -> dict[str, list[BenchFile]]:
    out: dict[str, list[BenchFile]] = {}
    for f in files:
        out.setdefault(key(f), []).append(f)
    return out


def warnings(report: Report) -> list[str]:
    """Differences between the files that make their times hard to compare; not errors."""
    out = []
    machines = _distinct(report.files, lambda f: f.machine["processor"])
    if len(machines) > 1:
        where = "; ".join(f"{p or 'unknown'!r} in {_names(fs)}" for p, fs in machines.items())
        out.append(
            f"the files come from different machines (processor {where}); "
            "their times do not compare"
        )
    names = _distinct(report.files, lambda f: f.machine["device_name"])
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
            seen = _distinct(files, key)
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
    machines = _distinct(files, lambda f: _machine_line(f.machine))
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
        peak = f"{_num(_median(peaks))} GFLOP/s" if peaks else "not measured"
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


# -- plotting --


def _colors(columns: list[str]) -> dict[str, tuple]:
    import matplotlib

    out = {}
    for side, cmap in (("functional", "Blues"), ("oop", "Oranges")):
        mine = [c for c in columns if c.startswith(side + ":")]
        shades = matplotlib.colormaps[cmap]
        for i, c in enumerate(mine):
            out[c] = shades(0.85 - 0.5 * i / max(1, len(mine) - 1))
    return out


def title(report: Report) -> str:
    machines = _distinct(report.files, lambda f: f.machine["processor"])
    if len(machines) > 1:
        return "mixed machines: " + " / ".join(p or "unknown" for p in machines)
    m = report.files[0].machine
    cpus = "" if m["cpu_count"] is None else f" · {m['cpu_count']} CPUs"
    device = f" · {m['device_name']}" if m["device_name"] not in ("", m["processor"]) else ""
    return f"{m['processor'] or m['platform']}{cpus}{device}"


def figure(report: Report):
    """Grouped bars: one group per row of the main table, one bar per side:variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    rows, columns = report.rows, report.columns
    colors = _colors(columns)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(rows) * max(1, len(columns)) / 3), 4.8))
    width = 0.8 / len(columns)
    for j, column in enumerate(columns):
        xs, ys = [], []
        for i, row in enumerate(rows):
            e = report.entries.get((row, column))
            if e is not None:
                xs.append(i - 0.4 + width * (j + 0.5))
                ys.append(e.step_ms)
        is_base = column == report.baseline
        ax.bar(
            xs,
            ys,
            width,
            color=colors[column],
            label=f"{column} (baseline)" if is_base else column,
            hatch="//" if is_base else None,
            edgecolor="black" if is_base else "none",
            linewidth=0.8,
        )
    marked = False
    for i, row in enumerate(rows):
        base = report.entries.get((row, report.baseline))
        if base is not None:
            ax.hlines(
                base.step_ms,
                i - 0.45,
                i + 0.45,
                colors="black",
                linestyles="--",
                lw=0.9,
                label=None if marked else "baseline time",
            )
            marked = True
    several = len(report.devices) > 1
    labels = [
        f"{model}\nbatch {batch}\n{dtype}" + (f"\n{device}" if several else "")
        for model, batch, dtype, device in rows
    ]
    ax.set_xticks(range(len(rows)), labels, fontsize=8)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda y, _: f"{y:g}"))
    ax.yaxis.set_minor_formatter(
        matplotlib.ticker.LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5))
    )  # plain numbers (0.5, 2, 20), not 2×10⁰
    ax.set_ylabel("ms per update (median, log scale)")
    ax.set_title(title(report), fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    return fig


def plot(report: Report, path: str) -> str:
    import matplotlib.pyplot as plt

    fig = figure(report)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


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
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
