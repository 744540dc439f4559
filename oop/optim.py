"""`OptimizerSpec` + `ScheduleSpec` -> a `torch.optim` optimizer and an LR scheduler.

torch optimizers are objects: they hold references to the parameters and keep per-parameter
state (`momentum_buffer`, `exp_avg`, ...) inside, and `step()` changes the weights in place. The
scheduler is a second object that rewrites `param_groups[i]["lr"]` each time `step()` is called
on it, once per optimizer update. Gradient clipping is not part of either: the training step
calls `torch.nn.utils.clip_grad_norm_` between `backward()` and `optimizer.step()`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import torch
from torch.optim import lr_scheduler

from shared.optim import OptimizerSpec, ScheduleSpec, check_supported

Named = Iterable[tuple[str, torch.nn.Parameter]]


# -- optimizer --
def param_groups(opt: OptimizerSpec, named_params: Named) -> list[dict]:
    """One group, or two when `no_decay` exempts some parameters from weight decay."""
    named_params = list(named_params)
    decay = [p for n, p in named_params if opt.decays(n)]
    exempt = [p for n, p in named_params if not opt.decays(n)]
    groups = [{"params": decay}] if decay else []
    return groups + ([{"params": exempt, "weight_decay": 0.0}] if exempt else [])


def make_optimizer(opt: OptimizerSpec, named_params: Named) -> torch.optim.Optimizer:
    """The torch twin of `functional.optim.make_optimizer` (without the schedule)."""
    check_supported(opt, ScheduleSpec())
    groups = param_groups(opt, named_params)
    wd = opt.weight_decay
    if opt.name == "sgd":
        return torch.optim.SGD(
            groups, lr=opt.lr, momentum=opt.momentum, nesterov=opt.nesterov, weight_decay=wd
        )
    if opt.name in ("adam", "adamw"):
        cls = torch.optim.Adam if opt.name == "adam" else torch.optim.AdamW
        return cls(groups, lr=opt.lr, betas=(opt.beta1, opt.beta2), eps=opt.eps, weight_decay=wd)
    if opt.name == "rmsprop":
        return torch.optim.RMSprop(
            groups,
            lr=opt.lr,
            alpha=opt.alpha,
            eps=opt.eps,
            weight_decay=wd,
            momentum=opt.momentum,
            centered=opt.centered,
        )
    if opt.name == "adagrad":
        return torch.optim.Adagrad(
            groups,
            lr=opt.lr,
            lr_decay=opt.lr_decay,
            weight_decay=wd,
            initial_accumulator_value=opt.initial_accumulator,
            eps=opt.eps,
        )
    raise ValueError(f"unknown optimizer {opt.name!r}")  # OptimizerSpec refuses it first


# -- schedule --
def make_scheduler(
    opt: OptimizerSpec,
    sched: ScheduleSpec,
    optimizer: torch.optim.Optimizer,
    steps: int,
    *,
    start_step: int = 0,
) -> lr_scheduler.LRScheduler:
    """torch's schedulers for `sched`, chained with `SequentialLR` where needed, and advanced
    `start_step` times when a run resumes (the same arithmetic as an uninterrupted run).

    - warmup: `LinearLR(start_factor)`, or `LambdaLR(t / warmup)` from 0, which LinearLR
      refuses;
    - cosine past `decay_steps`: `CosineAnnealingLR` would climb back up, so a `ConstantLR`
      at `eta_min` takes over at the horizon.
    """
    check_supported(opt, sched)
    w = sched.warmup_steps
    stages: list[lr_scheduler.LRScheduler] = []
    milestones: list[int] = []
    if w:
        s = sched.warmup_start_factor
        if s > 0:
            stages.append(lr_scheduler.LinearLR(optimizer, start_factor=s, total_iters=w))
        else:
            stages.append(lr_scheduler.LambdaLR(optimizer, lambda t: min(t / w, 1.0)))
        milestones.append(w)
    if sched.name == "constant":
        stages.append(lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0))
    elif sched.name == "step":
        stages.append(lr_scheduler.StepLR(optimizer, sched.step_size, gamma=sched.gamma))
    elif sched.name == "multistep":
        stages.append(lr_scheduler.MultiStepLR(optimizer, list(sched.milestones), sched.gamma))
    elif sched.name == "exponential":
        stages.append(lr_scheduler.ExponentialLR(optimizer, gamma=sched.gamma))
    else:
        t_max = sched.decay_steps - w
        stages.append(lr_scheduler.CosineAnnealingLR(optimizer, t_max, eta_min=sched.eta_min))
        if sched.decay_steps < steps:  # hold eta_min instead of climbing back up
            floor = sched.eta_min / opt.lr
            stages.append(lr_scheduler.ConstantLR(optimizer, factor=floor, total_iters=steps + 1))
            milestones.append(sched.decay_steps)
    if len(stages) == 1:
        scheduler = stages[0]
    else:
        scheduler = lr_scheduler.SequentialLR(optimizer, stages, milestones)
    with warnings.catch_warnings():  # fast-forwarding steps the scheduler before the optimizer
        warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler.step\(\)`")
        for _ in range(start_step):
            scheduler.step()
    return scheduler
