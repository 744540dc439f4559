"""How close float32 twins must be: bounds for single operations, a control for trajectories.

**Single operations** (a forward pass, a loss, a gradient, one update) get absolute bounds that
follow from float32's unit roundoff `U32` and the size of the values, never from what one CPU
printed. A sum of k terms computed in any order is within `γ_k · sum(|terms|)` of the exact sum
(Higham's γ_k ≈ k·U32), so two implementations are within twice that of each other.
`classifier_bounds` carries that through a whole forward and backward pass, layer by layer,
with the float64 values of the same computation as the sizes (a running error analysis).

**Trajectories** (many updates) are chaotic: a ReLU that flips for one example, or a weight
whose gradient is rounding-sized under Adam, turns one ulp into a visible step, and which of
them happens depends on the kernels, the CPU and the thread count. So a float32 trajectory is
judged against a **rounding control** measured in the same test: each side trained again
from a start one ulp away (`shared.weights.jitter`) on batches whose examples come in another order
(every sum over the batch adds in another order, at every update: the same math, other
rounding) and whose floating inputs sit one ulp away at random (every sum of the forward pass
rounds otherwise too, and the data's exact ties break as rounding breaks them). The twins'
gap must stay within `FACTOR` times the largest control gap, plus a floor of a few ulps for
runs where every gap is tiny. `check_trajectories` is the one place this is done; every
model's float32 trajectory test calls it, with the two sides' trainers from tests/pairs.py
(`pairs.trainers`), where float64's `F64_TOL` and the gap measurement `max_abs_diff` live.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from pairs import F64_TOL, Trajectory, max_abs_diff, oop_model

from shared import compare, data
from shared.weights import jitter

U32 = 2.0**-24  # float32's unit roundoff: a correctly rounded operation errs by at most this

# The factor between the twins' gap and the largest control gap. The twins and each control are
# draws of one chaotic process, so their ratio scatters. Measured over every float32 trajectory
# of the suite at two threads, with the full kernels (AVX-512) and capped to SSE4.2: at most
# 2.0 (the LSTM's loss, 2.4e-7 against 1.2e-7: two ulps against one; docs/reproducibility.md
# has the table). 10 leaves room for
# other CPUs; optax's float32 Adam bias correction, a real 1.3e-5 defect, showed 33x (the
# LSTM's loss). Where a control drifts far (the cnn under SGD) the check catches only gross
# errors; the float64 run and the single-operation bounds catch the subtle ones.
FACTOR = compare.CONTROL_FACTOR  # 10, shared with `shared.compare --control`
# The floor: the gaps of runs whose every difference is a few ulps (SGD on small models) say
# nothing about a factor. 8 ulps of the largest value compared (loss, or weight).
FLOOR_ULPS = 8
# Per side, two controls, each a start one ulp away (its own jitter seed) and one fixed other
# order of every batch's examples: reversed, and rotated by half. A fixed order reorders the sums
# consistently from update to update, as another framework's kernels do; random orders change
# the rounding at random each update and missed the drift of optax's Adam (26x below it). The
# inputs' one-ulp jitter (`data.jitter_inputs`) makes every forward pass round otherwise, as
# other kernels do. It does not make every trajectory testable: where one near-tie (a max-pool
# winner, a ReLU's sign) decides the twins' gap, as for the cnn_bn under SGD (2.5e-5 in the
# weights), a control meets such an event or not by chance (1.0x to 20x), so such a setting
# is not used for a float32 trajectory (tests/test_cnn_bn.py).
CONTROL_ORDERS = {1: "reversed", 2: "rotated"}


# -- single operations --
def sum_bound(k: int, scale) -> np.ndarray:  # the simple form, for a single sum
    """|fl(sum) - sum| for k terms whose absolute values add up to `scale`, in float32."""
    return k * U32 * np.asarray(scale, np.float64)


def gamma(k: int) -> float:
    """Higham's γ_k = k·u / (1 - k·u): a sum of k terms errs by at most γ_k·sum(|terms|)."""
    return k * U32 / (1 - k * U32)


def _stages(model: torch.nn.Module) -> list[tuple]:
    """The package's MLP (`layers`) or CNN (`convs`, `pool`, `head`) as a list of stages."""
    if hasattr(model, "convs"):
        out = [("reshape", model.image_shape)]
        for conv in model.convs:
            out += [("conv", conv), ("relu",), ("pool",)]
        return [*out, ("flatten",), ("linear", model.head)]
    out = []
    for layer in model.layers[:-1]:
        out += [("linear", layer), ("relu",)]
    return [*out, ("linear", model.layers[-1])]


