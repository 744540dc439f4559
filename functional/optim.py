"""`OptimizerSpec` + `ScheduleSpec` -> one optax `GradientTransformation`, with torch's meanings.

optax optimizers are pure `(init, update)` pairs: the state is an ordinary pytree that goes
into `update` and comes back out, where `torch.optim` keeps state inside the optimizer object,
keyed by parameter. Each optimizer here is a chain of small transforms, in the order torch
applies the same operations:

    clip_grad_norm_  ->  coupled weight decay  ->  scale (momentum / Adam / RMS / Adagrad)
      ->  decoupled weight decay (AdamW)  ->  -lr(t)

Two transforms are written here because optax's own differ from torch's formula (Adagrad and
global-norm clipping), and one because optax's loses precision in float32 (Adam's bias
corrections). The schedule is computed in the parameters' dtype: optax's built-in
schedules compute in float32 from an int32 count, even under x64 (see docs/traps.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from functional.convert import leaf_names
from shared.optim import OptimizerSpec, ScheduleSpec, check_supported

TORCH_CLIP_EPS = 1e-6  # torch.nn.utils.clip_grad_norm_ divides by (total_norm + 1e-6)


# -- transforms torch defines differently --
def clip_by_global_norm_torch(max_norm: float) -> optax.GradientTransformation:
    """`torch.nn.utils.clip_grad_norm_(params, max_norm)` as an optax transform.

    torch: `coef = min(max_norm / (total_norm + 1e-6), 1)`; `g *= coef`. optax's
    `clip_by_global_norm` uses `max_norm / total_norm` and only when the norm exceeds it.
    """

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        del params
        norm = optax.tree.norm(updates)
        coef = jnp.minimum(max_norm / (norm + TORCH_CLIP_EPS), 1.0)
        return jax.tree_util.tree_map(lambda g: (g * coef).astype(g.dtype), updates), state

    return optax.GradientTransformation(init_fn, update_fn)


class ScaleByTorchAdagradState(NamedTuple):
    sum: optax.Updates  # torch's state["sum"]: the running sum of squared gradients


def scale_by_torch_adagrad(
    initial_accumulator: float = 0.0, eps: float = 1e-10
) -> optax.GradientTransformation:
    """`torch.optim.Adagrad`'s direction: `sum += g^2`; `g / (sqrt(sum) + eps)`.

    optax's `adagrad` starts the sum at 0.1 and adds eps inside the square root (1e-7);
    torch starts at `initial_accumulator_value` (0) and adds eps (1e-10) outside it. The lr
    and its `lr_decay` come from the schedule (`make_schedule`).
    """

    def init_fn(params):
        return ScaleByTorchAdagradState(
            sum=jax.tree_util.tree_map(lambda p: jnp.full_like(p, initial_accumulator), params)
        )

    def update_fn(updates, state, params=None):
        del params
        total = jax.tree_util.tree_map(lambda s, g: s + g * g, state.sum, updates)
        updates = jax.tree_util.tree_map(lambda g, s: g / (jnp.sqrt(s) + eps), updates, total)
        return updates, ScaleByTorchAdagradState(sum=total)

    return optax.GradientTransformation(init_fn, update_fn)


def scale_by_torch_adam(b1: float, b2: float, eps: float) -> optax.GradientTransformation:
    """`torch.optim.Adam`'s direction, `m / bc1 / (sqrt(v) / sqrt(bc2) + eps)`, in optax's
    state (`ScaleByAdamState`: count, mu, nu).

    The same math as `optax.scale_by_adam`, with the bias corrections computed well. optax
    computes `1 - b2**t` in the parameters' dtype: in float32, b2 = 0.999 is 0.99900001287,
    so `1 - b2` loses 1.3e-5 of its value (and mismatches the moment's `1 - b2`, taken in
    Python), and the first updates come out 6e-6 too small. torch computes the corrections in
    Python floats. Here they are `-expm1(t * log(b))`, whose float32 error is a few ulps.
    """
    log_b1, log_b2 = math.log(b1), math.log(b2)  # Python floats, as accurate as float64

    def init_fn(params):
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        return optax.ScaleByAdamState(count=jnp.zeros([], jnp.int32), mu=zeros, nu=zeros)

    def update_fn(updates, state, params=None):
        del params
        count = optax.safe_increment(state.count)
        mu = jax.tree_util.tree_map(lambda m, g: b1 * m + (1 - b1) * g, state.mu, updates)
        nu = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, state.nu, updates)

        def direction(m, v):
            t = count.astype(m.dtype)
            bc1, bc2 = -jnp.expm1(t * log_b1), -jnp.expm1(t * log_b2)
            return (m / bc1 / (jnp.sqrt(v) / jnp.sqrt(bc2) + eps)).astype(m.dtype)

        updates = jax.tree_util.tree_map(direction, mu, nu)
        return updates, optax.ScaleByAdamState(count=count, mu=mu, nu=nu)

    return optax.GradientTransformation(init_fn, update_fn)


# -- optimizer --
def decay_mask(opt: OptimizerSpec, names_of: Callable = leaf_names) -> Callable | None:
    """A callable `params -> pytree of bools`: True where weight decay applies. `names_of(params)`
    gives each leaf's canonical name in `tree_leaves` order (another library's parameter tree
    names its leaves otherwise: Flax NNX's `kernel` is torch's `weight`)."""
    if not opt.no_decay:
        return None

    def mask(params):
        names = names_of(params)
        flags = [opt.decays(n) for n in names]  # the spec's own rule, as the torch side uses
        return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(params), flags)

    return mask


def make_optimizer(
    opt: OptimizerSpec, sched: ScheduleSpec, dtype: str = "float32", *,
    names_of: Callable = leaf_names,
) -> optax.GradientTransformation:  # fmt: skip
    """The optax twin of `oop.optim.make_optimizer` (a torch optimizer plus its scheduler).
    `names_of` names the parameters for `no_decay` (see `decay_mask`)."""
    check_supported(opt, sched)
    parts: list[optax.GradientTransformation] = []
    if opt.clip_norm is not None:
        parts.append(clip_by_global_norm_torch(opt.clip_norm))
    decay = optax.add_decayed_weights(opt.weight_decay, mask=decay_mask(opt, names_of))
    if opt.weight_decay and opt.name != "adamw":
        parts.append(decay)  # torch: g = g + wd * p, before the optimizer sees g
    if opt.name == "sgd":
        if opt.momentum:
            parts.append(optax.trace(decay=opt.momentum, nesterov=opt.nesterov))
    elif opt.name in ("adam", "adamw"):
        parts.append(scale_by_torch_adam(opt.beta1, opt.beta2, opt.eps))
        if opt.name == "adamw" and opt.weight_decay:
            parts.append(decay)  # decoupled: -lr * (adam + wd * p), i.e. p *= 1 - lr * wd
    elif opt.name == "rmsprop":
        if opt.centered:
            parts.append(optax.scale_by_stddev(decay=opt.alpha, eps=opt.eps, eps_in_sqrt=False))
        else:
            parts.append(optax.scale_by_rms(decay=opt.alpha, eps=opt.eps, eps_in_sqrt=False))
        if opt.momentum:  # before the lr: torch's buffer holds g / (sqrt(v) + eps), not lr * it
            parts.append(optax.trace(decay=opt.momentum))
    elif opt.name == "adagrad":
        parts.append(scale_by_torch_adagrad(opt.initial_accumulator, opt.eps))
    parts.append(optax.scale_by_learning_rate(make_schedule(opt, sched, jnp.dtype(dtype))))
    return optax.chain(*parts)


# -- schedule --
def make_schedule(opt: OptimizerSpec, sched: ScheduleSpec, dtype) -> optax.Schedule:
    """`count -> lr` for update `count` (0-based), computed in `dtype`, as torch's schedulers
    (and `shared.optim.learning_rate`, the NumPy reference) define it."""
    lr, w, s = opt.lr, sched.warmup_steps, sched.warmup_start_factor

    def main(u):  # the schedule after warmup, counting its own updates from 0
        if sched.name == "step":
            return lr * sched.gamma ** jnp.floor(u / sched.step_size)
        if sched.name == "multistep":
            passed = sum((u >= m).astype(dtype) for m in sched.milestones)
            return lr * sched.gamma**passed
        if sched.name == "exponential":
            return lr * sched.gamma**u
        if sched.name == "cosine":  # flat at eta_min after the horizon
            horizon = sched.decay_steps - w
            u = jnp.minimum(u, horizon)
            return sched.eta_min + (lr - sched.eta_min) * (1 + jnp.cos(jnp.pi * u / horizon)) / 2
        return jnp.full_like(u, lr)  # constant

    def schedule(count):
        t = jnp.asarray(count).astype(dtype)
        value = main(t - w)
        if w:
            value = jnp.where(t < w, lr * (s + (1 - s) * t / w), value)
        if opt.lr_decay:
            value = value / (1 + t * opt.lr_decay)
        return value

    return schedule
