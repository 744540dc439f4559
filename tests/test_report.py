"""shared.report on synthetic bench files: the tables, the ratios, combined runs, the chart and
the errors."""

from __future__ import annotations

import json

import pytest

from shared.bench import plot as report_plot
from shared.bench import report

MACHINE = {
    "platform": "Linux-6.8-x86_64",
    "processor": "Test CPU 9000",
    "cpu_count": 16,
    "python": "3.11.9",
    "device_name": "cpu",
}
VERSIONS = {
    "functional": {"jax": "0.4.35", "equinox": "0.11.8", "optax": "0.2.3"},
    "oop": {"torch": "2.4.1"},
}
PEAK = {"functional": 200.0, "oop": 100.0}


def result(model, variant, ms, iqr=0.1, *, batch=64, dtype="float32", flops=None, analytic=None):
    achieved = None if flops is None else flops / (ms * 1e-3) / 1e9
    return {
        "model": model,
        "variant": variant,
        "batch_size": batch,
        "dtype": dtype,
        "steps": 100,
        "repeats": 5,
        "warmup_s": 2.5,
        "step_ms_median": ms,
        "step_ms_iqr": iqr,
        "samples_per_s": batch / (ms * 1e-3),
        "peak_rss_mb": 500.0,
        "flops_per_step": flops,
        "flops_source": "xla cost analysis" if flops is not None else "none",
        "analytic_flops_per_step": analytic,
        "achieved_gflops": achieved,
        "roofline_fraction": None,  # the report falls back on achieved / the side's peak
    }


def bench(side, results, machine=None):
    return {
        "side": side,
        "device": "cpu",
        "machine": dict(machine or MACHINE),  # a copy: a test may break it
        "versions": dict(VERSIONS[side]),
        "threads": {"intra_op": 16, "note": "default pool"},
        "matmul_peak_gflops": PEAK[side],
        "results": results,
    }


def write(folder, name, content):
    path = folder / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


@pytest.fixture
def files(tmp_path):
    """Interleaved A B A B A: the functional mlp jit three times (1.0, 1.2, 5.0 ms: median 1.2,
    mean 2.4), the oop mlp eager twice (1.9, 2.1: median 2.0); the cnn has no oop eager."""
    f = [
        [
            result("mlp", "jit", 1.0, flops=1.1e6, analytic=1.0e6),
            result("mlp", "scan", 0.8),
            result("mlp", "loop", 8.0),
            result("cnn", "jit", 3.0),
        ],
        [result("mlp", "jit", 1.2, 0.3, flops=1.1e6, analytic=1.0e6)],
        [result("mlp", "jit", 5.0, 0.2, flops=1.1e6, analytic=1.0e6)],
    ]
    o = [
        [result("mlp", "eager", 1.9), result("mlp", "compile", 1.0), result("cnn", "compile", 6.0)],
        [result("mlp", "eager", 2.1, flops=4e6)],
    ]
    return [
        write(tmp_path, "f1.json", bench("functional", f[0])),
        write(tmp_path, "o1.json", bench("oop", o[0])),
        write(tmp_path, "f2.json", bench("functional", f[1])),
        write(tmp_path, "o2.json", bench("oop", o[1])),
        write(tmp_path, "f3.json", bench("functional", f[2])),
    ]


