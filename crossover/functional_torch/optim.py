"""`OptimizerSpec` + `ScheduleSpec` -> a pure `(init, update)` pair over dicts of torch tensors.

Twin of `functional/optim.py` (optax's shape) written in torch ops, with `torch.optim`'s
formulas (its single-tensor code paths): `init(params) -> state`, `update(grads, state,
params) -> (updates, state)`, `apply_updates(params, updates) -> params`. Nothing changes in
place, so the same state given twice gives the same step twice, and the step can be
`torch.func.vmap`ped over a stack of models. The state is a NamedTuple whose fields are torch's
own per-parameter state keys (`exp_avg`, `momentum_buffer`, ...) holding `name -> tensor`
dicts, and `step`, the update count as a tensor; the learning rate is computed from that count
inside the update, in torch ops, the way `functional.optim.make_schedule` computes it in jnp.

A library was tried first: torchopt 0.7.3 (the last release, 2023) imports with torch 2.13 and
its Adam steps in pure Python, but its C++ extension no longer loads ("undefined symbol"), and
it follows optax's formulas where this package needs torch.optim's (see docs/paradigms.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from shared.optim import OptimizerSpec, ScheduleSpec, check_supported

Params = dict[str, Tensor]
TORCH_CLIP_EPS = 1e-6  # torch.nn.utils.clip_grad_norm_ divides by (total_norm + 1e-6)


class OptState(NamedTuple):
    """Every optimizer's state: the update count and torch's per-parameter buffers (None where
    the optimizer keeps none), each `name -> tensor` like the parameters."""

    step: Tensor  # int64, the updates done; torch keeps one float per parameter
    momentum_buffer: Params | None = None  # SGD, RMSprop with momentum
    exp_avg: Params | None = None  # Adam, AdamW
    exp_avg_sq: Params | None = None  # Adam, AdamW
    square_avg: Params | None = None  # RMSprop
    grad_avg: Params | None = None  # RMSprop centered
    sum: Params | None = None  # Adagrad


class GradientTransformation(NamedTuple):
    """optax's pair, over dicts of tensors."""

    init: Callable[[Params], OptState]
    update: Callable[[Params, OptState, Params], tuple[Params, OptState]]


def apply_updates(params: Params, updates: Params) -> Params:
    """`params + updates`, entry by entry, as `optax.apply_updates`."""
    return {k: p + updates[k] for k, p in params.items()}


def params_dtype(params: Params) -> torch.dtype:
    return next(iter(params.values())).dtype


def _map(fn, *dicts: Params) -> Params:
    return {k: fn(*(d[k] for d in dicts)) for k in dicts[0]}


# -- optimizer --
def clip_by_global_norm(grads: Params, max_norm: float) -> Params:
    """`torch.nn.utils.clip_grad_norm_`, out of place: one norm over every gradient, then each
    scaled by `min(max_norm / (norm + 1e-6), 1)`."""
    norm = torch.linalg.vector_norm(
        torch.stack([torch.linalg.vector_norm(g) for g in grads.values()])
    )
    coef = torch.clamp(max_norm / (norm + TORCH_CLIP_EPS), max=1.0)
    return _map(lambda g: g * coef.to(g.dtype), grads)


