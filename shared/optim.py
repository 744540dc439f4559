"""Optimizer and learning-rate schedule specs: plain data that both sides turn into their own kind.

`OptimizerSpec` and `ScheduleSpec` give every hyperparameter PyTorch's meaning
(`torch.optim.SGD`, `Adam`, `AdamW`, `RMSprop`, `Adagrad`, `torch.nn.utils.clip_grad_norm_`,
`torch.optim.lr_scheduler`). `functional/optim.py` turns them into one optax
`GradientTransformation`; `oop/optim.py` into a `torch.optim` optimizer plus an LR scheduler.
`learning_rate` is the NumPy reference for the schedule that both sides must reproduce.

Where one library cannot express the other's option exactly, `check_supported` says why and
both factories refuse it.
"""

from __future__ import annotations

import bisect
import fnmatch
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from shared.errors import Refused

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
SCHEDULES = ("constant", "step", "multistep", "exponential", "cosine")

# torch's default learning rate, eps and weight decay of each optimizer: what a left-out flag means.
TORCH_DEFAULTS: dict[str, dict[str, float]] = {
    "sgd": {"lr": 1e-3, "weight_decay": 0.0},
    "adam": {"lr": 1e-3, "eps": 1e-8, "weight_decay": 0.0},
    "adamw": {"lr": 1e-3, "eps": 1e-8, "weight_decay": 1e-2},
    "rmsprop": {"lr": 1e-2, "eps": 1e-8, "weight_decay": 0.0},
    "adagrad": {"lr": 1e-2, "eps": 1e-10, "weight_decay": 0.0},
}

# hyperparameter -> the optimizers it belongs to (lr, weight_decay, no_decay, clip_norm: all)
APPLIES_TO: dict[str, tuple[str, ...]] = {
    "momentum": ("sgd", "rmsprop"),
    "nesterov": ("sgd",),
    "dampening": ("sgd",),
    "beta1": ("adam", "adamw"),
    "beta2": ("adam", "adamw"),
    "amsgrad": ("adam", "adamw"),
    "eps": ("adam", "adamw", "rmsprop", "adagrad"),
    "alpha": ("rmsprop",),
    "centered": ("rmsprop",),
    "lr_decay": ("adagrad",),
    "initial_accumulator": ("adagrad",),
}

# torch optimizers with no exact optax twin, and why
UNSUPPORTED_OPTIMIZERS = {
    "nadam": "torch's NAdam multiplies beta1 by a momentum-decay schedule (psi=0.004) that "
    "optax.nadam does not have",
    "radam": "torch's RAdam switches to SGD with momentum while the variance is intractable, "
    "with a threshold that optax.radam (threshold=5) does not share exactly",
    "adamax": "torch's Adamax adds eps inside the max, optax.adamax after it",
    "lbfgs": "L-BFGS needs a closure that re-evaluates the loss; the training loops do not",
}


# schedule setting -> the schedules it belongs to (warmup combines with all of them)
SCHEDULE_APPLIES_TO: dict[str, tuple[str, ...]] = {
    "decay_steps": ("cosine",),
    "gamma": ("step", "multistep", "exponential"),
    "step_size": ("step",),
    "milestones": ("multistep",),
    "eta_min": ("cosine",),
}


def _refuse_foreign(kind: str, name: str, given: dict[str, Any], owners_of) -> None:
    for key in given:
        owners = owners_of.get(key)
        if owners and name not in owners:  # also a value equal to the default: --momentum 0
            flag = "--" + key.replace("_", "-")
            raise ValueError(
                f"{flag} does not apply to the {name} {kind}; it belongs to {', '.join(owners)}"
            )


class UnsupportedOption(Refused):
    """An option one library has and the other cannot reproduce exactly."""


def _check_finite(spec: Any, names: tuple[str, ...]) -> None:
    """NaN passes every `<` check and infinity most: refuse both by name first."""
    for name in names:
        value = getattr(spec, name)
        if value is not None and not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value}")