@dataclass(frozen=True)
class Bounds:
    """Twin bounds (two sides, each within the bound of the exact value), per element."""

    logits: np.ndarray  # (batch, classes)
    loss: float
    grads: dict[str, np.ndarray]  # by canonical name


def forward_bounds(name: str, config, weights, x: np.ndarray, y: np.ndarray, dtype: str,
                   grads) -> Bounds:  # fmt: skip
    """The bounds for the twins' logits, loss and every gradient on one batch: F64_TOL in
    float64, `classifier_bounds` of the float32 model in float32."""
    if dtype == "float64":
        return Bounds(F64_TOL, F64_TOL, {k: F64_TOL for k in grads})
    return classifier_bounds(oop_model(name, config, weights, "float32"), x, y)


def classifier_bounds(model: torch.nn.Module, x: np.ndarray, y: np.ndarray) -> Bounds:
    """A running error analysis of one float32 forward and backward pass of the package's MLP or
    CNN on the batch `(x, y)`, the mean cross-entropy as the loss. The reference is the same
    computation in float64 on the same float32 weights and inputs (what both sides are given).

    - A Linear or conv of k terms errs by `|W| e_in + γ_{k+1} (|W| |h| + |b|)`, e_in the error of
      its input, h the exact input: the propagated error plus its own rounding. ReLU and
      max-pool never enlarge an error (both are 1-Lipschitz, so this holds across their kinks).
    - The loss, log-sum-exp minus the true logit, moves by at most twice the largest logit
      error, plus the rounding of its own C-term sum and exp/log, plus the batch mean's.
    - Backward, to first order (a ReLU or a pooling choice flipped by rounding is ignored): the
      softmax's error is at most `p (2 max e + (C + 4) u)`; each layer passes
      `|W|ᵀ D + γ_out |W|ᵀ |δ|` on, D the error of δ; a weight gradient, a sum over the batch
      (and a conv's output positions) of δ times the input, errs by
      `Dᵀ|h| + |δ|ᵀ e_h + γ_{B·P} |δ|ᵀ|h|`.
    """
    import torch.nn.functional as F

    names = {id(m): n for n, m in model.named_modules()}
    m = copy.deepcopy(model).double()
    mods = dict(m.named_modules())
    h = torch.from_numpy(np.asarray(x, np.float32).astype(np.float64))
    e = torch.zeros_like(h)
    batch, saved = len(h), []
    for stage in _stages(model):
        kind = stage[0]
        saved.append((stage, h, e))
        if kind == "linear":
            lin = mods[names[id(stage[1])]]
            W, b = lin.weight.detach(), lin.bias.detach()
            terms = h.abs() @ W.abs().T + b.abs()
            h, e = h @ W.T + b, e @ W.abs().T + gamma(W.shape[1] + 1) * terms
        elif kind == "conv":
            conv = mods[names[id(stage[1])]]
            W, b = conv.weight.detach(), conv.bias.detach()
            pad, k = conv.padding, W.shape[1] * W.shape[2] * W.shape[3]
            terms = F.conv2d(h.abs(), W.abs(), b.abs(), padding=pad)
            h = F.conv2d(h, W, b, padding=pad)
            e = F.conv2d(e, W.abs(), padding=pad) + gamma(k + 1) * terms
        elif kind == "relu":
            mask = (h > 0).double()
            saved[-1] = (stage, h, e, mask)
            h = h * mask
        elif kind == "pool":
            h, idx = F.max_pool2d(h, 2, 2, return_indices=True)
            saved[-1] = (stage, saved[-1][1], e, idx)
            e = F.max_pool2d(e, 2, 2)
        elif kind == "reshape":
            h, e = h.view(batch, *stage[1]), e.view(batch, *stage[1])
        else:  # flatten
            h, e = h.flatten(1), e.flatten(1)
    z, e_z = h, e  # logits and their error bound, (batch, classes)
    classes = z.shape[1]
    lse = torch.logsumexp(z, 1)
    nll = lse - z[torch.arange(batch), torch.as_tensor(y)]
    own = (classes + 4) * U32 * (lse.abs() + z.abs().amax(1))
    e_loss = float((2 * e_z.amax(1) + own).mean() + gamma(batch) * nll.abs().mean())
    # backward
    p = torch.softmax(z, 1)
    delta = (p - F.one_hot(torch.as_tensor(y), classes).double()) / batch
    D = p * (2 * e_z.amax(1, keepdim=True) + (classes + 4) * U32) / batch + U32 * delta.abs()
    grads = {}
    for item in reversed(saved):
        stage, h, e_h = item[:3]
        kind = stage[0]
        if kind in ("linear", "conv"):
            name = names[id(stage[1])]
            W = mods[name].weight.detach()
            if kind == "linear":
                gw = D.T @ h.abs() + delta.abs().T @ e_h + gamma(batch) * delta.abs().T @ h.abs()
                gb = D.sum(0) + gamma(batch) * delta.abs().sum(0)
                delta_in = delta @ W
                D = D @ W.abs() + gamma(W.shape[0]) * delta.abs() @ W.abs()
            else:
                pad, shape = mods[name].padding, W.shape
                positions = delta.shape[2] * delta.shape[3]

                def wgrad(inp, out, shape=shape, pad=pad):
                    return torch.nn.grad.conv2d_weight(inp, shape, out, padding=pad)

                ad = delta.abs()
                gw = (
                    wgrad(h.abs(), D)
                    + wgrad(e_h, ad)
                    + gamma(batch * positions) * wgrad(h.abs(), ad)
                )
                gb = D.sum((0, 2, 3)) + gamma(batch * positions) * delta.abs().sum((0, 2, 3))
                igrad = torch.nn.grad.conv2d_input
                delta_in = igrad(h.shape, W, delta, padding=pad)
                k_out = shape[0] * shape[2] * shape[3]
                D = igrad(h.shape, W.abs(), D, padding=pad) + gamma(k_out) * igrad(
                    h.shape, W.abs(), delta.abs(), padding=pad
                )
            grads[f"{name}.weight"], grads[f"{name}.bias"] = 2 * gw, 2 * gb
            delta = delta_in
        elif kind == "relu":
            delta, D = delta * item[3], D * item[3]
        elif kind == "pool":
            size = h.shape[2:]
            delta = F.max_unpool2d(delta, item[3], 2, 2, output_size=size)
            D = F.max_unpool2d(D, item[3], 2, 2, output_size=size)
        else:  # reshape or flatten, undone
            delta, D = delta.reshape(h.shape), D.reshape(h.shape)
    grads = {k: v.numpy() for k, v in grads.items()}
    return Bounds(2 * e_z.numpy(), 2 * e_loss, grads)


