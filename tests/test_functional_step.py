"""The functional step is a pure function: the same with and without jit, traced only once."""

from __future__ import annotations

import chex
import equinox as eqx
import jax
from pairs import functional_model

import functional.models.mlp as f2
import shared.level0.mlp as l0
from functional.optim import make_optimizer
from shared import data
from shared.config import MLPConfig, TrainConfig
from shared.optim import OptimizerSpec

# float64: jit fuses the ops and may reorder them; op-by-op and fused agree to rounding.
JIT_TOL = 1e-12
STEPS = 3


def setup(digits, optimizer="adam"):
    """A one-hidden-layer MLP: op by op, every operation compiles once per shape, and purity
    does not depend on the width."""
    mlp_config = MLPConfig(in_features=digits.in_features, out_features=10, width=16, layers=1)
    init_weights = l0.init(mlp_config, seed=0)
    cfg = TrainConfig(optimizer=OptimizerSpec.create(optimizer, lr=1e-3), dtype="float64")
    model = functional_model("mlp", mlp_config, init_weights, "float64")
    params, static = eqx.partition(model, eqx.is_array)
    optimizer = make_optimizer(cfg.optimizer, cfg.schedule, cfg.dtype)
    return params, optimizer.init(params), f2.make_step(optimizer, static)


def test_step_with_and_without_jit_agree_and_traces_once(digits):
    with jax.enable_x64(True):
        params, opt_state, step = setup(digits)
        jitted = jax.jit(chex.assert_max_traces(step, n=1))  # a second trace would raise
        p_eager, s_eager, p_jit, s_jit = params, opt_state, params, opt_state
        batches = data.batches(digits.x_train, digits.y_train, 128, seed=0)
        for _ in range(STEPS):
            x, y = next(batches)
            p_eager, s_eager, loss_eager = step(p_eager, s_eager, x, y)
            p_jit, s_jit, loss_jit = jitted(p_jit, s_jit, x, y)
            assert abs(float(loss_eager) - float(loss_jit)) <= JIT_TOL
        chex.assert_trees_all_close(p_eager, p_jit, atol=JIT_TOL, rtol=0)
        chex.assert_trees_all_close(s_eager, s_jit, atol=JIT_TOL, rtol=0)


def test_step_keeps_no_state_of_its_own(digits):
    """The step is a function of its arguments only: the same inputs give the same outputs
    also after the step has run on others (no counter, cache or key hidden in a closure).
    That the inputs are left unchanged needs no test: JAX arrays cannot be changed."""
    with jax.enable_x64(True):
        params, opt_state, step = setup(digits, optimizer="adam")
        x, y = digits.x_train[:128], digits.y_train[:128]
        first = step(params, opt_state, x, y)
        step(*first[:2], digits.x_train[128:256], digits.y_train[128:256])  # other inputs
        chex.assert_trees_all_equal(step(params, opt_state, x, y), first)