@dataclass(frozen=True)
class OptimizerSpec:
    """One optimizer, with PyTorch's name and meaning for each hyperparameter.

    Build it with `OptimizerSpec.create(name, **given)`, which fills what is left out with
    torch's defaults for that optimizer and refuses a hyperparameter the optimizer lacks.
    """

    name: str = "adam"  # one of OPTIMIZERS; Adam with torch's defaults trains every data set here
    lr: float = 1e-3  # the base learning rate; a schedule multiplies it
    momentum: float = 0.0  # SGD and RMSprop: buf = momentum * buf + g (no dampening)
    nesterov: bool = False  # SGD: step along g + momentum * buf
    dampening: float = 0.0  # SGD: torch's (1 - dampening) * g; only 0 is supported
    beta1: float = 0.9  # Adam(W): first-moment decay
    beta2: float = 0.999  # Adam(W): second-moment decay
    amsgrad: bool = False  # Adam(W): torch's max of second moments; not supported
    eps: float = 1e-8  # added to sqrt(second moment), outside the root as in torch
    weight_decay: float = 0.0  # AdamW: decoupled (p *= 1 - lr wd); the others: g += wd p
    no_decay: tuple[str, ...] = ()  # glob patterns over canonical names exempt from decay
    alpha: float = 0.99  # RMSprop: square_avg = alpha * square_avg + (1 - alpha) g^2
    centered: bool = False  # RMSprop: divide by the std-dev estimate sqrt(E[g^2] - E[g]^2)
    lr_decay: float = 0.0  # Adagrad: lr / (1 + (step - 1) * lr_decay)
    initial_accumulator: float = 0.0  # Adagrad: the sum of squares starts here
    clip_norm: float | None = None  # clip_grad_norm_(max_norm) before the update; None: off

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS and self.name not in UNSUPPORTED_OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.name!r}; available: {', '.join(OPTIMIZERS)}")
        object.__setattr__(self, "no_decay", tuple(self.no_decay))  # a list from JSON
        _check_finite(self, ("lr", "momentum", "beta1", "beta2", "eps", "weight_decay", "alpha",
                             "lr_decay", "initial_accumulator", "clip_norm"))  # fmt: skip
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        for name in ("beta1", "beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:  # torch.optim.Adam's rule
                raise ValueError(f"{name} must lie in [0, 1), got {getattr(self, name)}")
        if not 0.0 <= self.alpha < 1.0:  # torch allows 1, which leaves square_avg at 0 forever
            raise ValueError(f"alpha must lie in [0, 1), got {self.alpha}")
        for name in ("momentum", "eps", "weight_decay", "lr_decay", "initial_accumulator"):
            if getattr(self, name) < 0:  # torch.optim refuses negative values
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.nesterov and self.momentum <= 0:
            raise ValueError("nesterov needs momentum > 0 (as in torch.optim.SGD); set --momentum")
        if self.clip_norm is not None and not self.clip_norm > 0:
            raise ValueError(f"clip_norm must be > 0, got {self.clip_norm}")

    @classmethod
    def create(cls, name: str, **given: Any) -> OptimizerSpec:
        """`name` with the given hyperparameters; None or absent means torch's default.

        Refuses a hyperparameter that `name` does not have, e.g. momentum for Adam.
        """
        given = {k: v for k, v in given.items() if v is not None}
        _refuse_foreign("optimizer", name, given, APPLIES_TO)
        base = TORCH_DEFAULTS.get(name, {})
        return cls(name=name, **{**base, **given})

    def decays(self, canonical_name: str) -> bool:
        """Whether weight decay applies to this parameter (not matched by `no_decay`)."""
        return not any(fnmatch.fnmatchcase(canonical_name, p) for p in self.no_decay)


@dataclass(frozen=True)
class ScheduleSpec:
    """A learning-rate schedule, as torch's `lr_scheduler` classes define it, with optional
    linear warmup in front. Both sides advance it once per optimizer update.

    Update `t` (counted from 0) uses `lr * factor(t)`. During warmup, `factor` rises linearly
    from `warmup_start_factor` at t = 0 to 1 at t = warmup_steps (torch's `LinearLR`). After
    warmup the main schedule counts its own updates from 0 (torch's `SequentialLR`); the one
    exception is `decay_steps`, the absolute update at which cosine reaches `eta_min`.
    """

    name: str = "constant"  # one of SCHEDULES
    warmup_steps: int = 0  # 0: no warmup
    warmup_start_factor: float = 0.0  # warmup starts at lr * this; 0 is allowed (see traps)
    decay_steps: int | None = None  # cosine: reaches eta_min here (absolute); None: --steps
    gamma: float = 0.1  # step, multistep: factor per decay; exponential: factor per update
    step_size: int = 1  # step: decay every step_size updates after warmup
    milestones: tuple[int, ...] = ()  # multistep: decay at these updates after warmup
    eta_min: float = 0.0  # cosine: the floor, held after decay_steps

    def __post_init__(self) -> None:
        _check_finite(self, ("warmup_start_factor", "gamma", "eta_min"))
        if self.name not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.name!r}; available: {', '.join(SCHEDULES)}")
        object.__setattr__(self, "milestones", tuple(int(m) for m in self.milestones))
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        if not 0.0 <= self.warmup_start_factor <= 1.0:
            raise ValueError(
                f"warmup_start_factor must lie in [0, 1], got {self.warmup_start_factor}"
            )
        if self.step_size < 1:
            raise ValueError(f"step_size must be >= 1, got {self.step_size}")
        if not self.gamma > 0:
            raise ValueError(f"gamma must be > 0, got {self.gamma}")
        if list(self.milestones) != sorted(set(self.milestones)) or any(
            m < 1 for m in self.milestones
        ):
            raise ValueError(f"milestones must be increasing and >= 1, got {self.milestones}")
        if self.name == "multistep" and not self.milestones:
            raise ValueError("the multistep schedule needs --milestones, e.g. --milestones 50,80")
        if self.eta_min < 0:
            raise ValueError(f"eta_min must be >= 0, got {self.eta_min}")
        if self.name == "cosine" and self.decay_steps is not None:
            if self.decay_steps <= self.warmup_steps:
                raise ValueError(
                    f"the cosine horizon --decay-steps ({self.decay_steps}, default --steps) "
                    f"must exceed --warmup-steps ({self.warmup_steps}): cosine decays between "
                    "the two"
                )

    @classmethod
    def create(cls, name: str, **given: Any) -> ScheduleSpec:
        """`name` with the given settings (None or absent: the default); refuses a setting that
        `name` does not use, e.g. milestones for cosine."""
        given = {k: v for k, v in given.items() if v is not None}
        _refuse_foreign("schedule", name, given, SCHEDULE_APPLIES_TO)
        if name == "step" and "step_size" not in given:  # torch's StepLR has no default either
            raise ValueError("the step schedule needs --step-size, e.g. --step-size 100")
        if "warmup_start_factor" in given and not given.get("warmup_steps"):
            raise ValueError("--warmup-start-factor needs --warmup-steps")
        return cls(name=name, **given)

    def resolved(self, steps: int) -> ScheduleSpec:
        """This spec with `decay_steps` fixed (default: the run's `steps`)."""
        return self if self.decay_steps is not None else replace(self, decay_steps=steps)


