"""How close float32 twins must be: bounds for single operations, a control for trajectories.

**Single operations** (a forward pass, a loss, a gradient, one update) get absolute bounds that
follow from float32's unit roundoff `U32` and the size of the values, never from what one CPU
printed. A sum of k terms computed in any order is within `k * U32 * sum(|terms|)` of the exact
sum (Higham's γ_k), so two implementations are within twice that of each other. For a network
of linear maps, convolutions, ReLUs and max-pools, `sum(|terms|)` of every product is bounded by
the same network run on absolute values (`absolute_network`): its output bounds each layer's
terms, and the errors of all layers add up along the path (first-order error analysis).

**Trajectories** (many updates) are chaotic: a ReLU that flips for one example, or a weight
whose gradient is rounding-sized under Adam, turns one ulp into a visible step, and which of
them happens depends on the kernels, the CPU and the thread count. So a float32 trajectory is
judged against a **rounding control** measured in the same test: each side trained again
from a start one ulp away (`checkpoint.jitter`) on batches whose examples come in another order
(every sum over the batch adds in another order, at every update: the same math, other
rounding). The twins' gap must stay within `FACTOR` times the largest control gap, plus a
floor of a few ulps for runs where every gap is tiny. `check_trajectories` is the one place
this is done; every model's float32 trajectory test calls it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from shared import checkpoint, compare

U32 = 2.0**-24  # float32's unit roundoff: a correctly rounded operation errs by at most this
F64_TOL = 1e-10  # float64 proves equality: rounding is 1e-16 per operation, 1e-10 catches bugs

# The factor between the twins' gap and the largest control gap. The twins and each control are
# draws of one chaotic process, so their ratio scatters. Measured over every float32 trajectory
# of the suite at two threads, with the full kernels (AVX-512) and capped to SSE4.2: at most
# 1.5 (the LSTM's loss; the ladder's level 0 against JAX under SGD with SSE4.2, where a ReLU
# flip opened 1.5e-5 in the twins' weights and 1.5e-5 in the control's). 10 leaves room for
# other CPUs; optax's float32 Adam bias correction, a real 1.3e-5 defect, showed 26-33x.
FACTOR = compare.CONTROL_FACTOR  # 10, shared with `shared.compare --control`
# The floor: the gaps of runs whose every difference is a few ulps (SGD on small models) say
# nothing about a factor. 8 ulps of the largest value compared (loss, or weight).
FLOOR_ULPS = 8
# Per side, two controls, each a start one ulp away (its own jitter seed) and one fixed other
# order of every batch's examples: reversed, and rotated by half. A fixed order reorders the sums
# consistently from update to update, as another framework's kernels do; random orders change
# the rounding at random each update and missed Adam's drift (measured: 26x below the twins).
CONTROL_ORDERS = {1: "reversed", 2: "rotated"}


# -- single operations --
def sum_bound(k: int, scale) -> np.ndarray:
    """|fl(sum) - sum| for k terms whose absolute values add up to `scale`, in float32."""
    return k * U32 * np.asarray(scale, np.float64)


def reduction_lengths(model: torch.nn.Module) -> tuple[int, int]:
    """(forward, backward) lengths of the sums along the path of a network of `nn.Linear` and
    `nn.Conv2d` layers: a Linear sums in_features terms and a bias forward, out_features
    backward; a Conv2d in_channels * kernel area forward, out_channels * kernel area back."""
    fwd = bwd = 0
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            fwd, bwd = fwd + m.in_features + 1, bwd + m.out_features
        elif isinstance(m, torch.nn.Conv2d):
            area = m.kernel_size[0] * m.kernel_size[1]
            fwd, bwd = fwd + m.in_channels * area + 1, bwd + m.out_channels * area
    return fwd, bwd


def absolute_network(model: torch.nn.Module, x: np.ndarray):
    """The model with every weight replaced by its absolute value, in float64, on |x|:
    `(outputs, gradient of their mean over the batch by parameter name)`. Its outputs bound
    sum(|terms|) of every layer's products; its gradients bound those of the backward pass
    (whose output error is at most 1 per logit: softmax minus a one-hot)."""
    m = copy.deepcopy(model).double()
    with torch.no_grad():
        for p in m.parameters():
            p.abs_()
    out = m(torch.from_numpy(np.abs(np.asarray(x, np.float64))))
    out.sum(dim=tuple(range(1, out.ndim))).mean().backward()
    grads = {k: p.grad.numpy().copy() for k, p in m.named_parameters()}
    return out.detach().numpy(), grads


@dataclass(frozen=True)
class Bounds:
    """Twin bounds (two sides, each within the bound of the exact value) for a classifier."""

    logits: float
    loss: float
    grads: dict[str, np.ndarray]  # per element


def classifier_bounds(
    model: torch.nn.Module, x: np.ndarray, classes: int, *, positions: int = 1
) -> Bounds:
    """Bounds for logits, the mean cross-entropy and every gradient of a float32 classifier
    made of Linear/Conv2d, ReLU and max-pool layers, on the batch `x`:
    - logits: the forward sums, K_fwd terms along the path, times the absolute network's output;
    - loss: a logit error moves log-softmax by at most twice as much, and the log-sum-exp and
      the batch mean add their own `(classes + batch) * U32` of the largest loss term;
    - gradients: the forward error reaches the softmax (twice the logit error per output) and
      the activations (K_fwd), the backward pass adds its own sums (K_bwd, and the batch times
      `positions`: a conv's weight gradient also sums over its output positions)."""
    fwd, bwd = reduction_lengths(model)
    out, g_abs = absolute_network(model, x)
    e_logit = float(sum_bound(fwd, out.max()))
    batch = len(x)
    loss_terms = np.log(classes) + 2 * out.max()  # |log-softmax| <= log(C) + max|z_i - z_j|
    e_loss = 2 * e_logit + float(sum_bound(classes + batch, loss_terms))
    per_grad = (
        2 * e_logit / U32 + fwd + bwd + batch * positions + classes
    )  # in units of U32 * |G_abs|
    grads = {k: 2 * sum_bound(per_grad, g) for k, g in g_abs.items()}
    return Bounds(2 * e_logit, 2 * e_loss, grads)


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
        if opt.name == "adam":  # 1 - beta^t in float32 (optax; torch uses Python floats)
            step = step + opt.lr * U32 * (
                opt.beta2 / (1 - opt.beta2) / 2 + opt.beta1 / (1 - opt.beta1)
            )
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
@dataclass(frozen=True)
class Trajectory:
    losses: np.ndarray  # one per update
    weights: dict[str, np.ndarray]  # canonical, at the end (weights and any state)


# A side's training: (start weights, batches) -> Trajectory. Build it once (its compiled step
# with it) so that the twins' run and the controls share one compilation.
Trainer = Callable[[dict, Sequence[tuple]], Trajectory]


@dataclass(frozen=True)
class Gap:
    loss: float  # max |Δloss| over the run
    weights: float  # max |Δw| at the end, over every canonical entry

    @staticmethod
    def between(a: Trajectory, b: Trajectory) -> Gap:
        assert a.weights.keys() == b.weights.keys(), sorted(a.weights.keys() ^ b.weights.keys())
        loss = float(np.max(np.abs(a.losses.astype(np.float64) - b.losses)))
        w = max(_max_diff(a.weights[k], b.weights[k]) for k in a.weights)
        return Gap(loss, w)


def _max_diff(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def perturbed(weights: dict, batches: Sequence[tuple], seed: int):
    """Control `seed`'s start and batches: one ulp away, each batch's examples in the order
    CONTROL_ORDERS names (every array of a batch reordered alike along its first axis)."""
    out = []
    for batch in batches:
        n = len(batch[0])
        order = (
            np.arange(n)[::-1]
            if CONTROL_ORDERS[seed] == "reversed"
            else np.roll(np.arange(n), n // 2)
        )
        out.append(tuple(np.asarray(a)[order] for a in batch))
    return checkpoint.jitter(weights, seed), out


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
    loss = max(float(np.max(np.abs(r.losses))) for r in runs)
    w = max(float(np.max(np.abs(v))) for r in runs for v in r.weights.values())
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
