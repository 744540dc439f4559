"""Traps of state: what objects that change in place ask of a torch user, which a pure function
never does.

- `forgotten-zero-grad`: `loss.backward()` adds into `.grad`; without `optimizer.zero_grad()`
  every update uses the sum of all gradients so far. `jax.grad` returns this batch's gradient,
  nothing to reset. Fix: `zero_grad()` first, as `oop/models/mlp.py`'s `train_step` does.
- `forgotten-eval`: a module remembers its mode. Evaluated in training mode, BatchNorm
  normalises by the batch's own statistics and, worse, updates its running statistics: the
  evaluation changes the model. The functional evaluate is told `inference=True` at every call.
  Fix: `model.eval()` (and `torch.no_grad()`), as `oop/models/cnn_bn.py`'s `evaluate` does.
- `inplace-autograd`: autograd keeps the tensors backward needs; an in-place op on one of them
  (`e /= e.sum()` after `e = exp(z)`, whose backward reads its output) makes `backward()` raise.
  JAX has no in-place ops to get wrong. Fix: `e = e / e.sum()`; the gradients then equal
  `jax.grad`'s.

On the harness's MLP and moons, and the package's `cnn_bn` on the digits, in float64.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pairs
import torch
from harness import Trap, max_gap, naive_and_fixed_tests, params_of, problem, run_functional
from harness import run_oop as harness_run_oop

import functional.convert as fconvert
import functional.models.cnn_bn as fbn
import oop.convert as oconvert
import oop.models.mlp as omlp
from shared import data
from shared.config import CNNBNConfig

LR, STEPS = 0.1, 30


# -- forgotten-zero-grad --
def torch_run_without_zero_grad() -> list[dict]:
    """The torch loop a newcomer writes: backward, step, and no zero_grad."""
    config, weights, batches = problem()
    model = pairs.oop_model("mlp", config, weights)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    runs = []
    for x, y in batches[:STEPS]:
        omlp.loss_fn(model, torch.from_numpy(x), torch.from_numpy(y)).backward()  # adds to .grad
        optimizer.step()
        runs.append(oconvert.to_canonical(model))
    return runs


def zero_grad_gaps(zero_grad: bool) -> np.ndarray:
    functional = run_functional(optax.sgd(LR), STEPS)
    if zero_grad:  # the package's train_step: zero_grad, backward, step
        torch_runs = harness_run_oop(lambda named: torch.optim.SGD(params_of(named), lr=LR), STEPS)
    else:
        torch_runs = torch_run_without_zero_grad()
    return max_gap(functional, torch_runs)


# -- forgotten-eval --
def cnn_bn_twins():
    ds = data.load("digits")
    config = CNNBNConfig.for_data(ds, width=4)
    weights = pairs.initial_weights("cnn_bn", config)
    return ds, config, weights


def eval_gaps(call_eval: bool) -> np.ndarray:
    """Per evaluation batch of the digits' test split, the largest |Δlogit| between torch's
    model, left in training mode (as `train_step` leaves it; here straight after its
    initialisation) and evaluated with or without `model.eval()`, and the functional
    evaluate's logits (inference mode: the running statistics)."""
    ds, config, weights = cnn_bn_twins()
    model = pairs.oop_model("cnn_bn", config, weights)  # in training mode, as after a train step
    if call_eval:
        model.eval()
    x_all = ds.x_test[:80].reshape(5, 16, -1)
    with torch.no_grad():
        torch_logits = [model(torch.from_numpy(x)).numpy() for x in x_all]
    with jax.enable_x64(True):
        fmodel, state = pairs.functional_model("cnn_bn", config, weights)
        forward = eqx.filter_jit(lambda m, s, x: fbn.batched(m, inference=True)(x, s)[0])
        jax_logits = [np.asarray(forward(fmodel, state, jnp.asarray(x))) for x in x_all]
    return np.array([np.max(np.abs(a - b)) for a, b in zip(jax_logits, torch_logits, strict=True)])


