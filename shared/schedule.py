"""Learning-rate schedule specs, as torch's `lr_scheduler` defines them, and `learning_rate`,
the NumPy reference in closed form that both sides must reproduce update by update.

`shared.optim` re-exports `ScheduleSpec` and `learning_rate` beside the optimizer specs; the
helpers that refuse a setting a spec does not use, and a non-finite value, live here because
both kinds of spec use them.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, replace
from typing import Any

SCHEDULES = ("constant", "step", "multistep", "exponential", "cosine")

# schedule setting -> the schedules it belongs to (warmup combines with all of them)
SCHEDULE_APPLIES_TO: dict[str, tuple[str, ...]] = {
    "decay_steps": ("cosine",),
    "gamma": ("step", "multistep", "exponential"),
    "step_size": ("step",),
    "milestones": ("multistep",),
    "eta_min": ("cosine",),
}


def refuse_foreign(kind: str, name: str, given: dict[str, Any], owners_of) -> None:
    for key in given:
        owners = owners_of.get(key)
        if owners and name not in owners:  # also a value equal to the default: --momentum 0
            flag = "--" + key.replace("_", "-")
            raise ValueError(
                f"{flag} does not apply to the {name} {kind}; it belongs to {', '.join(owners)}"
            )


def check_finite_fields(spec: Any, names: tuple[str, ...]) -> None:
    """NaN passes every `<` check and infinity most: refuse both by name first."""
    for name in names:
        value = getattr(spec, name)
        if value is not None and not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value}")


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
        check_finite_fields(self, ("warmup_start_factor", "gamma", "eta_min"))
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
        refuse_foreign("schedule", name, given, SCHEDULE_APPLIES_TO)
        if name == "step" and "step_size" not in given:  # torch's StepLR has no default either
            raise ValueError("the step schedule needs --step-size, e.g. --step-size 100")
        if "warmup_start_factor" in given and not given.get("warmup_steps"):
            raise ValueError("--warmup-start-factor needs --warmup-steps")
        return cls(name=name, **given)

    def resolved(self, steps: int) -> ScheduleSpec:
        """This spec with `decay_steps` fixed (default: the run's `steps`)."""
        return self if self.decay_steps is not None else replace(self, decay_steps=steps)


# -- the NumPy reference ------------------------------------------------------------------


def learning_rate(opt, sched: ScheduleSpec, t: int) -> float:
    """The learning rate of update `t` (0-based) in closed form: what both sides reproduce.

    `opt` is the run's `shared.optim.OptimizerSpec` (its `lr` and `lr_decay` are read);
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