def check_supported(opt: OptimizerSpec, sched: ScheduleSpec) -> None:
    """Raise UnsupportedOption where torch and optax cannot compute the same thing."""
    if opt.name in UNSUPPORTED_OPTIMIZERS:
        raise UnsupportedOption(
            f"optimizer {opt.name!r} is not offered: {UNSUPPORTED_OPTIMIZERS[opt.name]}; "
            f"use one of {', '.join(OPTIMIZERS)}"
        )
    if opt.dampening:
        raise UnsupportedOption(
            "SGD dampening is not offered: optax.trace has no (1 - dampening) factor on the "
            "gradient, so the twins would differ; leave dampening at 0"
        )
    if opt.amsgrad:
        raise UnsupportedOption(
            "amsgrad is not offered: torch keeps the running max of the raw second moment and "
            "bias-corrects it afterwards, optax.amsgrad takes the max of the corrected one"
        )
    if sched.name == "cosine" and sched.eta_min > opt.lr:
        raise UnsupportedOption(
            f"--eta-min ({sched.eta_min}) is above --lr ({opt.lr}): cosine would climb instead "
            "of decay; lower --eta-min"
        )


def check_no_decay(opt: OptimizerSpec, names: Iterable[str]) -> None:
    """Refuse `no_decay` patterns that would silently do nothing."""
    if not opt.no_decay:
        return
    if not opt.weight_decay:
        raise ValueError("--no-decay has no effect without weight decay; set --weight-decay")
    names = list(names)
    for pattern in opt.no_decay:
        if not any(fnmatch.fnmatchcase(n, pattern) for n in names):
            raise ValueError(
                f"--no-decay pattern {pattern!r} matches no parameter; the names are "
                f"{', '.join(names)} (globs match whole names: use '*.bias', not 'bias')"
            )


def state_keys(opt: OptimizerSpec) -> tuple[str, ...]:
    """torch's per-parameter state keys of `opt` (besides `step`): what a checkpoint holds as
    `opt.<key>.<weight name>`."""
    if opt.name == "sgd":
        return ("momentum_buffer",) if opt.momentum else ()
    if opt.name in ("adam", "adamw"):
        return ("exp_avg", "exp_avg_sq")
    if opt.name == "rmsprop":
        return (
            ("square_avg",)
            + (("momentum_buffer",) if opt.momentum else ())
            + (("grad_avg",) if opt.centered else ())
        )
    return ("sum",)  # adagrad


# -- the NumPy reference ------------------------------------------------------------------


def learning_rate(opt: OptimizerSpec, sched: ScheduleSpec, t: int) -> float:
    """The learning rate of update `t` (0-based) in closed form: what both sides reproduce.

    `sched` must be resolved (`decay_steps` set). Adagrad's `lr_decay` is included: torch
    divides the scheduled lr by `1 + t * lr_decay`.
    """
    lr, w = opt.lr, sched.warmup_steps
    if t < w:
        s = sched.warmup_start_factor
        scheduled = lr * (s + (1.0 - s) * t / w)
    else:
        u = t - w  # the main schedule's own count
        if sched.name == "constant":
            scheduled = lr
        elif sched.name == "step":
            scheduled = lr * sched.gamma ** (u // sched.step_size)
        elif sched.name == "multistep":
            scheduled = lr * sched.gamma ** bisect.bisect_right(sched.milestones, u)
        elif sched.name == "exponential":
            scheduled = lr * sched.gamma**u
        else:  # cosine, flat at eta_min after the horizon
            horizon = sched.decay_steps - w
            u = min(u, horizon)
            scheduled = (
                sched.eta_min + (lr - sched.eta_min) * (1 + math.cos(math.pi * u / horizon)) / 2
            )
    return scheduled / (1.0 + t * opt.lr_decay)