# -- inplace-autograd --
def torch_softmax_ce(logits: torch.Tensor, y: torch.Tensor, inplace: bool) -> torch.Tensor:
    """Cross-entropy with the softmax written out, as at level 1."""
    e = torch.exp(logits - logits.max(dim=1, keepdim=True).values)  # exp saves its output
    if inplace:
        e /= e.sum(dim=1, keepdim=True)  # overwrites what exp's backward will read
    else:
        e = e / e.sum(dim=1, keepdim=True)
    return -torch.log(e[torch.arange(len(y)), y]).mean()


def jax_softmax_ce(logits: jax.Array, y: jax.Array) -> jax.Array:
    e = jnp.exp(logits - logits.max(axis=1, keepdims=True))
    e = e / e.sum(axis=1, keepdims=True)
    return -jnp.log(e[jnp.arange(len(y)), y]).mean()


def grad_gaps(inplace: bool) -> np.ndarray:
    """Per canonical weight, the largest |Δgrad| of the hand-written cross-entropy."""
    config, weights, batches = problem()
    x, y = batches[0]
    model = pairs.oop_model("mlp", config, weights)
    torch_softmax_ce(model(torch.from_numpy(x)), torch.from_numpy(y), inplace).backward()
    torch_grads = {n: p.grad.numpy() for n, p in model.named_parameters()}
    with jax.enable_x64(True):
        fmodel = pairs.functional_model("mlp", config, weights)
        loss = lambda m: jax_softmax_ce(jax.vmap(m)(jnp.asarray(x)), jnp.asarray(y))
        grads = eqx.filter_jit(jax.grad(loss))(fmodel)  # one compilation, not one per operation
        jax_grads = fconvert.to_canonical(grads)
    return np.array([np.max(np.abs(jax_grads[n] - g)) for n, g in torch_grads.items()])


TRAPS = [
    Trap(
        name="forgotten-zero-grad",
        title="no zero_grad: gradients accumulate",
        quantity="max |Δparam| per update",
        naive=lambda: zero_grad_gaps(zero_grad=False),
        fixed=lambda: zero_grad_gaps(zero_grad=True),
        naive_at_least=0.1,  # the t-th update is the sum of t gradients (measured 1.8)
        kind="paradigm",
    ),
    Trap(
        name="forgotten-eval",
        title="no model.eval(): BatchNorm uses the batch",
        quantity="max |Δlogit| per evaluation batch",
        naive=lambda: eval_gaps(call_eval=False),
        fixed=lambda: eval_gaps(call_eval=True),
        naive_at_least=1e-2,  # batch statistics instead of running ones (measured 1.3)
        kind="paradigm",
    ),
    Trap(
        name="inplace-autograd",
        title="an in-place op on a tensor backward needs",
        quantity="max |Δgrad| per weight",
        naive=lambda: grad_gaps(inplace=True),
        fixed=lambda: grad_gaps(inplace=False),
        naive_at_least=0.0,
        kind="paradigm",
        raises=RuntimeError,
        match="modified by an inplace operation",
    ),
]

test_naive_port_diverges, test_fixed_port_matches = naive_and_fixed_tests(TRAPS)


def test_evaluating_in_training_mode_changes_the_model():
    """The second symptom: the running statistics move while the "evaluation" runs."""
    ds, config, weights = cnn_bn_twins()
    model = pairs.oop_model("cnn_bn", config, weights)
    before = oconvert.to_canonical(model)
    with torch.no_grad():
        model(torch.from_numpy(ds.x_test[:16]))
    after = oconvert.to_canonical(model)
    moved = sorted(k for k in before if np.any(before[k] != after[k]))
    assert moved and all(".running_" in k or "num_batches" in k for k in moved), moved
    model.eval()
    with torch.no_grad():
        model(torch.from_numpy(ds.x_test[:16]))
    assert all(np.array_equal(v, oconvert.to_canonical(model)[k]) for k, v in after.items())