def table_rows(text, heading):
    """The table under `heading` as lists of stripped cells: the header, then the rows."""
    lines = text.split(heading, 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append([c.strip() for c in line.strip("|").split("|")])
    return [table[0], *table[2:]]  # table[1] is the rule


def test_the_report_tables_ratios_and_combined_runs(files, tmp_path, capsys):
    md, png = tmp_path / "out" / "r.md", tmp_path / "out" / "r.png"
    md.parent.mkdir()
    assert report.main([*files, "--md", str(md), "--png", str(png)]) == 0
    out = capsys.readouterr().out
    assert md.read_text() == out
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert "![ms per update, log scale](r.png)" in out  # relative to the Markdown file
    assert "Machine: Linux-6.8-x86_64 · Test CPU 9000 · 16 CPUs · device cpu" in out
    assert "jax 0.4.35, equinox 0.11.8, optax 0.2.3; threads: 16 intra-op (default pool)" in out
    assert "torch 2.4.1" in out and "Baseline: oop:eager (torch eager)." in out
    assert "warning" not in out
    assert "Files: 5, 10 results combined into 7 cells." in out
    assert "below 1 is faster than torch eager" in out
    assert "Rows without a result for oop:eager show no ratio." in out

    header, *rows = table_rows(out, "## Time per update")
    columns = ["functional:jit", "functional:scan", "functional:loop", "oop:eager", "oop:compile"]
    assert header == ["model", "batch", "dtype", *columns]
    assert [r[:3] for r in rows] == [["mlp", "64", "float32"], ["cnn", "64", "float32"]]
    mlp = dict(zip(header, rows[0], strict=True))
    assert mlp["functional:jit"] == "1.20 ± 0.20 (0.60×) [3 runs]"  # median, not mean
    assert mlp["functional:scan"] == "0.800 ± 0.10 (0.40×)"
    assert mlp["functional:loop"] == "8.00 ± 0.10 (4.00×)"
    assert mlp["oop:eager"] == "2.00 ± 0.10 (1.00×) [2 runs]"
    assert mlp["oop:compile"] == "1.00 ± 0.10 (0.50×)"
    cnn = dict(zip(header, rows[1], strict=True))
    assert cnn["functional:jit"] == "3.00 ± 0.10"
    assert cnn["oop:compile"] == "6.00 ± 0.10" and cnn["oop:eager"] == ""

    header, *rows = table_rows(out, "## Cost")
    cost = {(r[0], r[3]): dict(zip(header, r, strict=True)) for r in rows}
    assert len(cost) == 7
    jit = cost[("mlp", "functional:jit")]
    assert jit["runs (run medians, ms)"] == "3 (1.00–5.00)"
    assert jit["FLOPs/step (source)"] == "1.10 M (xla cost analysis)"
    assert jit["analytic (Δ)"] == "1.00 M (+10.0%)"
    # achieved: the median of 1.1, 0.917, 0.22 GFLOP/s; of the functional peak of 200
    assert jit["GFLOP/s"] == "0.917" and jit["% of peak"] == "0.458%"
    eager = cost[("mlp", "oop:eager")]  # one of two runs counted FLOPs: 4e6 in 2.1 ms
    assert eager["GFLOP/s"] == "1.90" and eager["% of peak"] == "1.90%"
    assert eager["analytic (Δ)"] == "—"
    assert cost[("cnn", "oop:compile")]["FLOPs/step (source)"] == "—"


def test_another_baseline_and_a_machine_warning(files, tmp_path, capsys):
    other = bench("oop", [result("mlp", "eager", 2.0)], {**MACHINE, "processor": "Other CPU"})
    path = write(tmp_path, "elsewhere.json", other)
    assert report.main([*files, path, "--baseline", "functional:jit"]) == 0
    out = capsys.readouterr().out
    assert (
        "> warning: the files come from different machines (processor 'Test CPU 9000' in "
        "f1.json, o1.json, f2.json, o2.json, f3.json; 'Other CPU' in elsewhere.json)" in out
    )
    assert "below 1 is faster than JAX jit" in out
    header, mlp, cnn = table_rows(out, "## Time per update")
    assert dict(zip(header, mlp, strict=True))["oop:eager"] == "2.00 ± 0.10 (1.67×) [3 runs]"
    assert dict(zip(header, cnn, strict=True))["oop:compile"] == "6.00 ± 0.10 (2.00×)"


def test_the_chart_marks_the_baseline(files):
    import matplotlib.pyplot as plt

    fig = report_plot.figure(report.build([report.load(f) for f in files]))
    ax = fig.axes[0]
    labels = ax.get_legend_handles_labels()[1]
    assert "oop:eager (baseline)" in labels and "baseline time" in labels
    assert ax.get_yscale() == "log" and ax.get_title() == "Test CPU 9000 · 16 CPUs · cpu"
    assert len(ax.get_xticklabels()) == 2  # one group per row of the main table
    plt.close(fig)


def broken(tmp_path, mutate):
    content = bench("oop", [result("mlp", "eager", 1.0)])
    mutate(content)
    return write(tmp_path, "bad.json", content)


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda t: str(t / "missing.json"),
            "missing.json: no such file; write it with python -m functional.bench --out",
        ),
        (
            lambda t: write(t, "bad.json", "{not json"),
            "bad.json is not JSON (Expecting property name enclosed in double quotes at line 1)",
        ),
        (lambda t: write(t, "bad.json", "[1, 2]"), "bad.json holds a JSON list, not a bench"),
        (
            lambda t: broken(t, lambda c: c.pop("results")),
            "the key 'results' is missing; rewrite it with python -m oop.bench",
        ),
        (
            lambda t: broken(t, lambda c: c["machine"].pop("processor")),
            "the key 'machine.processor' is missing",
        ),
        (
            lambda t: broken(t, lambda c: c["results"][0].pop("step_ms_iqr")),
            "the key 'results[0].step_ms_iqr' is missing",
        ),
        (
            lambda t: broken(t, lambda c: c["results"][0].update(step_ms_median="fast")),
            "'results[0].step_ms_median' is 'fast', not int/float",
        ),
        (lambda t: broken(t, lambda c: c.update(side="jax")), "'side' is 'jax', not functional"),
        (lambda t: broken(t, lambda c: c.update(results=[])), "no results in the files"),
    ],
)
def test_bad_files_are_one_line_errors(make, message, tmp_path, capsys):
    assert report.main([make(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("python -m shared.bench.report: error: "), err
    assert err.count("\n") == 1, err


def test_a_baseline_absent_from_the_data_is_an_error(files, capsys):
    assert report.main([*files, "--baseline", "functional:compile"]) == 2
    err = capsys.readouterr().err
    assert (
        "--baseline functional:compile matches no result in the files; pass one of "
        "functional:jit, functional:scan, functional:loop, oop:eager, oop:compile" in err
    )
    assert err.count("\n") == 1
    with pytest.raises(SystemExit) as e:
        report.main([*files, "--baseline", "eager"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "'eager' is not SIDE:VARIANT; pass e.g. oop:eager" in err and err.count("\n") == 1


def test_an_unwritable_output_is_an_error(files, tmp_path, capsys):
    assert report.main([*files, "--png", str(tmp_path / "nowhere" / "c.png")]) == 2
    assert "no folder" in capsys.readouterr().err
