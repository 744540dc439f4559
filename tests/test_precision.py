"""The GPU precision switches (`--tf32`), checked where no GPU is: what each side sets, what
the flags refuse, and how the report keeps TF32 runs apart. What TF32 does to the numbers is
measured on a GPU by tests/gpu_check.py and emulated by tests/traps/test_precision_traps.py."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from test_report import bench, result

from functional import train as ftrain
from oop import train as otrain
from shared import compare
from shared.bench.results import build, load
from shared.cli import bench as cli_bench
from shared.cli import train as cli
from shared.config import TrainConfig


@pytest.fixture
def torch_switches():
    """torch's switches are global: put them back after the test."""
    saved = [m.fp32_precision for m in otrain.TF32_SWITCHES]
    yield otrain.TF32_SWITCHES
    for m, value in zip(otrain.TF32_SWITCHES, saved, strict=True):
        m.fp32_precision = value


def test_tf32_is_a_gpu_setting_on_every_entry_point(capsys):
    with pytest.raises(ValueError, match="TF32 is a GPU setting"):
        TrainConfig(tf32=True)
    for parse in (
        lambda: cli.parse("oop", ["--tf32"]),
        lambda: cli_bench.parse_bench("oop", ["--tf32"]),
    ):
        with pytest.raises(SystemExit):
            parse()
        assert "is a GPU setting: add --device gpu" in capsys.readouterr().err
    cfg, _, _ = cli.parse("functional", ["--tf32", "--device", "gpu", "--dry-run"])
    assert cfg.tf32 and cfg.device == "gpu"


def test_the_functional_side_traces_products_at_the_precision_chosen():
    """On a GPU: HIGHEST (IEEE float32) unless --tf32; on the CPU, XLA's default, untouched."""

    def precision_of(cfg) -> str:
        with ftrain.precision(cfg):
            text = jax.jit(lambda a: a @ a).lower(jnp.ones((4, 4))).as_text()
        return text.split("precision = [")[1].split(",")[0] if "precision = [" in text else ""

    assert precision_of(TrainConfig(device="gpu")) == "HIGHEST"
    assert precision_of(TrainConfig(device="gpu", tf32=True)) == "HIGH"  # TF32 on a GPU
    assert precision_of(TrainConfig()) == "DEFAULT"  # the CPU: left to XLA, which has no TF32


def test_the_oop_side_sets_all_three_of_torchs_switches_on_a_gpu_only(torch_switches):
    before = [m.fp32_precision for m in torch_switches]
    otrain.set_precision(TrainConfig(), torch.device("cpu"))  # the CPU: left alone
    assert [m.fp32_precision for m in torch_switches] == before
    cuda = torch.device("cuda")  # a name only: nothing runs on it
    otrain.set_precision(TrainConfig(device="gpu", tf32=True), cuda)
    assert [m.fp32_precision for m in torch_switches] == ["tf32"] * 3
    otrain.set_precision(TrainConfig(device="gpu"), cuda)
    assert [m.fp32_precision for m in torch_switches] == ["ieee"] * 3


def test_bench_skips_variants_and_the_report_keeps_tf32_rows_apart(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli_bench.parse_bench("functional", ["--skip", "compile"])  # an OOP variant
    assert "optional variants are ['scan', 'vmap8', 'loop']" in capsys.readouterr().err
    args = cli_bench.parse_bench("oop", ["--quick", "--skip", "loop"])
    assert set(args.skip) == {"compile", "loop"}
    for side, variant in (("functional", "jit"), ("oop", "eager")):
        for tf32 in (False, True):
            res = dict(result("mlp", variant, 1.0 + tf32), tf32=tf32)
            path = tmp_path / f"{side}-{tf32}.json"
            path.write_text(json.dumps(dict(bench(side, [res]), device="gpu")))
    rep = build([load(str(p)) for p in sorted(tmp_path.glob("*.json"))])
    assert [dtype for _, _, dtype, _ in rep.rows] == ["float32", "float32+tf32"]


def test_a_run_from_before_tf32_compares_as_ieee():
    """config.json of an older run has no `tf32`; it was IEEE float32, the default."""

    def run(config):
        return compare.Run("r", "r", *([np.zeros(1)] * 3), 0.0, {}, config, None)

    old = {"model": "mlp", "lr": 1e-3}
    assert compare.config_differences(run(old), run(old | {"tf32": False})) == []
    assert compare.config_differences(run(old), run(old | {"tf32": True})) == [
        "tf32 (False vs True)"
    ]
