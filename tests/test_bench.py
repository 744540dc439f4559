"""The paired benchmarks run and write complete, positive results: each script with `--quick`
(no torch.compile), then `shared.bench.report` over both files. Timing is never asserted here; the
FLOP counts are, against the analytic count of the MLP's matrix products."""

from __future__ import annotations

import json

import pytest

import crossover.functional_torch.bench as torch_func_bench
import crossover.oop_jax.bench as oop_jax_bench
import functional.bench
import oop.bench
from shared.bench import plot as bench_plot
from shared.bench import report, results
from shared.cli import bench as cli_bench

# XLA's cost analysis counts every operation, torch's FlopCounterMode the matrix products only
XLA_EXTRA = 0.1  # measured: 2.5% above the matrix products (bias adds, ReLU, softmax, Adam)


def test_both_benches_write_complete_results_and_the_report_merges_them(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("XLA_FLAGS", "")  # the functional bench adds its thread count
    files = {"functional": tmp_path / "f.json", "oop": tmp_path / "o.json"}
    for side, script in (("functional", functional.bench), ("oop", oop.bench)):
        assert script.main(["--quick", "--threads", "1", "--out", str(files[side])]) == 0
        result = json.loads(files[side].read_text())
        assert result["side"] == side and result["threads"]["intra_op"] == 1
        assert result["matmul_peak_gflops"] > 0
        variants = [r["variant"] for r in result["results"]]
        assert variants == (["jit", "scan", "vmap8", "loop"] if side == "functional"
                            else ["eager", "loop"])  # fmt: skip
        for r in result["results"]:
            for key in (
                "step_ms_median",
                "samples_per_s",
                "peak_rss_mb",
                "flops_per_step",
                "achieved_gflops",
                "roofline_fraction",
            ):
                assert r[key] > 0, (side, r["variant"], key)
            # a loop's warm-up is its first block beyond a typical one: 0 where nothing compiles
            assert r["step_ms_iqr"] >= 0 and r["warmup_s"] >= 0
            analytic = r["analytic_flops_per_step"]
            if side == "oop":
                assert r["flops_per_step"] == analytic
            else:
                assert analytic <= r["flops_per_step"] <= (1 + XLA_EXTRA) * analytic
    capsys.readouterr()
    md, png = tmp_path / "bench.md", tmp_path / "bench.png"
    assert (
        report.main(
            [str(files["functional"]), str(files["oop"]), "--md", str(md), "--png", str(png)]
        )
        == 0
    )
    assert "oop:eager" in md.read_text() and png.stat().st_size > 0
    # the grid's corners on the same flags (their loops skipped: the native sides time theirs),
    # merged with the native sides' files into one table of four sides
    corners = (("oop_jax", oop_jax_bench, ["nnx.jit", "split"]),
               ("functional_torch", torch_func_bench, ["eager", "vmap8"]))  # fmt: skip
    for side, script, variants in corners:
        files[side] = tmp_path / f"{side}.json"
        flags = ["--quick", "--threads", "1", "--skip", "loop", "--out", str(files[side])]
        assert script.main(flags) == 0
        result = json.loads(files[side].read_text())
        assert result["side"] == side and [r["variant"] for r in result["results"]] == variants
        assert all(r["step_ms_median"] > 0 and r["flops_per_step"] > 0 for r in result["results"])
    capsys.readouterr()
    assert report.main([*map(str, files.values()), "--md", str(md)]) == 0
    table = md.read_text()
    assert "oop_jax:nnx.jit" in table and "functional_torch:eager" in table
    # nine batch sizes: the chart wraps onto a second axis instead of shrinking to a strip
    wide = json.loads(files["oop"].read_text())
    wide["results"] = [{**r, "batch_size": b} for r in wide["results"] for b in range(1, 10)]
    (tmp_path / "wide.json").write_text(json.dumps(wide))
    built = results.build([results.load(str(tmp_path / "wide.json"))])
    fig = bench_plot.figure(built)
    assert len(built.rows) == 9 and len(fig.axes) == 2 and fig.get_size_inches()[0] <= 14


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--batch-size", "0"], "--batch-size must be >= 1, got 0"),  # once timed 128
        (["--out", "missing/bench.json"], "no folder 'missing' to write it in"),
    ],
)
def test_bad_bench_flags_exit_before_the_benchmark_runs(flags, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        cli_bench.parse_bench("oop", [*flags])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
