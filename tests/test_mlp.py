"""The MLP twins (`functional/models/mlp.py`, `oop/models/mlp.py`) agree: logits, loss and every
gradient on one batch, one update, and 100 of them, under SGD with momentum and Adam, and in
float64 under the remaining options of the training CLI. In float64 to F64_TOL everywhere; in
float32 a single operation within a bound from float32's unit roundoff and the values' size,
a trajectory against the rounding control (tests/rounding.py). The rungs below level 2 are
tests/test_ladder.py's.
"""

from __future__ import annotations

import numpy as np
import pytest
import rounding
from corners import check_with_corners
from pairs import F64_TOL, batches_of, cast, forward_and_backward, oop_model, trainers
from twins import CASES, OPTIMIZERS

import shared.level0.mlp as l0
from shared.config import MLPConfig, TrainConfig
from shared.optim import OptimizerSpec

TRAJECTORY_STEPS, BATCH = 100, 128
WIDTH = 64  # the same math at any width; 64 runs 4x faster than the default 256


@pytest.fixture(scope="module")
def setup(digits):
    """The digits, a two-hidden-layer MLP of WIDTH, and its float64 level-0 initial weights
    (the ladder's: one checkpoint for every rung)."""
    config = MLPConfig(in_features=digits.in_features, out_features=digits.num_classes, width=WIDTH)
    return digits, config, l0.init(config, seed=0)


@pytest.mark.proves("mlp", "model", "loss")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_forward_loss_and_gradients(dtype, setup):
    """Logits, loss and every gradient, on one batch."""
    ds, config, weights = setup
    x, y = ds.x_train[:BATCH].astype(dtype), ds.y_train[:BATCH]
    f, o = forward_and_backward("mlp", config, weights, (x, y), dtype)
    bounds = rounding.forward_bounds("mlp", config, weights, x, y, dtype, o.grads)
    logits = np.abs(f.outputs.astype(np.float64) - o.outputs)
    rounding.assert_within({"": logits}, {"": bounds.logits}, "logits")
    loss = abs(f.loss - o.loss)
    assert loss <= bounds.loss, f"losses differ by {loss:.3e} > {bounds.loss:.1e}"
    assert set(f.grads) == set(o.grads) == set(config.weight_shapes())
    diff = {k: np.abs(f.grads[k].astype(np.float64) - o.grads[k]) for k in f.grads}
    rounding.assert_within(diff, bounds.grads, "d loss / d")  # names the weight and element


@pytest.fixture(scope="module")
def first_update(setup):
    """The exact (float64) gradient on the first batch, and float32 twin bounds on it."""
    ds, config, weights = setup
    x, y = batches_of(ds.x_train, ds.y_train, BATCH, 1, "float64")[0]
    start = cast(weights, "float32")  # the float32 weights both sides start from, exactly
    model = oop_model("mlp", config, start, "float32")
    grads = forward_and_backward("mlp", config, cast(start, "float64"), (x, y))[1].grads
    return grads, rounding.classifier_bounds(model, x, y).grads


@pytest.mark.proves("mlp", "train step")
@pytest.mark.parametrize("dtype,opt", CASES)
def test_one_step_and_trajectory(dtype, opt, setup, first_update):
    """One update (a single operation: a bound from the gradient's size, per weight), then 100
    against the rounding control (float32) or to F64_TOL (float64)."""
    ds, config, weights = setup
    cfg = TrainConfig(dtype=dtype, optimizer=OptimizerSpec.create(**OPTIMIZERS[opt]))
    batches = batches_of(ds.x_train, ds.y_train, BATCH, TRAJECTORY_STEPS, dtype)
    start = cast(weights, dtype)
    native = trainers("mlp", config, cfg, at=(1,))
    if (dtype, opt) == ("float32", "adam"):  # and the grid's other corners (docs/paradigms.md)
        verdict = check_with_corners("mlp", config, cfg, native, start, batches, "mlp")
    else:
        verdict = rounding.check_trajectories(*native, start, batches, dtype, what="mlp")
    for run in (verdict.a, verdict.b):  # an update must not change the dtype (NumPy 2)
        assert {w.dtype.name for w in run.at[1].values()} == {dtype}
    one = {k: np.abs(verdict.a.at[1][k].astype(np.float64) - verdict.b.at[1][k]) for k in start}
    if dtype == "float64":
        bound = {k: F64_TOL for k in one}
    else:
        bound = rounding.first_update_bound(*first_update, start, cfg.optimizer)
    rounding.assert_within(one, bound, "after one update")
    print("mlp", opt, verdict)  # with -s: the twins/control table of docs/reproducibility.md
    assert verdict.a.losses[-1] < 0.75 * verdict.a.losses[0], "the MLP should train"
