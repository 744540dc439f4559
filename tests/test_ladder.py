"""The MLP ladder, rung against rung: level 0 (NumPy, manual gradients) against level 1 on each
side, level 1 against level 2 on each side, and the equinox model against the nn.Module.

Every pair starts from the same canonical weights and sees the same digits batches. In float64
the two must agree to about 1e-10 everywhere; in float32 to bounds justified one by one below.
"""

from __future__ import annotations

import numpy as np
import pytest
from twins import PAIRS, OOPLevel1, OOPLevel2, cast, max_abs_diff

import oop.level1.mlp as o1
from shared import data
from shared.config import TrainConfig
from shared.optim import OptimizerSpec

TRAJECTORY_STEPS = 100
BATCH = 128

# float64: rounding is ~1e-16 per operation; measured differences stay below 1e-14 after 100
# steps under SGD and Adam, so 1e-10 leaves four orders of margin and still catches any real bug.
F64_TOL = 1e-10

# float32 bounds, each a few times (4x to 30x) above what was measured here (in brackets):
F32_LOGITS = 1e-6  # logits of size ~1, a 256-term dot product in another summation order [7e-8]
F32_LOSS = 1e-6  # cross-entropy ~2.3, whose ulp is 2.4e-7: a few ulps [2.4e-7]
F32_GRAD = 2e-7  # gradients of size ~1e-2 with relative rounding ~1e-6 [2e-8]
# SGD moves each weight by lr * grad, so grad rounding enters scaled by lr = 0.01 [7.5e-9]:
F32_SGD_STEP = 1e-7
F32_SGD_LOSSES = 5e-6  # over 100 steps the losses differ by a couple of ulps [4.8e-7]
F32_SGD_PARAMS = 1e-6  # [4.5e-8]
# Adam divides each gradient by its own RMS. For a weight whose true gradient is near the
# rounding level (a pixel that is almost always 0), rounding noise is normalised into an update
# of up to lr = 1e-3, so a weight can move by a good fraction of lr in one step [3.6e-6] and by
# up to 2 * lr * steps = 0.2 in 100 steps in the worst case [3.4e-3]. The loss, which those
# weights barely affect, stays much closer [2.2e-5].
F32_ADAM_STEP = 5e-5
F32_ADAM_LOSSES = 2e-4
F32_ADAM_PARAMS = 2e-2

OPTIMIZERS = {
    "sgd-momentum": dict(name="sgd", lr=0.01, momentum=0.9),
    "adam": dict(name="adam", lr=1e-3),
    # float64 only: the remaining SGD and Adam options of the training CLI
    "sgd-nesterov-decay": dict(name="sgd", lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam-decay": dict(name="adam", lr=1e-3, beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=1e-3),
}
TOLERANCES = {  # (one step, losses over the trajectory, params after it)
    ("float64", "sgd"): (F64_TOL, F64_TOL, F64_TOL),
    ("float64", "adam"): (F64_TOL, F64_TOL, F64_TOL),
    ("float32", "sgd"): (F32_SGD_STEP, F32_SGD_LOSSES, F32_SGD_PARAMS),
    ("float32", "adam"): (F32_ADAM_STEP, F32_ADAM_LOSSES, F32_ADAM_PARAMS),
}
CASES = [
    (pair, dtype, opt)
    for pair in PAIRS
    for dtype in ("float64", "float32")
    for opt in OPTIMIZERS
    if dtype == "float64" or opt in ("sgd-momentum", "adam")
]


def make_pair(pair, weights, config, dtype, **opt):
    cfg = TrainConfig(dtype=dtype, optimizer=OptimizerSpec.create(**{"name": "sgd", **opt}))
    a_cls, b_cls = PAIRS[pair]
    return a_cls(cast(weights, dtype), config, cfg), b_cls(cast(weights, dtype), config, cfg)


@pytest.mark.proves("mlp", "model", "loss")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("pair", list(PAIRS))
def test_forward_loss_and_gradients(pair, dtype, digits, mlp_config, init_weights):
    a, b = make_pair(pair, init_weights, mlp_config, dtype)
    x, y = digits.x_train[:BATCH].astype(dtype), digits.y_train[:BATCH]
    f64 = dtype == "float64"

    logits = np.abs(a.logits(x) - b.logits(x)).max()
    assert logits <= (F64_TOL if f64 else F32_LOGITS), f"logits differ by {logits:.3e}"
    loss = abs(a.loss(x, y) - b.loss(x, y))
    assert loss <= (F64_TOL if f64 else F32_LOSS), f"losses differ by {loss:.3e}"
    ga, gb = a.grads(x, y), b.grads(x, y)
    assert set(ga) == set(gb) == set(mlp_config.weight_shapes())
    for name in ga:  # every parameter's gradient, named, so a failure says which
        diff = float(np.abs(ga[name] - gb[name]).max())
        assert diff <= (F64_TOL if f64 else F32_GRAD), f"d loss / d {name} differs by {diff:.3e}"


@pytest.mark.proves("mlp", "train step")
@pytest.mark.parametrize("pair,dtype,opt", CASES)
def test_one_step_and_trajectory(pair, dtype, opt, digits, mlp_config, init_weights):
    a, b = make_pair(pair, init_weights, mlp_config, dtype, **OPTIMIZERS[opt])
    step_tol, loss_tol, param_tol = TOLERANCES[(dtype, OPTIMIZERS[opt]["name"])]
    batches = data.batches(digits.x_train.astype(dtype), digits.y_train, BATCH, seed=0)

    losses_a, losses_b = [], []
    for k in range(TRAJECTORY_STEPS):
        x, y = next(batches)
        losses_a.append(a.step(x, y))
        losses_b.append(b.step(x, y))
        if k == 0:
            for impl in (a, b):  # an update must not change the dtype (NumPy 2 promotes easily)
                assert {w.dtype.name for w in impl.weights().values()} == {dtype}, impl.name
            one = max_abs_diff(a.weights(), b.weights())
            assert one <= step_tol, f"after one update the weights differ by {one:.3e}"
    dloss = np.abs(np.array(losses_a) - np.array(losses_b))
    assert dloss.max() <= loss_tol, (
        f"loss at step {dloss.argmax() + 1} differs by {dloss.max():.3e}"
    )
    final = max_abs_diff(a.weights(), b.weights())
    assert final <= param_tol, f"after {TRAJECTORY_STEPS} updates the weights differ by {final:.3e}"
    assert losses_a[-1] < 0.75 * losses_a[0], "the trajectory should actually train"


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
