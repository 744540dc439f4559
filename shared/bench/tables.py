"""The benchmark report's Markdown: the machine and versions, the main table of ms per update
with ratios to the baseline, the cost table, and the warnings (`python -m shared.bench.report`).
"""

from __future__ import annotations

import math
import os

from shared.bench.results import FRAMEWORK, SIDES, BenchFile, Report, distinct, median_of


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
