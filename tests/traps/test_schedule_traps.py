"""Traps: learning-rate schedules. torch's `CosineAnnealingLR` climbs back up past `T_max`;
`LinearLR` refuses a warmup from 0; torch counts updates from 0; and optax's built-in schedules
compute in float32 from their int32 count, even under x64.

The reference is the schedule as `shared.optim.learning_rate` defines it (torch's meaning). Most
traps compare the learning rate itself: torch's is read from `param_groups[0]["lr"]` before each
`optimizer.step()`, optax's is the one an SGD chain actually applies (minus the update for a unit
gradient), so the schedule sees the count that optax's state holds.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from harness import (
    STEPS,
    Trap,
    max_gap,
    naive_and_fixed_tests,
    run_functional,
    run_oop,
)
from torch.optim import lr_scheduler

from functional.optim import make_optimizer, make_schedule
from oop.optim import make_optimizer as torch_optimizer
from oop.optim import make_scheduler
from shared.optim import OptimizerSpec, ScheduleSpec

LR, T_MAX, WARMUP, GAMMA, ETA_MIN = 0.1, 30, 10, 0.97, 0.01
SGD = OptimizerSpec.create("sgd", lr=LR)


def torch_lrs(scheduler, steps: int = STEPS) -> np.ndarray:
    """The lr of each update under `scheduler(optimizer)`, stepped after each update."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))], lr=LR)
    sched, out = scheduler(optimizer), []
    for _ in range(steps):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()  # no gradient: only advances the step count the scheduler checks
        sched.step()
    return np.array(out)


def applied_lrs(tx: optax.GradientTransformation, steps: int = STEPS) -> np.ndarray:
    """The lr an SGD-like optax chain applies at each update: -update for a unit gradient."""
    with jax.enable_x64(True):
        params = grads = jnp.ones(1, jnp.float64)
        state, update, out = tx.init(params), jax.jit(tx.update), []
        for _ in range(steps):
            updates, state = update(grads, state, params)
            out.append(-float(updates[0]))
    return np.array(out)


def package_lrs(sched: ScheduleSpec) -> tuple[np.ndarray, np.ndarray]:
    """torch's `make_scheduler` and optax's `make_optimizer` (float64) on the same spec."""
    torch_side = torch_lrs(lambda o: make_scheduler(SGD, sched, o, STEPS))
    return torch_side, applied_lrs(make_optimizer(SGD, sched, "float64"))


def schedule_at(sched: ScheduleSpec, counts) -> np.ndarray:
    """The package's float64 schedule evaluated at the given counts."""
    with jax.enable_x64(True):
        schedule = make_schedule(SGD, sched, jnp.float64)
        return np.array([float(schedule(t)) for t in counts])


def lr_gap(a: np.ndarray, b: np.ndarray, steps: int = STEPS) -> np.ndarray:
    return np.abs(a[:steps] - b[:steps])


def warmup_lambda(optimizer):  # linear warmup from 0 as torch can express it
    return lr_scheduler.LambdaLR(optimizer, lambda t: min(t / WARMUP, 1.0))


# -- float32 schedules: whole trajectories, torch float64 ExponentialLR as the reference --
EXPONENTIAL = ScheduleSpec.create("exponential", gamma=GAMMA)


@functools.cache
def torch_exponential():
    return run_oop(
        lambda named: torch_optimizer(SGD, named),
        scheduler=lambda o: make_scheduler(SGD, EXPONENTIAL, o, STEPS),
    )


