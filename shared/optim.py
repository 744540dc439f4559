"""Optimizer and learning-rate schedule specs: plain data that both sides turn into their own kind.

`OptimizerSpec` and `ScheduleSpec` give every hyperparameter PyTorch's meaning
(`torch.optim.SGD`, `Adam`, `AdamW`, `RMSprop`, `Adagrad`, `torch.nn.utils.clip_grad_norm_`,
`torch.optim.lr_scheduler`). `functional/optim.py` turns them into one optax
`GradientTransformation`; `oop/optim.py` into a `torch.optim` optimizer plus an LR scheduler.
`learning_rate` is the NumPy reference for the schedule that both sides must reproduce
(`shared/schedule.py`), and `check_optimizer_state` checks what a checkpoint keeps of an
optimizer.

Where one library cannot express the other's option exactly, `check_supported` says why and
both factories refuse it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from shared.errors import Refused

# The schedule's spec and its reference are re-exported: `optim.ScheduleSpec` beside the
# optimizer's, since a run reads the two together. They live in shared/schedule.py.
from shared.schedule import SCHEDULES as SCHEDULES
from shared.schedule import ScheduleSpec as ScheduleSpec
from shared.schedule import check_finite_fields, refuse_foreign
from shared.schedule import learning_rate as learning_rate
from shared.weights import CheckpointError, summarize, weight_problems

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")

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


class UnsupportedOption(Refused):
    """An option one library has and the other cannot reproduce exactly."""


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
        finite = ("lr", "momentum", "beta1", "beta2", "eps", "weight_decay", "alpha", "lr_decay",
                  "initial_accumulator", "clip_norm")  # fmt: skip
        check_finite_fields(self, finite)
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
        refuse_foreign("optimizer", name, given, APPLIES_TO)
        base = TORCH_DEFAULTS.get(name, {})
        return cls(name=name, **{**base, **given})

    def decays(self, canonical_name: str) -> bool:
        """Whether weight decay applies to this parameter (not matched by `no_decay`)."""
        return not any(fnmatch.fnmatchcase(canonical_name, p) for p in self.no_decay)


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


def check_optimizer_state(
    tensors: dict[str, np.ndarray],
    at: int,
    opt: OptimizerSpec,
    shapes: dict[str, tuple[int, ...]],
    dtype: str,
) -> None:
    """Raise one CheckpointError unless a checkpoint's `tensors`, written at update `at`, hold
    exactly the state `opt` keeps for parameters of these shapes: `opt.step` (an int64 scalar
    equal to `at`) and `opt.<key>.<name>` for each of torch's state keys."""
    problems = []
    step = tensors.get("opt.step")
    if step is None or step.shape != () or step.dtype != np.int64:
        problems.append("opt.step: expected an int64 scalar")
    elif int(step) != at:
        problems.append(f"opt.step is {int(step)}, but the checkpoint is at step {at}")
    expected = {f"opt.{k}.{n}": shape for k in state_keys(opt) for n, shape in shapes.items()}
    state = {k: v for k, v in tensors.items() if k.startswith("opt.") and k != "opt.step"}
    problems += weight_problems(state, expected, dtype, source="file")
    if problems:
        raise CheckpointError(
            f"the optimizer state does not match the {opt.name} optimizer "
            f"({summarize(problems)}): resume from a checkpoint this package wrote, or start "
            "anew with --init"
        )
