"""Traps: weight decay. `torch.optim.Adam(weight_decay=...)` is coupled L2, not AdamW; and
AdamW's default decay is 1e-2 in torch but 1e-4 in optax.

The torch side is the reference; each naive port is the optax call a reader would write first.
"""

from __future__ import annotations

import functools

import optax
import torch
from harness import (
    Trap,
    max_gap,
    naive_and_fixed_tests,
    params_of,
    run_functional,
    run_oop,
)

from functional.optim import make_optimizer
from shared.optim import OptimizerSpec, ScheduleSpec

LR, WD = 1e-2, 1e-1  # a visible decay, so the gap is far above rounding


@functools.cache  # shared by the naive and the fixed test in one worker
def torch_adam_l2():
    return run_oop(lambda named: torch.optim.Adam(params_of(named), lr=LR, weight_decay=WD))


@functools.cache  # shared by the naive and the fixed test in one worker
def torch_adamw_default():
    return run_oop(lambda named: torch.optim.AdamW(params_of(named), lr=LR))  # wd = 1e-2


TRAPS = [
    Trap(
        name="adam-weight-decay",
        title="Adam(weight_decay) is coupled L2, not AdamW",
        quantity="max |Δparam|",
        # naive: torch's Adam(weight_decay) read as decoupled decay -> optax.adamw
        naive=lambda: max_gap(
            torch_adam_l2(), run_functional(optax.adamw(LR, weight_decay=WD, eps=1e-8))
        ),
        # fixed: add wd * p to the gradient before Adam, as torch does
        fixed=lambda: max_gap(
            torch_adam_l2(),
            run_functional(
                make_optimizer(
                    OptimizerSpec.create("adam", lr=LR, weight_decay=WD), ScheduleSpec(), "float64"
                )
            ),
        ),
        naive_at_least=0.1,  # measured 0.99 after 60 steps
    ),
    Trap(
        name="adamw-default-decay",
        title="AdamW's default weight decay: torch 1e-2, optax 1e-4",
        quantity="max |Δparam|",
        naive=lambda: max_gap(torch_adamw_default(), run_functional(optax.adamw(LR))),
        fixed=lambda: max_gap(
            torch_adamw_default(),
            run_functional(
                make_optimizer(OptimizerSpec.create("adamw", lr=LR), ScheduleSpec(), "float64")
            ),
        ),
        naive_at_least=1e-3,  # measured 1.5e-2 after 60 steps
    ),
]


test_naive_port_diverges, test_fixed_port_matches = naive_and_fixed_tests(TRAPS)