TRAPS = [
    Trap(
        name="cosine-past-tmax",
        title="CosineAnnealingLR climbs back up after T_max",
        quantity="|Δlr|",
        # naive: the bare torch scheduler over 2 * T_max updates vs optax's cosine
        naive=lambda: lr_gap(
            torch_lrs(lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=T_MAX)),
            applied_lrs(optax.sgd(optax.cosine_decay_schedule(LR, decay_steps=T_MAX))),
        ),
        # fixed: make_scheduler hands over to ConstantLR(eta_min) at the horizon
        fixed=lambda: lr_gap(*package_lrs(ScheduleSpec.create("cosine", decay_steps=T_MAX))),
        naive_at_least=1e-2,  # measured 9.97e-2: nearly back at lr by t = 2 * T_max - 1
    ),
    Trap(
        name="linear-warmup-from-zero",
        title="LinearLR cannot warm up from 0; 1/warmup is not 0",
        quantity="|Δlr|",
        # naive: LinearLR(start_factor=1/warmup) for optax.linear_schedule(0, lr, warmup); the
        # optax side is the package's float64 copy of that curve, so that only the torch side
        # differs (optax's own is float32: see float32-schedule-under-x64)
        naive=lambda: lr_gap(
            torch_lrs(
                lambda o: lr_scheduler.LinearLR(o, start_factor=1 / WARMUP, total_iters=WARMUP)
            ),
            schedule_at(ScheduleSpec(warmup_steps=WARMUP), range(STEPS)),
        ),
        # fixed: make_scheduler uses LambdaLR(t / warmup) when the start factor is 0
        fixed=lambda: lr_gap(*package_lrs(ScheduleSpec(warmup_steps=WARMUP))),
        naive_at_least=1e-3,  # measured 1.0e-2 = lr / warmup at t = 0
    ),
    Trap(
        name="warmup-off-by-one",
        title="torch schedulers count updates from 0, not 1",
        quantity="|Δlr|",
        # naive: a hand-written loop `for step in range(1, T + 1): lr = schedule(step)`
        naive=lambda: lr_gap(
            torch_lrs(warmup_lambda),
            schedule_at(ScheduleSpec(warmup_steps=WARMUP), range(1, STEPS + 1)),
        ),
        # fixed: optax's count starts at 0 and scale_by_learning_rate reads it before incrementing
        fixed=lambda: lr_gap(
            torch_lrs(warmup_lambda),
            applied_lrs(make_optimizer(SGD, ScheduleSpec(warmup_steps=WARMUP), "float64")),
        ),
        naive_at_least=1e-3,  # measured 1.0e-2 = lr / warmup on every warmup update
    ),
    Trap(
        name="cosine-floor-relative",
        title="optax's cosine floor alpha is relative; torch's eta_min absolute",
        quantity="|Δlr|",
        # naive: eta_min passed as optax's alpha, which is a fraction of the initial lr
        naive=lambda: lr_gap(
            torch_lrs(lambda o: lr_scheduler.CosineAnnealingLR(o, T_MAX, eta_min=ETA_MIN)),
            applied_lrs(optax.sgd(optax.cosine_decay_schedule(LR, T_MAX, alpha=ETA_MIN))),
            steps=T_MAX,
        ),
        # fixed: alpha = eta_min / lr (the package's make_schedule takes eta_min itself)
        fixed=lambda: lr_gap(
            torch_lrs(lambda o: lr_scheduler.CosineAnnealingLR(o, T_MAX, eta_min=ETA_MIN)),
            applied_lrs(optax.sgd(optax.cosine_decay_schedule(LR, T_MAX, alpha=ETA_MIN / LR))),
            steps=T_MAX,
        ),
        naive_at_least=1e-3,  # measured 9.0e-3 by update 29: floor lr * alpha = 1e-3, not 1e-2
    ),
    Trap(
        name="float32-schedule-under-x64",
        title="optax schedules compute in float32, even under x64",
        quantity="max |Δparam|",
        naive=lambda: max_gap(
            torch_exponential(),
            run_functional(optax.sgd(optax.exponential_decay(LR, 1, GAMMA))),
        ),
        # fixed: make_schedule casts the count to the parameters' dtype first
        fixed=lambda: max_gap(
            torch_exponential(), run_functional(make_optimizer(SGD, EXPONENTIAL, "float64"))
        ),
        naive_at_least=1e-8,  # measured 1.1e-7 after 60 steps (lr itself: 3.9e-8 over 100)
    ),
]


def test_linear_lr_refuses_start_factor_zero():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=LR)
    with pytest.raises(ValueError):
        lr_scheduler.LinearLR(optimizer, start_factor=0.0, total_iters=WARMUP)


def test_optax_schedule_is_float32_from_its_int32_count():
    with jax.enable_x64(True):
        schedule = optax.exponential_decay(LR, 1, GAMMA)
        assert optax.scale_by_schedule(schedule).init(jnp.ones(1)).count.dtype == jnp.int32
        assert schedule(jnp.asarray(5, jnp.int32)).dtype == jnp.float32  # what optax passes
        assert schedule(jnp.asarray(5)).dtype == jnp.float64  # int64 here: hides the trap


test_naive_port_diverges, test_fixed_port_matches = naive_and_fixed_tests(TRAPS)
