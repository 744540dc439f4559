"""Flags of the level-0 and level-1 MLP scripts, the ladder's lower rungs.

python -m shared.level0.mlp --help
python -m functional.level1.mlp --help
python -m oop.level1.mlp --help
"""

from __future__ import annotations

import numpy as np

from shared import checkpoint, data, optim
from shared.cli.base import HelpFormatter, Parser
from shared.config import MLPConfig, TrainConfig

Weights = dict[str, np.ndarray]


def parse_ladder(module: str, level: str, argv: list[str] | None = None):
    """Flags of the level-0 and level-1 scripts -> `(digits, TrainConfig, MLPConfig, weights)`;
    `weights` is None, or the canonical weights of `--init` (the sizes come from the file)."""
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
    p.add_argument(
        "--init", metavar="FILE",
        help="start from this checkpoint's weights, an MLP on the digits (a training script's "
        "init.safetensors), so that two levels trained from one start can be compared; the "
        "width and depth come from the file",
    )  # fmt: skip
    args = p.parse_args(argv)
    ds = data.load("digits")
    config, weights = MLPConfig(in_features=ds.in_features, out_features=ds.num_classes), None
    if args.init is not None:
        try:
            config, weights = ladder_init(args.init, config)
        except checkpoint.CheckpointError as e:
            p.error(str(e))
    defaults = TrainConfig()
    steps = args.epochs * data.steps_per_epoch(len(ds.x_train), defaults.batch_size)
    lr = args.lr if args.lr is not None else (0.01 if args.optimizer == "sgd" else 0.001)
    # SGD keeps momentum 0.9, as the ladder tests do; Adam takes torch's defaults
    extra = {"momentum": 0.9} if args.optimizer == "sgd" else {}
    opt = optim.OptimizerSpec.create(args.optimizer, lr=lr, **extra)
    cfg = TrainConfig(optimizer=opt, steps=steps)
    return ds, cfg, config, weights


def ladder_init(path: str, digits: MLPConfig) -> tuple[MLPConfig, Weights]:
    """The MLP config and canonical weights of a checkpoint, refused unless it holds an MLP
    for the digits (64 inputs, 10 classes)."""
    ckpt = checkpoint.read(path)
    if ckpt.model != "mlp":
        raise checkpoint.CheckpointError(
            f"{path} holds a {ckpt.model!r} model; the ladder trains the MLP: pass an mlp "
            "checkpoint of the digits (python -m functional.train --dry-run writes one)"
        )
    config = checkpoint.model_config(ckpt, path)
    if (config.in_features, config.out_features) != (digits.in_features, digits.out_features):
        raise checkpoint.CheckpointError(
            f"{path} holds an MLP for {config.in_features} inputs and {config.out_features} "
            f"classes; the ladder trains on the digits ({digits.in_features} and "
            f"{digits.out_features}): pass a checkpoint trained with --dataset digits"
        )
    checkpoint.check_fits(ckpt, path, model="mlp", expected=config.weight_shapes())
    return config, ckpt.weights


def print_ladder(level: str, cfg: TrainConfig, loss: float, accuracy: float) -> None:
    print(f"{level}: {cfg.steps} updates, train loss {loss:.4f}, test accuracy {accuracy:.4f}")
