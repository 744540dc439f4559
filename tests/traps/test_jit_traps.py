"""Traps of tracing: what a torch user's habits do inside `jax.jit`.

`jax.jit` runs the Python function once, with tracers standing in for the arrays, records the
operations into a program and compiles it; later calls run the program, not the Python. Eager
torch runs the Python every time. Four habits break on that difference:

- `print-in-jit`: a `print` inside a jitted step runs once, at trace time, and prints a tracer,
  not the loss. Fix: `jax.debug.print`, which prints every call, the loss torch prints.
- `python-if-on-tracer`: a Python `if` on a traced value (clip the gradients when their norm is
  too large) raises `TracerBoolConversionError`. Fix: `jnp.where` (or `lax.cond`): both
  branches become part of the program.
- `closure-over-global`: a step that reads a Python global (the learning rate a loop decays)
  bakes the value it saw while tracing into the program; later changes are ignored. torch's
  `param_group["lr"] = ...` takes effect at once. Fix: pass the value in as an argument.
- `retrace-per-shape`: every new input shape (a last, smaller batch) traces and compiles again.
  Fix: pad to one shape and weight the padding 0: one compilation, the same losses torch gives.

All on the harness's 2-16-2 MLP and moons, in float64, the OOP twin in eager torch.
"""

from __future__ import annotations

import contextlib
import io

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pairs
import torch
import torch.nn.functional as F
from harness import Trap, max_gap, naive_and_fixed_tests, problem
from pairs import F64_TOL

import functional.convert as fconvert
import functional.models.mlp as fmlp
import oop.convert as oconvert
import oop.models.mlp as omlp

LR, STEPS = 0.5, 12


def functional_mlp():
    """The harness MLP as `(params, static)` (float64: call inside `jax.enable_x64`)."""
    config, weights, _ = problem()
    return eqx.partition(pairs.functional_model("mlp", config, weights), eqx.is_array)


def torch_mlp() -> torch.nn.Module:
    config, weights, _ = problem()
    return pairs.oop_model("mlp", config, weights)


def tensors(batch) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(batch[0]), torch.from_numpy(batch[1])


def grads_of(params, static, x, y):
    return jax.value_and_grad(lambda p: fmlp.loss_fn(eqx.combine(p, static), x, y))(params)


# -- print-in-jit --
def torch_printed_losses() -> list[float]:
    """torch's habit: `print(loss.item())` in the loop, read back from standard output."""
    model, out = torch_mlp(), io.StringIO()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    with contextlib.redirect_stdout(out):
        for batch in problem()[2][:STEPS]:
            loss = omlp.train_step(model, optimizer, *tensors(batch))
            print(f"loss {loss.item():.17g}")
    return parse(out.getvalue())


def parse(printed: str) -> list[float]:
    """The printed losses; a line that is not a number (a tracer) is kept as NaN."""
    values = []
    for line in printed.splitlines():
        try:
            values.append(float(line.removeprefix("loss ")))
        except ValueError:
            values.append(float("nan"))
    return values


def jax_printed(debug: bool) -> str:
    """A jitted SGD step that prints its loss with `print` or `jax.debug.print`, STEPS calls."""
    with jax.enable_x64(True):
        params, static = functional_mlp()

        @jax.jit
        def step(params, x, y):
            loss, grads = grads_of(params, static, x, y)
            if debug:
                jax.debug.print("loss {:.17g}", loss)  # a callback in the program: every call
            else:
                print(f"loss {loss}")  # Python: runs while tracing, prints the tracer
            return jax.tree.map(lambda p, g: p - LR * g, params, grads)

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            for x, y in problem()[2][:STEPS]:
                params = step(params, x, y)
            jax.effects_barrier()  # the debug callbacks have all run
    return out.getvalue()


def printed_gaps(debug: bool) -> np.ndarray:
    """Per update, |JAX's printed loss - torch's|; a line missing or not a number counts as the
    whole loss torch printed."""
    torch_losses, jax_losses = torch_printed_losses(), parse(jax_printed(debug))
    jax_losses += [float("nan")] * (STEPS - len(jax_losses))
    gaps = np.abs(np.array(jax_losses) - np.array(torch_losses))
    return np.where(np.isnan(gaps), np.abs(torch_losses), gaps)


# -- python-if-on-tracer --
MAX_NORM = 0.5


def torch_clipped_run(norms: list | None = None) -> list[dict]:
    """Eager torch, the clipping written as a Python `if` on the norm (it runs every step);
    each update's gradient norm goes into `norms` where given."""
    model = torch_mlp()
    runs = []
    for batch in problem()[2][:STEPS]:
        model.zero_grad()
        omlp.loss_fn(model, *tensors(batch)).backward()
        norm = torch.sqrt(sum((p.grad**2).sum() for p in model.parameters()))
        if norms is not None:
            norms.append(float(norm))
        with torch.no_grad():
            for p in model.parameters():
                if norm > MAX_NORM:
                    p.grad.mul_(MAX_NORM / norm)
                p.sub_(LR * p.grad)
        runs.append(oconvert.to_canonical(model))
    return runs


def jax_clipped_run(python_if: bool) -> list[dict]:
    with jax.enable_x64(True):
        params, static = functional_mlp()

        @jax.jit
        def step(params, x, y):
            _, grads = grads_of(params, static, x, y)
            norm = jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree.leaves(grads)))
            if python_if:
                if norm > MAX_NORM:  # a tracer has no truth value
                    grads = jax.tree.map(lambda g: g * (MAX_NORM / norm), grads)
            else:
                scale = jnp.where(norm > MAX_NORM, MAX_NORM / norm, 1.0)  # both branches traced
                grads = jax.tree.map(lambda g: g * scale, grads)
            return jax.tree.map(lambda p, g: p - LR * g, params, grads)

        runs = []
        for x, y in problem()[2][:STEPS]:
            params = step(params, x, y)
            runs.append(fconvert.to_canonical(eqx.combine(params, static)))
    return runs


