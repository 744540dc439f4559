"""Flags of the level-0 and level-1 MLP scripts, the ladder's lower rungs.

python -m shared.level0.mlp --help
python -m functional.level1.mlp --help
python -m oop.level1.mlp --help
"""

from __future__ import annotations

from shared import data, optim
from shared.cli.base import HelpFormatter, Parser
from shared.config import MLPConfig, TrainConfig


def parse_ladder(module: str, level: str, argv: list[str] | None = None):
    """Flags of the level-0 and level-1 scripts -> `(digits, TrainConfig, MLPConfig)`."""
    p = Parser(
        prog=f"python -m {module}",
        description=f"Train the {level} MLP on the digits and print its test accuracy. Each "
        "level draws its initial weights with its own library's generator, so the scripts' "
        "results differ a little; the tests copy the same weights into every level instead.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--epochs", type=int, default=30, help="passes over the training split")
    p.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd", help="algorithm")
    p.add_argument("--lr", type=float, default=None, help="default: 0.01 for SGD, 0.001 for Adam")
    args = p.parse_args(argv)
    ds = data.load("digits")
    defaults = TrainConfig()
    steps = args.epochs * data.steps_per_epoch(len(ds.x_train), defaults.batch_size)
    lr = args.lr if args.lr is not None else (0.01 if args.optimizer == "sgd" else 0.001)
    # SGD keeps momentum 0.9, as the ladder tests do; Adam takes torch's defaults
    extra = {"momentum": 0.9} if args.optimizer == "sgd" else {}
    opt = optim.OptimizerSpec.create(args.optimizer, lr=lr, **extra)
    cfg = TrainConfig(optimizer=opt, steps=steps)
    return ds, cfg, MLPConfig(in_features=ds.in_features, out_features=ds.num_classes)


def print_ladder(level: str, cfg: TrainConfig, loss: float, accuracy: float) -> None:
    print(f"{level}: {cfg.steps} updates, train loss {loss:.4f}, test accuracy {accuracy:.4f}")
