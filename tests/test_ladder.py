"""The MLP ladder, rung against rung: level 0 (NumPy, manual gradients) against level 1 on each
side, and level 1 against level 2 on each side. The level-2 twins against each other (the
equinox model against the nn.Module) are tests/test_mlp.py's, like every other model's.

Every pair starts from the same canonical weights and sees the same digits batches. In float64
the two must agree to about 1e-10 everywhere. In float32 a single operation is held to a bound
derived from float32's unit roundoff and the size of its values, and a 100-update trajectory to
a factor of a rounding control run in the same test (tests/rounding.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import rounding
from pairs import F64_TOL, cast
from twins import CASES, OPTIMIZERS, PAIRS, OOPLevel1, OOPLevel2, trainer

import oop.level1.mlp as o1
import shared.level0.mlp as l0
from shared import data
from shared.config import MLPConfig, TrainConfig
from shared.optim import OptimizerSpec

TRAJECTORY_STEPS = 100
BATCH = 128
WIDTH = 64  # the rungs are the same math at any width; 64 runs 4x faster than the default 256


def train_config(dtype, **opt):
    return TrainConfig(dtype=dtype, optimizer=OptimizerSpec.create(**{"name": "sgd", **opt}))


@pytest.fixture(scope="module")
def mlp_config(digits) -> MLPConfig:
    """The ladder's MLP: two hidden layers of WIDTH."""
    return MLPConfig(in_features=digits.in_features, out_features=digits.num_classes, width=WIDTH)


@pytest.fixture(scope="module")
def init_weights(mlp_config) -> dict[str, np.ndarray]:
    """Float64 canonical weights; each test casts them to its dtype."""
    return l0.init(mlp_config, seed=0)


@pytest.fixture(scope="module")
def f32_bounds(digits, mlp_config, init_weights):
    """float32 twin bounds on the first batch, from the values' size (tests/rounding.py)."""
    model = OOPLevel2(cast(init_weights, "float32"), mlp_config, train_config("float32")).model
    return rounding.classifier_bounds(model, digits.x_train[:BATCH], digits.y_train[:BATCH])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_forward_loss_and_gradients(dtype, digits, mlp_config, init_weights, f32_bounds):
    """Every neighbouring pair: logits, loss and every gradient, on one batch."""
    x, y = digits.x_train[:BATCH].astype(dtype), digits.y_train[:BATCH]
    f64 = dtype == "float64"
    cfg = train_config(dtype)
    rungs = {
        cls: cls(cast(init_weights, dtype), mlp_config, cfg) for p in PAIRS.values() for cls in p
    }
    seen = {cls: (r.logits(x), r.loss(x, y), r.grads(x, y)) for cls, r in rungs.items()}
    for pair, (a, b) in PAIRS.items():
        (la, lossa, ga), (lb, lossb, gb) = seen[a], seen[b]
        tol = F64_TOL if f64 else f32_bounds.logits
        rounding.assert_within(
            {"": np.abs(la.astype(np.float64) - lb)}, {"": tol}, f"{pair}: logits"
        )
        loss, tol = abs(lossa - lossb), F64_TOL if f64 else f32_bounds.loss
        assert loss <= tol, f"{pair}: losses differ by {loss:.3e} > {tol:.1e}"
        assert set(ga) == set(gb) == set(mlp_config.weight_shapes())
        diff = {k: np.abs(ga[k].astype(np.float64) - gb[k]) for k in ga}
        bound = {k: F64_TOL for k in ga} if f64 else f32_bounds.grads
        rounding.assert_within(diff, bound, f"{pair}: d loss / d")  # names the weight and element


@pytest.fixture(scope="module")
def first_update(digits, mlp_config, init_weights):
    """The exact (float64) gradient on the first batch, and float32 twin bounds on it."""
    x, y = next(data.batches(digits.x_train, digits.y_train, BATCH, seed=0))
    start = cast(init_weights, "float32")  # the float32 weights both sides start from, exactly
    model = OOPLevel2(start, mlp_config, train_config("float32")).model
    grads = OOPLevel2(cast(start, "float64"), mlp_config, train_config("float64")).grads(x, y)
    return grads, rounding.classifier_bounds(model, x, y).grads


@pytest.mark.parametrize("dtype,opt", CASES)
def test_one_step_and_trajectory(dtype, opt, digits, mlp_config, init_weights, first_update):
    """Every neighbouring pair: one update (a single operation: a bound from the gradient's
    size, per weight), then 100 against the rounding control (float32) or to F64_TOL
    (float64). Each rung and each control runs once and serves both pairs it belongs to."""
    cfg = train_config(dtype, **OPTIMIZERS[opt])
    stream = data.batches(digits.x_train.astype(dtype), digits.y_train, BATCH, seed=0)
    batches = [next(stream) for _ in range(TRAJECTORY_STEPS)]
    start = cast(init_weights, dtype)
    for pair, (a_cls, b_cls) in PAIRS.items():
        train_a, train_b = (trainer(c, mlp_config, cfg) for c in (a_cls, b_cls))
        verdict = rounding.check_trajectories(train_a, train_b, start, batches, dtype, what=pair)
        for run in (verdict.a, verdict.b):  # an update must not change the dtype (NumPy 2)
            assert {w.dtype.name for w in run.first.values()} == {dtype}, pair
        one = {k: np.abs(verdict.a.first[k].astype(np.float64) - verdict.b.first[k])
               for k in start}  # fmt: skip
        if dtype == "float64":
            bound = {k: F64_TOL for k in one}
        else:
            bound = rounding.first_update_bound(*first_update, start, cfg.optimizer)
        rounding.assert_within(one, bound, f"{pair}: after one update")
        print(pair, opt, verdict)  # with -s: the twins/control table of docs/reproducibility.md
        assert verdict.a.losses[-1] < 0.75 * verdict.a.losses[0], f"{pair} should train"


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("opt", list(OPTIMIZERS))
def test_oop_level1_optimizers_replay_torch_optim_bit_for_bit(
    opt, dtype, digits, mlp_config, init_weights
):
    """Given the very same gradients, the hand-written level-1 SGD and Adam use torch's own
    tensor operations (`add_(alpha=)`, `lerp_`, `addcmul_`, `addcdiv_`, bias corrections in
    Python floats) and so reproduce `torch.optim` exactly, in float32 too: no tolerance."""
    cfg = TrainConfig(dtype=dtype, optimizer=OptimizerSpec.create(**OPTIMIZERS[opt]))
    manual = OOPLevel1(cast(init_weights, dtype), mlp_config, cfg)
    library = OOPLevel2(cast(init_weights, dtype), mlp_config, cfg)
    batches = data.batches(digits.x_train.astype(dtype), digits.y_train, BATCH, seed=0)
    for _ in range(20):
        x, y = next(batches)
        library.step(x, y)  # torch.optim.step() on the nn.Module's own gradients
        grads = {k: p.grad for k, p in library.model.named_parameters()}
        for name, p in o1.named(manual.params):
            p.grad = grads[name].clone()
        o1.OPTIMIZERS[cfg.optimizer.name][1](manual.params, manual.opt_state, cfg.optimizer)
        a, b = manual.weights(), library.weights()  # identical, so the next grads are too
        assert all(np.array_equal(a[k], b[k]) for k in a), "the update differs from torch.optim"
