"""The CNN twins agree: logits, loss, every gradient, one optimizer step and a 100-step
trajectory, in float64 to rounding and in float32 within measured bounds. Plus the layout
facts the docs state: NCHW batches, conv weights `(out, in, 3, 3)`, torch's `(out,)` bias.
"""

from __future__ import annotations

import equinox as eqx
import jax
import numpy as np
import pytest
import torch

import functional.convert as fconvert
import functional.models.cnn as fcnn
import functional.optim as foptim
import oop.convert as oconvert
import oop.models.cnn as ocnn
import oop.optim as ooptim
from shared import data
from shared.config import CNNConfig
from shared.optim import OptimizerSpec, ScheduleSpec

F64_TOL = 1e-10  # float64 twins agree to rounding (measured: 9e-16 at most)
# float32, one batch of 64 digits: XLA and torch sum the 72-term conv dot products in other
# orders. Measured: logits 6.0e-8, loss 2.4e-7, gradients 9.3e-9.
F32_FORWARD = 1e-6
# float32, 100 SGD updates keep rounding at its size (measured: losses 6.0e-7, weights 4.8e-7).
# Adam turns it into steps (measured 1.3e-4 and 6.2e-3); test_cnn_bn pins that case.
F32_SGD_LOSS, F32_SGD_PARAMS = 5e-6, 5e-6
STEPS, BATCH = 100, 64


@pytest.fixture(scope="module")
def setup():
    ds = data.load("digits")
    config = CNNConfig.for_data(ds, width=8)
    with jax.enable_x64(True):
        model = fcnn.init_model(config, key=jax.random.PRNGKey(0), dtype="float64")
        weights = fconvert.to_canonical(model)
    return ds, config, weights


def functional_model(config, weights, dtype):
    model = fcnn.init_model(config, key=jax.random.PRNGKey(1), dtype=dtype)
    return fconvert.from_canonical(model, {k: v.astype(dtype) for k, v in weights.items()})


def oop_model(config, weights, dtype):
    model = ocnn.init_model(config, seed=1, dtype=dtype)
    return oconvert.from_canonical(model, {k: v.astype(dtype) for k, v in weights.items()})


@pytest.mark.proves("cnn", "config", "model")
def test_canonical_names_shapes_and_layouts(setup):
    _, config, weights = setup
    assert {k: v.shape for k, v in weights.items()} == config.weight_shapes()
    with jax.enable_x64(True):
        eqx_bias = functional_model(config, weights, "float64").convs[0].bias
    assert eqx_bias.shape == (8, 1, 1)  # equinox broadcasts over (C, H, W); torch keeps (C,)
    assert oconvert.canonical_shapes(oop_model(config, weights, "float64")) == (
        config.weight_shapes()
    )


@pytest.mark.proves("cnn", "model", "loss", "evaluate")
@pytest.mark.parametrize("dtype, tol", [("float64", F64_TOL), ("float32", F32_FORWARD)])
def test_forward_loss_and_gradients(setup, dtype, tol):
    ds, config, weights = setup
    x, y = ds.x_train[:BATCH].astype(dtype), ds.y_train[:BATCH]
    with jax.enable_x64(dtype == "float64"):
        model = functional_model(config, weights, dtype)
        logits_f = np.asarray(eqx.filter_jit(lambda m, x: jax.vmap(m)(x))(model, x))
        loss_f, grads_f = eqx.filter_jit(eqx.filter_value_and_grad(fcnn.loss_fn))(model, x, y)
        grads_f = fconvert.to_canonical(grads_f)
    torch_model = oop_model(config, weights, dtype)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    logits_o = torch_model(xt).detach().numpy()
    loss_o = ocnn.loss_fn(torch_model, xt, yt)
    loss_o.backward()
    grads_o = {k: p.grad.numpy() for k, p in torch_model.named_parameters()}
    assert np.max(np.abs(logits_f - logits_o)) <= tol
    assert abs(float(loss_f) - float(loss_o.detach())) <= tol
    assert grads_f.keys() == grads_o.keys()
    for name in grads_f:
        assert np.max(np.abs(grads_f[name] - grads_o[name])) <= tol, name


def trajectories(setup, dtype, opt: OptimizerSpec):
    """Per-step losses and final weights of both sides, trained by the package's loops."""
    ds, config, weights = setup
    batches = data.batches(ds.x_train.astype(dtype), ds.y_train, BATCH, seed=0)
    batches = [next(batches) for _ in range(STEPS)]
    with jax.enable_x64(dtype == "float64"):
        params, static = eqx.partition(functional_model(config, weights, dtype), eqx.is_array)
        tx = foptim.make_optimizer(opt, ScheduleSpec(), dtype)
        state, step = tx.init(params), jax.jit(fcnn.make_step(tx, static))
        losses_f = []
        for x, y in batches:
            params, state, loss = step(params, state, x, y)
            losses_f.append(float(loss))
        final_f = fconvert.to_canonical(params)
    model = oop_model(config, weights, dtype)
    optimizer = ooptim.make_optimizer(opt, model.named_parameters())
    losses_o = [
        float(ocnn.train_step(model, optimizer, torch.from_numpy(x), torch.from_numpy(y)))
        for x, y in batches
    ]
    return np.array(losses_f), np.array(losses_o), final_f, oconvert.to_canonical(model)


OPTIMIZERS = {
    "sgd": OptimizerSpec.create("sgd", lr=0.05, momentum=0.9),
    "adam": OptimizerSpec.create("adam", lr=1e-3),
}


@pytest.mark.proves("cnn", "train step")
@pytest.mark.parametrize(
    "dtype, opt, loss_tol, param_tol",
    [
        ("float64", "sgd", F64_TOL, F64_TOL),
        ("float64", "adam", F64_TOL, F64_TOL),
        ("float32", "sgd", F32_SGD_LOSS, F32_SGD_PARAMS),
    ],
)
def test_100_step_trajectory(setup, dtype, opt, loss_tol, param_tol):
    lf, lo, wf, wo = trajectories(setup, dtype, OPTIMIZERS[opt])
    assert np.max(np.abs(lf - lo)) <= loss_tol
    assert max(float(np.max(np.abs(wf[k] - wo[k]))) for k in wf) <= param_tol
