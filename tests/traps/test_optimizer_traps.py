"""Traps: optimizer formulas. optax's RMSprop, Adagrad and global-norm clipping share torch's
names but not its defaults or formulas, and optax's RMSprop puts the learning rate inside the
momentum buffer where torch applies it after.

The torch side is the reference; each naive port is the optax call a reader would write first.
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
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

from functional.optim import clip_by_global_norm_torch, make_optimizer
from shared.optim import OptimizerSpec, ScheduleSpec

RMS_LR, MOMENTUM, GAMMA = 1e-2, 0.9, 0.95  # torch's RMSprop lr; a decay that moves the lr
CLIP_LR, MAX_NORM = 0.1, 0.05  # gradient norms run 0.10-0.58 here: clipping on every step
ADAGRAD_LR, LR_DECAY = 1e-2, 0.05  # torch's Adagrad lr; lr_decay halves it by step 20


def package(name: str, sched: ScheduleSpec | None = None, **kw) -> optax.GradientTransformation:
    """The package's port of torch's `name` optimizer, in float64."""
    return make_optimizer(OptimizerSpec.create(name, **kw), sched or ScheduleSpec(), "float64")


@functools.cache  # shared by the naive and the fixed test in one worker
def torch_rmsprop():
    return run_oop(lambda named: torch.optim.RMSprop(params_of(named), lr=RMS_LR))


@functools.cache  # shared by the naive and the fixed test in one worker
def torch_rmsprop_momentum_exponential():
    return run_oop(
        lambda named: torch.optim.RMSprop(params_of(named), lr=RMS_LR, momentum=MOMENTUM),
        scheduler=lambda opt: torch.optim.lr_scheduler.ExponentialLR(opt, GAMMA),
    )


@functools.cache  # shared by the naive and the fixed test in one worker
def torch_sgd_clipped():
    return run_oop(
        lambda named: torch.optim.SGD(params_of(named), lr=CLIP_LR),
        clip_norm=MAX_NORM,  # torch.nn.utils.clip_grad_norm_ between backward and step
    )


@functools.cache  # shared by the naive and the fixed test in one worker
def torch_adagrad(lr_decay: float = 0.0):
    return run_oop(
        lambda named: torch.optim.Adagrad(params_of(named), lr=ADAGRAD_LR, lr_decay=lr_decay)
    )


def exponential_f64(count):  # torch's ExponentialLR, computed in float64 (not optax's float32)
    return RMS_LR * GAMMA ** count.astype(jnp.float64)


TRAPS = [
    Trap(
        name="rmsprop-defaults",
        title="optax.rmsprop defaults: decay 0.9 (torch 0.99), eps inside the sqrt",
        quantity="max |Δparam|",
        naive=lambda: max_gap(torch_rmsprop(), run_functional(optax.rmsprop(RMS_LR))),
        fixed=lambda: max_gap(torch_rmsprop(), run_functional(package("rmsprop", lr=RMS_LR))),
        naive_at_least=5e-2,  # measured 0.53 after 60 steps
    ),
    Trap(
        name="rmsprop-momentum-schedule",
        title="optax.rmsprop(momentum) puts the lr inside the momentum buffer",
        quantity="max |Δparam|",
        # naive: defaults fixed, but optax.rmsprop chains scale_by_rms -> lr -> trace
        naive=lambda: max_gap(
            torch_rmsprop_momentum_exponential(),
            run_functional(
                optax.rmsprop(
                    exponential_f64, decay=0.99, eps=1e-8, eps_in_sqrt=False, momentum=MOMENTUM
                )
            ),
        ),
        # fixed: scale_by_rms -> trace -> lr(t), the order torch computes
        fixed=lambda: max_gap(
            torch_rmsprop_momentum_exponential(),
            run_functional(
                package(
                    "rmsprop",
                    ScheduleSpec(name="exponential", gamma=GAMMA),
                    lr=RMS_LR,
                    momentum=MOMENTUM,
                )
            ),
        ),
        naive_at_least=0.1,  # measured 1.26 after 60 steps
    ),
    Trap(
        name="clip-grad-norm-eps",
        title="clip_grad_norm_ divides by norm + 1e-6, optax by the norm",
        quantity="max |Δparam|",
        naive=lambda: max_gap(
            torch_sgd_clipped(),
            run_functional(optax.chain(optax.clip_by_global_norm(MAX_NORM), optax.sgd(CLIP_LR))),
        ),
        fixed=lambda: max_gap(
            torch_sgd_clipped(),
            run_functional(optax.chain(clip_by_global_norm_torch(MAX_NORM), optax.sgd(CLIP_LR))),
        ),
        naive_at_least=2e-8,  # measured 2.4e-7 after 60 steps
    ),
    Trap(
        name="adagrad",
        title="optax.adagrad: sum starts at 0.1 (torch 0), eps inside the sqrt",
        quantity="max |Δparam|",
        naive=lambda: max_gap(torch_adagrad(), run_functional(optax.adagrad(ADAGRAD_LR))),
        fixed=lambda: max_gap(torch_adagrad(), run_functional(package("adagrad", lr=ADAGRAD_LR))),
        naive_at_least=1e-2,  # measured 0.15 after 60 steps
    ),
    Trap(
        name="adagrad-lr-decay",
        title="Adagrad's lr_decay has no optax argument: it is a schedule",
        quantity="max |Δparam|",
        # naive: accumulator and eps set as torch's, lr_decay dropped (optax.adagrad lacks it);
        # eps still sits inside optax's sqrt, which alone accounts for 3e-5 of the gap
        naive=lambda: max_gap(
            torch_adagrad(LR_DECAY),
            run_functional(optax.adagrad(ADAGRAD_LR, initial_accumulator_value=0.0, eps=1e-10)),
        ),
        fixed=lambda: max_gap(
            torch_adagrad(LR_DECAY),
            run_functional(package("adagrad", lr=ADAGRAD_LR, lr_decay=LR_DECAY)),
        ),
        naive_at_least=5e-3,  # measured 7.0e-2 after 60 steps
    ),
]


test_naive_port_diverges, test_fixed_port_matches = naive_and_fixed_tests(TRAPS)
