"""The CNN twins agree: logits, loss, every gradient, one optimizer step and a 100-step
trajectory, in float64 to rounding and in float32 within measured bounds. Plus the layout
facts the docs state: NCHW batches, conv weights `(out, in, 3, 3)`, torch's `(out,)` bias.
"""

from __future__ import annotations

import equinox as eqx
import jax
import numpy as np
import pytest
import rounding
import torch
from pairs import (
    F64_TOL,
    batches_of,
    canonical,
    cast,
    functional_model,
    initial_weights,
    max_abs_diff,
    oop_model,
    trainers,
)

import functional.models.cnn as fcnn
import oop.convert as oconvert
import oop.models.cnn as ocnn
from shared import data
from shared.config import CNNConfig, TrainConfig
from shared.optim import OptimizerSpec

# float64 twins agree to rounding (measured: 9e-16 at most): F64_TOL. float32: a forward pass
# and its gradients within bounds from the values' size, a trajectory against the rounding
# control (tests/rounding.py). Adam on this model: test_cnn_bn pins that case.
STEPS, BATCH = 100, 64


@pytest.fixture(scope="module")
def setup():
    ds = data.load("digits")
    config = CNNConfig.for_data(ds, width=8)
    return ds, config, initial_weights("cnn", config)


@pytest.mark.proves("cnn", "config", "model")
def test_canonical_names_shapes_and_layouts(setup):
    _, config, weights = setup
    assert {k: v.shape for k, v in weights.items()} == config.weight_shapes()
    eqx_bias = functional_model("cnn", config, weights).convs[0].bias
    assert eqx_bias.shape == (8, 1, 1)  # equinox broadcasts over (C, H, W); torch keeps (C,)
    assert oconvert.canonical_shapes(oop_model("cnn", config, weights)) == config.weight_shapes()


@pytest.mark.proves("cnn", "model", "loss", "evaluate")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_forward_loss_and_gradients(setup, dtype):
    ds, config, weights = setup
    x, y = ds.x_train[:BATCH].astype(dtype), ds.y_train[:BATCH]
    with jax.enable_x64(dtype == "float64"):
        model = functional_model("cnn", config, weights, dtype)
        logits_f = np.asarray(eqx.filter_jit(lambda m, x: jax.vmap(m)(x))(model, x))
        loss_f, grads_f = eqx.filter_jit(eqx.filter_value_and_grad(fcnn.loss_fn))(model, x, y)
        grads_f = canonical(grads_f)
    torch_model = oop_model("cnn", config, weights, dtype)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    logits_o = torch_model(xt).detach().numpy()
    loss_o = ocnn.loss_fn(torch_model, xt, yt)
    loss_o.backward()
    grads_o = {k: p.grad.numpy() for k, p in torch_model.named_parameters()}
    if dtype == "float64":
        bounds = rounding.Bounds(F64_TOL, F64_TOL, {k: F64_TOL for k in grads_o})
    else:  # from float32's unit roundoff and the values' size (tests/rounding.py)
        bounds = rounding.classifier_bounds(oop_model("cnn", config, weights, "float32"), x, y)
    rounding.assert_within({"": np.abs(logits_f.astype(np.float64) - logits_o)},
                           {"": bounds.logits}, "logits")  # fmt: skip
    assert max_abs_diff(loss_f, loss_o) <= bounds.loss
    assert grads_f.keys() == grads_o.keys()
    diff = {k: np.abs(grads_f[k].astype(np.float64) - grads_o[k]) for k in grads_f}
    rounding.assert_within(diff, bounds.grads, "d loss / d")


ADAM = OptimizerSpec.create("adam", lr=1e-3)


# One optimizer: the optimizers are the model-independent code that tests/test_optimizers.py
# proves for every optimizer and schedule; a model's trajectory proves its own gradient through
# one. Adam, because in float32 under SGD with momentum a one-ulp control escapes the plateau
# elsewhere (2e-2 in the weights against the twins' 4e-7: a ratio of 0.00 says nothing), where
# under Adam the control stays within rounding of the twins (measured ratio 0.67, 0.43).
@pytest.mark.proves("cnn", "train step")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_100_step_trajectory(setup, dtype):
    """float64 to F64_TOL; float32 against the rounding control (tests/rounding.py)."""
    ds, config, weights = setup
    batches = batches_of(ds.x_train, ds.y_train, BATCH, STEPS, dtype)
    cfg = TrainConfig(dtype=dtype, optimizer=ADAM)
    verdict = rounding.check_trajectories(*trainers("cnn", config, cfg), cast(weights, dtype),
                                          batches, dtype, what="cnn adam")  # fmt: skip
    print("cnn adam", verdict)