def first_update_bound(grad64: dict, grad_bound: dict, weights: dict, opt) -> dict:
    """Twin bound per weight after one update from the same weights, given the exact gradient
    and the gradients' twin bound. SGD moves by lr * g: lr * Δg. Adam's first step is
    lr * g / (|g| + eps): where |g| is within Δg of 0 the sign is rounding's and the step may
    differ by 2 lr; elsewhere by 2 Δg times the slope eps / (|g| - Δg + eps)^2. Each side then
    rounds w - step (and the optimizer arithmetic) to within a few ulps."""
    out = {}
    for k, g in grad64.items():
        g, dg, w = np.abs(g), grad_bound[k], np.abs(weights[k]).astype(np.float64)
        if opt.name == "sgd":
            step = opt.lr * dg
        else:
            slope = opt.eps / np.maximum(g - dg + opt.eps, opt.eps) ** 2
            step = np.where(g <= dg, 2 * opt.lr, np.minimum(2 * opt.lr, opt.lr * dg * slope))
        out[k] = step + 2 * sum_bound(4, w + opt.lr)  # w - lr * update, each side
    return out


def assert_within(diff: dict, bound: dict, what: str) -> None:
    """Every element of `diff` (name -> |a - b|) within its `bound`; the message names the
    worst."""
    for k in diff:
        d = np.asarray(diff[k], np.float64)
        b = np.broadcast_to(np.asarray(bound[k], np.float64), d.shape)
        excess = np.divide(d, b, out=np.where(d > 0, np.inf, 0.0), where=b > 0)
        i = np.unravel_index(np.argmax(excess), excess.shape)
        shown = f"|Δ| {d[i]:.3e} > bound {b[i]:.3e}"
        assert excess[i] <= 1, f"{what} {k}{list(map(int, i))}: {shown}"


# -- trajectories --
# A side's training: (start weights, batches) -> Trajectory. Build it once (its compiled step
# with it) so that the twins' run and the controls share one compilation: `pairs.trainers`.
Trainer = Callable[[dict, Sequence[tuple]], Trajectory]