def make_optimizer(
    opt: OptimizerSpec, sched: ScheduleSpec, dtype: str = "float32"
) -> GradientTransformation:
    """The pure twin of `oop.optim.make_optimizer` with its scheduler: the same formulas as
    torch.optim, the schedule inside. `dtype` is the parameters'; the lr is computed in float64,
    as torch's schedulers compute it in Python floats, and applied in the parameters' dtype."""
    check_supported(opt, sched)
    lr_of = make_schedule(opt, sched)
    b1, b2, eps, wd = opt.beta1, opt.beta2, opt.eps, opt.weight_decay
    zeros = {"sgd": ("momentum_buffer",) if opt.momentum else (),
             "adam": ("exp_avg", "exp_avg_sq"), "adamw": ("exp_avg", "exp_avg_sq"),
             "rmsprop": ("square_avg",) + (("momentum_buffer",) if opt.momentum else ())
                        + (("grad_avg",) if opt.centered else ()),
             "adagrad": ()}[opt.name]  # fmt: skip

    def init(params: Params) -> OptState:
        buffers = {key: _map(torch.zeros_like, params) for key in zeros}
        if opt.name == "adagrad":
            buffers["sum"] = _map(lambda p: torch.full_like(p, opt.initial_accumulator), params)
        return OptState(step=torch.zeros((), dtype=torch.int64), **buffers)

    def update(grads: Params, state: OptState, params: Params) -> tuple[Params, OptState]:
        t = state.step + 1  # this update's number, from 1
        lr = lr_of(state.step)  # float64, from the count before this update
        if opt.clip_norm is not None:
            grads = clip_by_global_norm(grads, opt.clip_norm)
        if wd and opt.name != "adamw":  # coupled: g + wd * p, where the spec says it decays
            grads = {k: g + wd * params[k] if opt.decays(k) else g for k, g in grads.items()}
        new = {}
        if opt.name == "sgd":
            direction = grads
            if opt.momentum:  # torch: buf = g at the first update, then momentum * buf + g
                buf = _map(lambda b, g: torch.where(t == 1, g, opt.momentum * b + g),
                           state.momentum_buffer, grads)  # fmt: skip
                new["momentum_buffer"] = buf
                direction = (
                    _map(lambda g, b: g + opt.momentum * b, grads, buf) if opt.nesterov else buf
                )
        elif opt.name in ("adam", "adamw"):
            m = _map(lambda m, g: torch.lerp(m, g, 1 - b1), state.exp_avg, grads)  # exp_avg.lerp_
            v = _map(lambda v, g: b2 * v + (1 - b2) * g * g, state.exp_avg_sq, grads)
            new.update(exp_avg=m, exp_avg_sq=v)
            bc1, bc2 = 1 - b1 ** t.double(), 1 - b2 ** t.double()  # Python floats in torch
            lr = lr / bc1  # torch's step_size
            direction = _map(lambda m, v: m / (v.sqrt() / bc2.sqrt().to(v.dtype) + eps), m, v)
        elif opt.name == "rmsprop":
            a = opt.alpha
            sq = _map(lambda s, g: a * s + (1 - a) * g * g, state.square_avg, grads)
            new["square_avg"] = sq
            if opt.centered:
                ga = _map(lambda m, g: torch.lerp(m, g, 1 - a), state.grad_avg, grads)
                new["grad_avg"] = ga
                avg = _map(lambda s, m: (s - m * m).sqrt() + eps, sq, ga)
            else:
                avg = _map(lambda s: s.sqrt() + eps, sq)
            direction = _map(torch.div, grads, avg)
            if opt.momentum:
                buf = _map(lambda b, d: opt.momentum * b + d, state.momentum_buffer, direction)
                new["momentum_buffer"] = direction = buf
        else:  # adagrad: lr_decay is in the schedule
            total = _map(lambda s, g: s + g * g, state.sum, grads)
            new["sum"] = total
            direction = _map(lambda g, s: g / (s.sqrt() + eps), grads, total)
        updates = {k: -lr.to(d.dtype) * d for k, d in direction.items()}
        if opt.name == "adamw" and wd:  # decoupled: p * (1 - lr * wd), before the Adam step
            decay = (lr_of(state.step) * wd).to(params_dtype(params))
            updates = {k: u - decay * params[k] if opt.decays(k) else u for k, u in updates.items()}
        return updates, state._replace(step=t, **new)

    return GradientTransformation(init, update)


# -- schedule --
def make_schedule(opt: OptimizerSpec, sched: ScheduleSpec) -> Callable[[Tensor], Tensor]:
    """`count -> lr` for update `count` (0-based), a float64 tensor, as torch's schedulers (and
    `shared.optim.learning_rate`, the NumPy reference) define it; torch ops throughout, so it
    traces under `torch.compile` and `torch.func.vmap` without a graph break."""
    lr, w, s = opt.lr, sched.warmup_steps, sched.warmup_start_factor

    def main(u: Tensor) -> Tensor:  # the schedule after warmup, counting its own updates from 0
        if sched.name == "step":
            return lr * sched.gamma ** torch.floor(u / sched.step_size)
        if sched.name == "multistep":
            passed = sum((u >= m).double() for m in sched.milestones)
            return lr * sched.gamma**passed
        if sched.name == "exponential":
            return lr * sched.gamma**u
        if sched.name == "cosine":  # flat at eta_min after the horizon
            horizon = sched.decay_steps - w
            u = torch.clamp(u, max=horizon)
            return (
                sched.eta_min + (lr - sched.eta_min) * (1 + torch.cos(torch.pi * u / horizon)) / 2
            )
        return torch.full_like(u, lr)  # constant

    def schedule(count: Tensor) -> Tensor:
        t = count.double()
        value = main(t - w)
        if w:
            value = torch.where(t < w, lr * (s + (1 - s) * t / w), value)
        if opt.lr_decay:
            value = value / (1 + t * opt.lr_decay)
        return value

    return schedule
