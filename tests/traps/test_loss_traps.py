"""Traps: losses and activations. `F.cross_entropy` reduces to the batch mean, spreads label
smoothing over all K classes and skips `ignore_index=-100` targets; the optax integer-label loss
does none of that. `jax.nn.gelu` is the tanh approximation unless told otherwise; torch's is exact.

The torch side is the reference; each naive port is the optax / jax call a reader would write
first. The logits are the tiny MLP's on the harness's moons batches (computed in NumPy), and
each loss is compared per batch, both sides in float64.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
import torch.nn.functional as F
from harness import Trap, naive_and_fixed_tests, problem
from pairs import max_abs_diff

import shared.level0.mlp as l0

EPS = 0.1  # label smoothing
IGNORE = -100  # torch's default ignore_index


def batches(ignore: bool = False) -> list[tuple[np.ndarray, np.ndarray]]:
    """(float64 logits, int64 labels) per harness batch; with `ignore`, every 4th label -> -100."""
    _, weights, data = problem()
    out = []
    for x, y in data:
        y = y.astype(np.int64)
        if ignore:
            y = np.where(np.arange(len(y)) % 4 == 3, IGNORE, y)
        out.append((l0.forward(weights, x)[0].astype(np.float64), y))
    return out


def torch_ce(logits: np.ndarray, y: np.ndarray, **kw) -> tuple[float, np.ndarray]:
    """`F.cross_entropy(logits, y, **kw)` and its gradient with respect to the logits."""
    z = torch.from_numpy(logits).requires_grad_()
    loss = F.cross_entropy(z, torch.from_numpy(y), **kw)
    loss.backward()
    return float(loss.detach()), z.grad.numpy()


@functools.cache
def value_and_grad(loss_fn):  # jitted once per loss: 60 eager batches would take seconds
    return jax.jit(jax.value_and_grad(loss_fn))


def jax_ce(loss_fn, logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """`loss_fn(logits, y)` and its gradient with respect to the logits, in float64."""
    with jax.enable_x64(True):
        z, labels = jnp.asarray(logits, jnp.float64), jnp.asarray(y, jnp.int64)
        loss, grad = value_and_grad(loss_fn)(z, labels)
        return float(loss), np.asarray(grad)


def gap(loss_fn, torch_kw: dict, *, ignore: bool = False, grad_only: bool = False) -> np.ndarray:
    """Per batch, |Δloss| and max |Δ∂loss/∂logits| (their max), torch vs `loss_fn`. NaN counts
    as diverged (inf): a NaN compares False with every threshold and would otherwise pass."""
    out, threads = [], torch.get_num_threads()
    torch.set_num_threads(1)  # 32 x 2 logits: torch's thread pool only adds ~40 ms a backward
    try:
        for logits, y in batches(ignore):
            (lt, gt), (lj, gj) = torch_ce(logits, y, **torch_kw), jax_ce(loss_fn, logits, y)
            g = max_abs_diff(gt, gj)
            out.append(g if grad_only else max(abs(lt - lj), g))
    finally:
        torch.set_num_threads(threads)
    out = np.array(out)
    return np.where(np.isnan(out), np.inf, out)


# -- the optax ports --
def integer_mean(z, y):  # what functional.models.mlp uses: right for plain F.cross_entropy
    return optax.softmax_cross_entropy_with_integer_labels(z, y).mean()


def integer_sum(z, y):  # per-example losses summed: the batch size times torch's mean
    return optax.softmax_cross_entropy_with_integer_labels(z, y).sum()


def smoothed_mean(z, y):  # torch's label_smoothing: (1 - eps) * one_hot + eps / K, then mean
    targets = optax.smooth_labels(jax.nn.one_hot(y, z.shape[-1], dtype=z.dtype), EPS)
    return optax.softmax_cross_entropy(z, targets).mean()


def masked_mean(z, y):  # torch's ignore_index: drop those rows, average over the kept ones
    keep = y != IGNORE
    safe = jnp.where(keep, y, 0)  # a valid label in masked rows: no NaN in the loss or gradient
    losses = optax.softmax_cross_entropy_with_integer_labels(z, safe)
    return jnp.sum(jnp.where(keep, losses, 0.0)) / jnp.sum(keep)


# -- GELU --
X = np.linspace(-6.0, 6.0, 1001)  # float64


def gelu_gap(approximate: bool) -> np.ndarray:
    """|jax.nn.gelu(x, approximate) - torch F.gelu(x)| (torch's default: exact, erf) per input."""
    with jax.enable_x64(True):
        j = np.asarray(jax.nn.gelu(jnp.asarray(X, jnp.float64), approximate=approximate))
    return np.abs(j - F.gelu(torch.from_numpy(X)).numpy())


TRAPS = [
    Trap(
        name="cross-entropy-reduction",
        title="F.cross_entropy averages; optax's integer-label loss is per example",
        quantity="|Δloss| per batch",
        # naive: the per-example vector must be reduced for jax.grad; summing it scales the loss
        # and gradient by the batch size (an lr x 32 for SGD; Adam mostly hides it)
        naive=lambda: gap(integer_sum, {}),
        fixed=lambda: gap(integer_mean, {}),
        naive_at_least=2.0,  # measured 2.1e1: 31 x a loss near ln 2
    ),
    Trap(
        name="label-smoothing",
        title="label_smoothing=eps: optax needs smooth_labels on one-hot targets",
        quantity="|Δloss| per batch",
        # naive: the same integer-label call, label_smoothing dropped on the way
        naive=lambda: gap(integer_mean, {"label_smoothing": EPS}),
        # fixed: optax.smooth_labels is torch's definition exactly, (1 - eps) * y + eps / K
        fixed=lambda: gap(smoothed_mean, {"label_smoothing": EPS}),
        naive_at_least=2e-3,  # measured 2.0e-2
    ),
    Trap(
        name="ignore-index-label",
        title="ignore_index=-100: optax gives a NaN loss and a wrong gradient",
        quantity="max |Δgrad| (fixed: +|Δloss|) per batch",
        # naive: optax's take_along_axis fills the out-of-range label -100 with NaN, so the loss
        # is NaN; its gradient is finite but wrong (those rows keep the softmax term, and the
        # mean divides by 32, not 24). The loss is left out here: NaN would read as inf.
        naive=lambda: gap(integer_mean, {}, ignore=True, grad_only=True),
        # fixed: mask the rows, divide by the kept count; loss and gradient both compared
        fixed=lambda: gap(masked_mean, {}, ignore=True),
        naive_at_least=2e-3,  # measured 2.2e-2
    ),
    Trap(
        name="gelu-tanh-default",
        title="jax.nn.gelu is the tanh approximation; torch's GELU is exact (erf)",
        quantity="|Δ| per input, x in [-6, 6]",
        naive=lambda: gelu_gap(approximate=True),
        # fixed: approximate=False (or the other way round: torch's approximate="tanh")
        fixed=lambda: gelu_gap(approximate=False),
        naive_at_least=5e-5,  # measured 4.7e-4
    ),
]


test_naive_port_diverges, test_fixed_port_matches = naive_and_fixed_tests(TRAPS)


def test_label_minus_one_wraps_in_optax_and_raises_in_torch():
    """Beside -100: a label of -1 is silently the last class in optax (negative indexing), while
    torch refuses it. A plausible wrong loss, no NaN to notice."""
    logits, y = batches()[0]
    y = y.copy()
    y[0] = -1
    with pytest.raises(IndexError, match="out of bounds"):
        F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(y))
    with jax.enable_x64(True):
        wrapped = optax.softmax_cross_entropy_with_integer_labels(
            jnp.asarray(logits[:1]), jnp.asarray(y[:1])
        )
        last = optax.softmax_cross_entropy_with_integer_labels(
            jnp.asarray(logits[:1]), jnp.asarray([logits.shape[1] - 1])
        )
    assert np.isfinite(float(wrapped[0])) and float(wrapped[0]) == float(last[0])
