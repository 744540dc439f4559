"""The benchmark report's chart: grouped bars on a log axis, one group per row of the main
table, one bar per `side:variant`, the baseline hatched and marked per group."""

from __future__ import annotations

from shared.bench.results import Report, distinct

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
    machines = distinct(report.files, lambda f: f.machine["processor"])
    if len(machines) > 1:
        return "mixed machines: " + " / ".join(p or "unknown" for p in machines)
    m = report.files[0].machine
    cpus = "" if m["cpu_count"] is None else f" · {m['cpu_count']} CPUs"
    device = f" · {m['device_name']}" if m["device_name"] not in ("", m["processor"]) else ""
    return f"{m['processor'] or m['platform']}{cpus}{device}"


PER_AXIS = 8  # groups per row of the chart: a wide report wraps instead of shrinking to a strip


def figure(report: Report):
    """Grouped bars: one group per row of the main table, one bar per side:variant; more than
    PER_AXIS groups wrap onto further axes, one under the other, so the text stays readable."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, columns = report.rows, report.columns
    chunks = [rows[i : i + PER_AXIS] for i in range(0, len(rows), PER_AXIS)] or [[]]
    across = max(len(c) for c in chunks)
    fig, axes = plt.subplots(
        len(chunks), 1, squeeze=False,
        figsize=(min(14.0, max(6.0, 1.1 * across * max(1, len(columns)) / 3)), 4.2 * len(chunks)),
    )  # fmt: skip
    for ax, chunk in zip(axes[:, 0], chunks, strict=True):
        _bars(ax, report, chunk, _colors(columns))
    axes[0, 0].set_title(title(report), fontsize=10)
    axes[0, 0].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    return fig


def _bars(ax, report: Report, rows: list, colors: dict) -> None:
    import matplotlib.ticker

    columns = report.columns
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
            ax.hlines(base.step_ms, i - 0.45, i + 0.45, colors="black", linestyles="--", lw=0.9,
                      label=None if marked else "baseline time")  # fmt: skip
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
    ax.grid(axis="y", which="both", alpha=0.3)


def plot(report: Report, path: str) -> str:
    import matplotlib.pyplot as plt

    fig = figure(report)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
