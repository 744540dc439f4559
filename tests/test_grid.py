"""The grid: the MLP on all four corners (shared.sides) agrees, along each row (the same
paradigm on two frameworks) and each column (the same framework in two paradigms).

In float64 every pair of corners agrees to F64_TOL over 100 updates, run through the training
scripts as a user runs them, and a run stopped in one corner goes on in another. In float32 each
new corner is judged against its row and its column by the rounding control (tests/rounding.py),
and the test prints whether the same-framework pairs are bit-identical (docs/paradigms.md).
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys

import jax
import numpy as np
import pytest
import torch
from corners import (
    TORCH_FUNC,
    check_grid,
    functional_torch_trainer,
    oop_jax_trainer,
    torch_func_model,
    trainer,
)
from pairs import batches_of, cast, forward_and_backward, initial_weights
from test_structure import loads_no_other_framework
from torch.func import grad_and_value

import crossover.functional_torch.train
import crossover.oop_jax.train
import functional.train
import oop.train
import shared.level0.mlp as l0
from shared import compare, sides
from shared.config import CNNBNConfig, MLPConfig, TrainConfig
from shared.optim import OptimizerSpec

SCRIPTS = {
    "functional": functional.train,
    "oop": oop.train,
    "oop_jax": crossover.oop_jax.train,
    "functional_torch": crossover.functional_torch.train,
}
assert SCRIPTS.keys() == sides.SIDES.keys()
FLAGS = ["--batch-size", "64", "--optimizer", "adam", "--lr", "0.003", "--eval-every", "0",
         "--no-progress"]  # fmt: skip
SIZES = {"mlp": ["--width", "32"], "cnn_bn": ["--width", "4"]}  # the same math at any width
MODELS = sides.GRID_MODELS[:2]  # the gpt's corners come next
assert all(m in s.models for s in sides.SIDES.values() for m in MODELS)
STEPS, BATCH = 100, 128


def train(side: str, out, *flags) -> int:
    try:
        return SCRIPTS[side].main([*FLAGS, *flags, "--out", str(out)])
    except SystemExit as e:  # argparse's refusals
        return e.code


@pytest.mark.parametrize("model", MODELS)
def test_four_corners_train_from_one_init_and_agree_pairwise(model, tmp_path):
    """The four training scripts with the same flags from one init.safetensors: any two agree
    to 1e-10 over 100 float64 updates, losses and final weights (and BatchNorm statistics), as
    shared.compare reads them; a run stopped in one corner goes on in another."""
    flags = ["--model", model, *SIZES[model], "--steps", str(STEPS), "--dtype", "float64",
             "--save-every", "50"]  # fmt: skip
    assert train("functional", tmp_path / "functional", *flags) == 0
    init = str(tmp_path / "functional" / "init.safetensors")
    for side in ("oop", "oop_jax", "functional_torch"):
        assert train(side, tmp_path / side, *flags, "--init", init) == 0
    runs = {s: compare.load_run(str(tmp_path / s)) for s in SCRIPTS}
    for a, b in itertools.combinations(SCRIPTS, 2):
        _, dloss = compare.loss_differences(runs[a], runs[b])
        assert len(dloss) == STEPS and dloss.max() <= 1e-10, f"{a} vs {b}: {dloss.max():.2e}"
        assert compare.max_param_difference(runs[a], runs[b]) <= 1e-10, f"{a} vs {b}"
    # stop in one corner, go on in another: each new corner resumes a native side's step-50 and
    # a native side resumes each new corner's, and ends where the uninterrupted run ended
    for writer, reader in (("oop", "oop_jax"), ("functional", "functional_torch"),
                           ("oop_jax", "functional"), ("functional_torch", "oop")):  # fmt: skip
        step50 = str(tmp_path / writer / "step-50.safetensors")
        out = tmp_path / f"{writer}-then-{reader}"
        assert train(reader, out, "--resume", step50) == 0
        resumed = compare.load_run(str(out))
        assert compare.max_param_difference(resumed, runs[writer]) <= 1e-10, (writer, reader)


def test_the_corners_dry_runs_load_no_other_framework(tmp_path):
    """`python -m crossover.oop_jax.train --dry-run` and its torch.func twin, each in a fresh
    interpreter that has imported every module of its corner: objects on JAX never load torch,
    functions on torch never load jax (tests/test_structure.py's FORBIDDEN)."""
    for side in ("oop_jax", "functional_torch"):
        package = sides.side(side).package
        argv = ["--dry-run", "--out", str(tmp_path / side), "--width", "8"]
        code = loads_no_other_framework(package, f"{package}.train", argv)
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[-1] == "loaded: []", f"{side}: {result.stdout}"
        assert json.loads((tmp_path / side / "config.json").read_text())["side"] == side


def test_a_corner_refuses_a_model_it_does_not_have(tmp_path, capsys):
    assert train("oop_jax", tmp_path / "x", "--model", "cnn", "--dry-run") == 2
    assert "the oop_jax side has no cnn; it has mlp" in capsys.readouterr().err


@pytest.fixture(scope="module")
def float32_setup(digits):
    config = MLPConfig(in_features=digits.in_features, out_features=digits.num_classes, width=64)
    cfg = TrainConfig(dtype="float32", optimizer=OptimizerSpec.create("adam", lr=1e-3))
    batches = batches_of(digits.x_train, digits.y_train, BATCH, STEPS, "float32")
    return config, cfg, cast(l0.init(config, seed=0), "float32"), batches


def model_setup(model: str, digits, float32_setup):
    """`(config, cfg, float32 start, batches)` for `model`: the MLP's from `float32_setup`, the
    cnn_bn's at width 4 from the functional side's draw, under Adam (under SGD one near-tie
    decides its float32 gap: tests/rounding.py)."""
    if model == "mlp":
        return float32_setup
    _, cfg, _, batches = float32_setup
    config = CNNBNConfig.for_data(digits, width=4)
    return config, cfg, initial_weights("cnn_bn", config, dtype="float32"), batches


@pytest.mark.float32
@pytest.mark.parametrize("model", MODELS)
def test_float32_rows_and_columns_are_within_rounding(model, digits, float32_setup):
    """100 float32 Adam updates on all four corners; each edge of the grid (two rows: the same
    paradigm on two frameworks; two columns: one framework in two paradigms) judged by the
    rounding control of its two sides, weights and BatchNorm statistics alike. Prints each
    edge's gaps and whether its two runs are bit-identical (docs/paradigms.md)."""
    config, cfg, start, batches = model_setup(model, digits, float32_setup)
    trainers = {s: trainer(s, model, config, cfg) for s in sides.SIDES}
    for edge, verdict in check_grid(trainers, start, batches, model).items():
        same = verdict.twins.loss == 0 and verdict.twins.weights == 0
        print(f"{model} {edge}: {verdict}; bit-identical: {same}")


@pytest.mark.parametrize("model", MODELS)
def test_nnx_jit_and_split_merge_jax_jit_are_bit_identical(model, digits, float32_setup):
    """`nnx.jit` is `nnx.split`, `jax.jit`, `nnx.merge` and `nnx.update`: twenty float32
    updates of the two loops give the same bits, weights and BatchNorm statistics."""
    config, cfg, start, batches = model_setup(model, digits, float32_setup)
    a = oop_jax_trainer(model, config, cfg)(start, batches[:20])
    b = oop_jax_trainer(model, config, cfg, pure=jax.jit)(start, batches[:20])
    assert np.array_equal(a.losses, b.losses)
    assert a.weights.keys() == b.weights.keys()
    assert all(np.array_equal(a.weights[k], b.weights[k]) for k in a.weights), "weights differ"


def test_the_torch_func_step_is_captured_whole_and_runs_the_eager_numbers(float32_setup):
    """The functions-on-torch step under `torch.compile(fullgraph=True)`: Dynamo captures the
    whole step, `grad_and_value` and the optimizer included, without a graph break (fullgraph
    raises at one), and AOTAutograd's graph (backend "aot_eager", no code generation) runs the
    same kernels as eager mode, so ten float32 updates come out bit for bit the same. Inductor's
    generated kernels fuse and reorder the arithmetic, and compile for 20 s on two cores: the
    benchmarks time them (docs/paradigms.md)."""
    config, cfg, start, batches = float32_setup
    eager = functional_torch_trainer("mlp", config, cfg)(start, batches[:10])
    compiled = functional_torch_trainer("mlp", config, cfg, compiled="aot_eager")(
        start, batches[:10]
    )
    assert np.array_equal(eager.losses, compiled.losses)
    assert all(np.array_equal(eager.weights[k], compiled.weights[k]) for k in eager.weights)


@pytest.mark.float32
def test_in_the_torch_column_the_paradigm_changes_no_bit_of_the_gradient(float32_setup, digits):
    """`functional_call` runs the OOP side's module with a dict of weights, and `grad_and_value`
    differentiates it with the same kernels that `backward()` runs: logits, loss and every
    gradient of a float32 batch are bit-identical. (What parts the column's trajectories is the
    update: optax's shape computes `u = -lr * d` and then `p + u`, two roundings where
    torch.optim's in-place `add_(d, alpha=-lr)` makes one.)"""
    config, _, start, _ = float32_setup
    x, y = digits.x_train[:BATCH].astype("float32"), digits.y_train[:BATCH]
    _, o = forward_and_backward("mlp", config, start, (x, y), "float32")
    skeleton, params, _ = torch_func_model("mlp", config, start, "float32")
    module = TORCH_FUNC["mlp"]
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    grads, loss = grad_and_value(lambda p: module.loss_fn(skeleton, p, xt, yt))(params)
    assert np.array_equal(module.apply(skeleton, params, xt).numpy(), o.outputs)
    assert loss.item() == o.loss
    assert grads.keys() == o.grads.keys()
    assert all(np.array_equal(grads[k].numpy(), o.grads[k]) for k in grads), "a gradient differs"