@dataclass(frozen=True)
class Gap:
    loss: float  # max |Δloss| over the run
    weights: float  # max |Δw| at the end, over every canonical entry

    @staticmethod
    def between(a: Trajectory, b: Trajectory) -> Gap:
        return Gap(max_abs_diff(a.losses, b.losses), max_abs_diff(a.weights, b.weights))


def perturbed(weights: dict, batches: Sequence[tuple], seed: int):
    """Control `seed`'s start and batches: one ulp away, each batch's examples in the order
    CONTROL_ORDERS names (every array of a batch reordered alike along its first axis), and
    each batch's floating inputs (its first array) one ulp away at random where they are not
    0 (`data.jitter_inputs`, drawn per batch), so that the forward pass rounds differently at
    every update too."""
    out = []
    for k, batch in enumerate(batches):
        n = len(batch[0])
        order = (
            np.arange(n)[::-1]
            if CONTROL_ORDERS[seed] == "reversed"
            else np.roll(np.arange(n), n // 2)
        )
        x, *rest = (np.asarray(a)[order] for a in batch)
        out.append((data.jitter_inputs(x, [seed, k]), *rest))
    return jitter(weights, seed), out


@dataclass(frozen=True)
class Verdict:
    a: Trajectory
    b: Trajectory
    twins: Gap
    control: Gap | None  # the largest over the controls of both sides; None in float64
    floor: Gap | None

    def __str__(self) -> str:
        if self.control is None:
            return f"float64: loss {self.twins.loss:.1e}, weights {self.twins.weights:.1e}"
        (rl, rw), c, t = self.ratios(), self.control, self.twins
        return (f"twins/control: loss {t.loss:.1e}/{c.loss:.1e} = {rl:.2f}, "
                f"weights {t.weights:.1e}/{c.weights:.1e} = {rw:.2f}")  # fmt: skip

    def ratios(self) -> tuple[float, float]:
        return (
            self.twins.loss / max(self.control.loss, 1e-300),
            self.twins.weights / max(self.control.weights, 1e-300),
        )


def floor_of(*runs: Trajectory) -> Gap:
    """FLOOR_ULPS of the largest loss and of the largest floating weight (a BatchNorm's integer
    count of batches is no weight: its size says nothing about rounding)."""
    loss = max(float(np.max(np.abs(r.losses))) for r in runs)
    w = max(float(np.max(np.abs(v))) for r in runs for v in r.weights.values()
            if np.asarray(v).dtype.kind == "f")  # fmt: skip
    return Gap(FLOOR_ULPS * loss * 2 * U32, FLOOR_ULPS * w * 2 * U32)


def check_trajectories(
    train_a: Trainer, train_b: Trainer, weights: dict, batches: Sequence[tuple], dtype: str,
    *, what: str = "the twins",
) -> Verdict:  # fmt: skip
    """Train both sides from `weights` on `batches`. float64: every gap within F64_TOL.
    float32: within FACTOR of the largest rounding control's gap (both sides, CONTROL_ORDERS)
    plus the floor. Returns both runs and the gaps, for the checks a test adds."""
    kinds = {v.dtype.name for v in weights.values() if v.dtype.kind == "f"}
    assert kinds == {dtype}, f"start from {dtype} weights (one ulp of {dtype}), not {kinds}"
    a, b = train_a(weights, batches), train_b(weights, batches)
    twins = Gap.between(a, b)
    if dtype == "float64":
        assert twins.loss <= F64_TOL, f"{what}: losses differ by {twins.loss:.3e}"
        assert twins.weights <= F64_TOL, f"{what}: final weights differ by {twins.weights:.3e}"
        return Verdict(a, b, twins, None, None)
    gaps = []
    for train, run in ((train_a, a), (train_b, b)):
        for seed in CONTROL_ORDERS:
            gaps.append(Gap.between(run, train(*perturbed(weights, batches, seed))))
    control = Gap(max(g.loss for g in gaps), max(g.weights for g in gaps))
    floor = floor_of(a, b)
    verdict = Verdict(a, b, twins, control, floor)
    for field in ("loss", "weights"):
        t, c, f = (getattr(g, field) for g in (twins, control, floor))
        assert t <= FACTOR * c + f, (
            f"{what}: {field} gap {t:.3e} is {t / max(c, 1e-300):.1f}x the rounding control's "
            f"{c:.3e} (allowed: {FACTOR:g}x + {f:.1e})"
        )
    return verdict
