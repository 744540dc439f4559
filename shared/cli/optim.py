"""The optimizer and schedule flags of both training scripts, and the specs they build.

Every flag defaults to None, meaning "torch's default for the chosen optimizer or schedule",
so a resumed run can tell a flag the user gave from one left out.
"""

from __future__ import annotations

import argparse

from shared import optim

# spec fields with a flag of the same name; dampening and amsgrad have none (unsupported)
OPTIMIZER_FLAGS = [
    f for f in vars(optim.OptimizerSpec()) if f not in ("name", "dampening", "amsgrad")
]
SCHEDULE_FLAGS = [f for f in vars(optim.ScheduleSpec()) if f != "name"]


def _patterns(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 30,60,90, got {text!r}") from None


def add_optimizer_flags(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group(
        "optimizer (PyTorch's meaning of each hyperparameter; a flag left out takes torch's "
        "default for the chosen optimizer)"
    )
    g.add_argument(
        "--optimizer",
        default=None,
        metavar="{" + ",".join(optim.OPTIMIZERS) + "}",
        help="torch.optim.SGD, Adam, AdamW, RMSprop or Adagrad (default: adam)",
    )
    g.add_argument(
        "--lr",
        type=float,
        default=None,
        help="base learning rate (default: torch's, 1e-3 for sgd/adam/adamw, 1e-2 for "
        "rmsprop/adagrad)",
    )
    g.add_argument("--momentum", type=float, help="sgd, rmsprop: momentum (default: 0)")
    g.add_argument("--nesterov", action="store_true", default=None, help="sgd: Nesterov momentum")
    g.add_argument("--beta1", type=float, help="adam, adamw: first-moment decay (default: 0.9)")
    g.add_argument("--beta2", type=float, help="adam, adamw: second-moment decay (default: 0.999)")
    g.add_argument(
        "--eps",
        type=float,
        help="adam, adamw, rmsprop, adagrad: added outside the square root (default: torch's, "
        "1e-8, or 1e-10 for adagrad)",
    )
    g.add_argument(
        "--weight-decay",
        type=float,
        help="adamw: decoupled decay p *= 1 - lr*wd (default 1e-2); the others: L2 added to "
        "the gradient, as torch's weight_decay (default 0)",
    )
    g.add_argument(
        "--no-decay",
        type=_patterns,
        metavar="PATTERNS",
        help="comma-separated glob patterns over canonical names exempt from weight decay, "
        "e.g. '*.bias,*norm*'",
    )
    g.add_argument("--alpha", type=float, help="rmsprop: square-average decay (default: 0.99)")
    g.add_argument(
        "--centered", action="store_true", default=None, help="rmsprop: centered variant"
    )
    g.add_argument("--lr-decay", type=float, help="adagrad: lr / (1 + t * lr_decay) (default: 0)")
    g.add_argument(
        "--initial-accumulator",
        type=float,
        help="adagrad: starting sum of squared gradients (default: 0)",
    )
    g.add_argument(
        "--clip-norm",
        type=float,
        help="clip the gradients' global norm as torch.nn.utils.clip_grad_norm_ (default: off)",
    )
    g = parser.add_argument_group(
        "learning-rate schedule (torch.optim.lr_scheduler; it advances once per update)"
    )
    g.add_argument(
        "--schedule",
        default=None,
        metavar="{" + ",".join(optim.SCHEDULES) + "}",
        help="constant, StepLR, MultiStepLR, ExponentialLR or CosineAnnealingLR "
        "(default: constant)",
    )
    g.add_argument(
        "--warmup-steps",
        type=int,
        help="linear warmup over the first N updates, before the schedule (default: 0)",
    )
    g.add_argument(
        "--warmup-start-factor",
        type=float,
        help="warmup starts at lr times this, 0 allowed (default: 0)",
    )
    g.add_argument(
        "--decay-steps",
        type=int,
        help="cosine: the update at which lr reaches --eta-min, counted from 0 with warmup "
        "included; flat afterwards (default: --steps)",
    )
    g.add_argument(
        "--gamma",
        type=float,
        help="step, multistep: factor per decay; exponential: per update (default: 0.1)",
    )
    g.add_argument(
        "--step-size", type=int, help="step: decay every N updates after warmup (default: 1)"
    )
    g.add_argument(
        "--milestones",
        type=_ints,
        metavar="N,N,...",
        help="multistep: decay at these updates, counted after warmup",
    )
    g.add_argument("--eta-min", type=float, help="cosine: the floor (default: 0)")


def specs(args: argparse.Namespace) -> tuple[optim.OptimizerSpec, optim.ScheduleSpec]:
    """The specs the flags describe; raises ValueError (UnsupportedOption) on a bad combination."""
    opt = optim.OptimizerSpec.create(
        args.optimizer or "adam", **{k: getattr(args, k) for k in OPTIMIZER_FLAGS}
    )
    sched = optim.ScheduleSpec.create(
        args.schedule or "constant", **{k: getattr(args, k) for k in SCHEDULE_FLAGS}
    )
    optim.check_supported(opt, sched)
    return opt, sched