# -- closure-over-global --
learning_rate = LR  # the global the naive step closes over; the loop halves it every 4 updates


def torch_decayed_run() -> list[dict]:
    model = torch_mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    runs = []
    for t, batch in enumerate(problem()[2][:STEPS]):
        for group in optimizer.param_groups:
            group["lr"] = LR * 0.5 ** (t // 4)  # read at the next optimizer.step()
        omlp.train_step(model, optimizer, *tensors(batch))
        runs.append(oconvert.to_canonical(model))
    return runs


def jax_decayed_run(as_argument: bool) -> list[dict]:
    global learning_rate
    with jax.enable_x64(True):
        params, static = functional_mlp()

        @jax.jit
        def step(params, x, y, lr):
            _, grads = grads_of(params, static, x, y)
            lr = lr if as_argument else learning_rate  # the global: a constant once traced
            return jax.tree.map(lambda p, g: p - lr * g, params, grads)

        runs = []
        try:
            for t, (x, y) in enumerate(problem()[2][:STEPS]):
                learning_rate = LR * 0.5 ** (t // 4)
                params = step(params, x, y, learning_rate)
                runs.append(fconvert.to_canonical(eqx.combine(params, static)))
        finally:
            learning_rate = LR
    return runs


# -- retrace-per-shape --
SIZES = range(32, 22, -1)  # ten batches, each one example smaller: a last batch, or a filter
PAD = 32


def losses_and_traces(padded: bool) -> tuple[np.ndarray, np.ndarray]:
    """The mean loss of each batch, and per call how many compilations went before the first."""
    _, _, batches = problem()
    traced = []
    with jax.enable_x64(True):
        params, static = functional_mlp()

        @jax.jit
        def mean_loss(params, x, y, weight):
            traced.append(x.shape)  # Python: runs only when jit traces
            logits = jax.vmap(eqx.combine(params, static))(x)
            per_example = optax.softmax_cross_entropy_with_integer_labels(logits, y)
            return jnp.sum(weight * per_example) / jnp.sum(weight)

        losses, traces = [], []
        for n, (x, y) in zip(SIZES, batches, strict=False):
            x, y, weight = x[:n], y[:n], np.ones(n)
            if padded:
                x, y, weight = (np.pad(a, [(0, PAD - n)] + [(0, 0)] * (a.ndim - 1))
                                for a in (x, y, weight))  # fmt: skip
            losses.append(float(mean_loss(params, x, y, weight)))
            traces.append(len(traced) - 1)
    return np.array(losses), np.array(traces, dtype=float)


def torch_losses() -> np.ndarray:
    model, batches = torch_mlp(), problem()[2]
    sized = zip(SIZES, map(tensors, batches), strict=False)
    with torch.no_grad():
        return np.array([F.cross_entropy(model(x[:n]), y[:n]).item() for n, (x, y) in sized])


TRAPS = [
    Trap(
        name="print-in-jit",
        title="print inside jit runs once, at trace time",
        quantity="|Δ printed loss| per update",
        naive=lambda: printed_gaps(debug=False),
        fixed=lambda: printed_gaps(debug=True),
        naive_at_least=0.1,  # every line missing or a tracer: the whole loss (measured 0.63)
        kind="paradigm",
    ),
    Trap(
        name="python-if-on-tracer",
        title="a Python if on a traced value",
        quantity="max |Δparam| per update",
        naive=lambda: jax_clipped_run(python_if=True),
        fixed=lambda: max_gap(jax_clipped_run(python_if=False), torch_clipped_run()),
        naive_at_least=0.0,
        kind="paradigm",
        raises=jax.errors.TracerBoolConversionError,
        match="Attempted boolean conversion of traced array",
    ),
    Trap(
        name="closure-over-global",
        title="jit freezes a global it reads",
        quantity="max |Δparam| per update",
        naive=lambda: max_gap(jax_decayed_run(as_argument=False), torch_decayed_run()),
        fixed=lambda: max_gap(jax_decayed_run(as_argument=True), torch_decayed_run()),
        naive_at_least=1e-3,  # the lr stays 0.5 while torch's halves (measured 0.11)
        kind="paradigm",
    ),
    Trap(
        name="retrace-per-shape",
        title="jit compiles again for every new shape",
        quantity="compilations after the first per call",
        naive=lambda: losses_and_traces(padded=False)[1],
        fixed=lambda: losses_and_traces(padded=True)[1],
        naive_at_least=8.0,  # one compilation per size: nine more than the first
        fixed_tol=0.0,
        kind="paradigm",
    ),
]

test_naive_port_diverges, test_fixed_port_matches = naive_and_fixed_tests(TRAPS)


def test_the_naive_print_ran_once_and_printed_a_tracer():
    lines = jax_printed(debug=False).splitlines()
    assert len(lines) == 1 and "Tracer" in lines[0], lines  # JitTracer(float64[])


def test_clipping_is_active_on_some_updates_only():
    """Both branches of the `if` matter: the trajectory the fixed port is proved on clips on
    some updates and not on others."""
    norms = []
    torch_clipped_run(norms)
    assert len(norms) == STEPS and min(norms) < MAX_NORM < max(norms), norms


def test_padded_batches_give_the_losses_torch_gives_unpadded():
    for padded in (False, True):
        losses, _ = losses_and_traces(padded)
        assert np.max(np.abs(losses - torch_losses())) <= F64_TOL, padded
