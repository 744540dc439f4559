"""The one argparse definition both training scripts use, so their flags cannot drift apart.

python -m functional.train --help
python -m oop.train --help
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

from shared import checkpoint, data
from shared.config import (
    DEVICES,
    DTYPES,
    MODEL_CONFIGS,
    OPTIMIZERS,
    MLPConfig,
    TrainConfig,
    model_config_from_dict,
)

DRY_RUN_STEPS = 3
DEFAULT_WIDTH, DEFAULT_LAYERS = MLPConfig.width, MLPConfig.layers


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error: `prog: error: MESSAGE (see --help)`, no usage block."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows `(default: X)` after every flag that has a default and does not name it already."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default is None or "default" in text or action.default is argparse.SUPPRESS:
            return text
        if isinstance(action.default, bool):
            return text
        return f"{text} (default: %(default)s)".lstrip()


@dataclass(frozen=True)
class RunOptions:
    """Where a run starts from and where it writes; not part of the training config."""

    out: str
    init: str | None
    progress: bool
    overwrite: bool


def build_parser(side: str) -> argparse.ArgumentParser:
    other = "oop" if side == "functional" else "functional"
    paradigm = "JAX + equinox + optax" if side == "functional" else "PyTorch"
    defaults = TrainConfig()
    p = Parser(
        prog=f"python -m {side}.train",
        description=(
            f"Train a model with the {side} side ({paradigm}). The {other} twin "
            f"(python -m {other}.train) takes exactly the same flags; give it this run's "
            "init.safetensors with --init and the two runs start from the same weights. "
            "Compare two run folders with python -m shared.compare A B."
        ),
        formatter_class=HelpFormatter,
    )
    g = p.add_argument_group("what to train")
    g.add_argument(
        "--model", default=defaults.model, choices=sorted(MODEL_CONFIGS), help="architecture"
    )
    g.add_argument(
        "--dataset",
        default=defaults.dataset,
        choices=sorted(data.DATASETS),
        help="digits: 8x8 images from scikit-learn; moons, spirals: generated 2-D points",
    )
    g.add_argument("--steps", type=int, default=defaults.steps, help="optimizer updates")
    g.add_argument(
        "--batch-size",
        type=int,
        default=defaults.batch_size,
        help="examples per update; each epoch drops its last partial batch",
    )
    g.add_argument(
        "--layers",
        type=int,
        default=None,
        help=f"hidden layers (default: from --init, else {DEFAULT_LAYERS})",
    )
    g.add_argument(
        "--width",
        type=int,
        default=None,
        help=f"units per hidden layer (default: from --init, else {DEFAULT_WIDTH})",
    )
    g = p.add_argument_group("optimizer (PyTorch's meaning of each hyperparameter)")
    g.add_argument("--optimizer", default=defaults.optimizer, choices=OPTIMIZERS, help="algorithm")
    g.add_argument("--lr", type=float, default=defaults.lr, help="learning rate")
    g.add_argument("--momentum", type=float, default=defaults.momentum, help="SGD momentum")
    g.add_argument("--nesterov", action="store_true", help="SGD Nesterov momentum")
    g.add_argument("--beta1", type=float, default=defaults.beta1, help="Adam beta1")
    g.add_argument("--beta2", type=float, default=defaults.beta2, help="Adam beta2")
    g.add_argument("--eps", type=float, default=defaults.eps, help="Adam eps (outside the sqrt)")
    g.add_argument(
        "--weight-decay",
        type=float,
        default=defaults.weight_decay,
        help="L2 penalty added to the gradient, as torch's weight_decay",
    )
    g = p.add_argument_group("numerics and reproducibility")
    g.add_argument("--seed", type=int, default=defaults.seed, help="init weights and batch order")
    g.add_argument(
        "--dtype",
        default=None,
        choices=DTYPES,
        help=f"weights, data and optimizer state (default: from --init, else {defaults.dtype}); "
        "float16 and bfloat16 are not offered: the point here is agreement to rounding",
    )
    g.add_argument("--device", default=defaults.device, choices=DEVICES, help="where to train")
    g = p.add_argument_group("files")
    g.add_argument("--init", default=None, metavar="PATH", help="start from a canonical checkpoint")
    g.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help=f"run folder (default: runs/MODEL-DATASET-{side})",
    )
    g.add_argument(
        "--eval-every",
        type=int,
        default=defaults.eval_every,
        help="evaluate on the test split every N updates (0: only at the end)",
    )
    g.add_argument(
        "--save-every",
        type=int,
        default=defaults.save_every,
        help="write step-N.safetensors every N updates (0: only init and final)",
    )
    g.add_argument(
        "--dry-run",
        action="store_true",
        help=f"run {DRY_RUN_STEPS} updates and one evaluation to check that everything works",
    )
    g.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    g.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run already in --out (its checkpoints, metrics and config)",
    )
    return p


def parse(side: str, argv: list[str] | None = None) -> tuple[TrainConfig, object, RunOptions]:
    """Flags -> (TrainConfig, model config, RunOptions). Bad values exit with a one-line error."""
    parser = build_parser(side)
    args = parser.parse_args(argv)
    try:
        init = checkpoint.read(args.init) if args.init is not None else None
        if args.dtype is None:
            args.dtype = init.train_config.get("dtype", "float32") if init else "float32"
        train = TrainConfig(
            model=args.model,
            dataset=args.dataset,
            steps=min(args.steps, DRY_RUN_STEPS) if args.dry_run else args.steps,
            batch_size=args.batch_size,
            optimizer=args.optimizer,
            lr=args.lr,
            momentum=args.momentum,
            nesterov=args.nesterov,
            beta1=args.beta1,
            beta2=args.beta2,
            eps=args.eps,
            weight_decay=args.weight_decay,
            seed=args.seed,
            dtype=args.dtype,
            device=args.device,
            eval_every=args.eval_every,
            save_every=args.save_every,
        )
        ds = data.load(train.dataset)
        data.steps_per_epoch(len(ds.x_train), train.batch_size)  # refuses a batch too large
        sizes = {"width": args.width, "layers": args.layers}
        if init is not None:
            sizes = {k: init.model_config.get(k) if v is None else v for k, v in sizes.items()}
        model = MODEL_CONFIGS[train.model](
            in_features=ds.in_features,
            out_features=ds.num_classes,
            width=DEFAULT_WIDTH if sizes["width"] is None else sizes["width"],
            layers=DEFAULT_LAYERS if sizes["layers"] is None else sizes["layers"],
        )
    except ValueError as e:  # CheckpointError is a ValueError
        parser.error(str(e))
    out = args.out or os.path.join("runs", f"{train.model}-{train.dataset}-{side}")
    return (
        train,
        model,
        RunOptions(out, args.init, not args.no_progress, args.overwrite),
    )


@dataclass(frozen=True)
class EvalRequest:
    """What `python -m SIDE.evaluate` evaluates: a checkpoint's model on a data set's test split."""

    ckpt: checkpoint.Checkpoint
    model_config: object
    dataset: data.Dataset
    dtype: str  # the dtype the checkpoint's weights are stored in


def parse_eval(side: str, argv: list[str] | None = None) -> EvalRequest:
    p = Parser(
        prog=f"python -m {side}.evaluate",
        description=(
            f"Evaluate a canonical checkpoint, written by either side, with the {side} side's "
            "model on a data set's test split."
        ),
    )
    p.add_argument("--checkpoint", required=True, metavar="FILE", help="a .safetensors checkpoint")
    p.add_argument(
        "--dataset",
        default=None,
        choices=sorted(data.DATASETS),
        help="default: the data set the checkpoint was trained on",
    )
    args = p.parse_args(argv)
    try:
        ckpt = checkpoint.read(args.checkpoint)
        model_config = model_config_from_dict(ckpt.model, ckpt.model_config)
        if args.dataset is None and "dataset" not in ckpt.train_config:
            raise ValueError(f"{args.checkpoint} does not say its data set; pass --dataset")
        ds = data.load(args.dataset or ckpt.train_config["dataset"])
        trained_on = ckpt.train_config.get("dataset")
        if (ds.in_features, ds.num_classes) != (
            model_config.in_features,
            model_config.out_features,
        ):
            raise ValueError(
                f"dataset {ds.name!r} has {ds.in_features} features and {ds.num_classes} "
                f"classes; the checkpoint's model takes {model_config.in_features} and predicts "
                f"{model_config.out_features}: pass --dataset {trained_on}"
            )
        dtypes = {v.dtype.name for v in ckpt.weights.values()}
        if len(dtypes) != 1:
            raise ValueError(f"{args.checkpoint}: weights of mixed dtypes {sorted(dtypes)}")
    except (TypeError, ValueError) as e:  # CheckpointError is a ValueError
        p.error(str(e))
    return EvalRequest(ckpt, model_config, ds, dtypes.pop())


def print_eval(side: str, req: EvalRequest, loss: float, accuracy: float) -> None:
    print(
        f"{side}: {req.ckpt.model} written by {req.ckpt.side} at step {req.ckpt.step}, "
        f"{req.dataset.name} test split ({len(req.dataset.y_test)} examples): "
        f"loss {loss:.6f}, accuracy {accuracy:.4f}"
    )


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
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="sgd", help="algorithm")
    p.add_argument("--lr", type=float, default=None, help="default: 0.01 for SGD, 0.001 for Adam")
    args = p.parse_args(argv)
    ds = data.load("digits")
    defaults = TrainConfig()
    steps = args.epochs * data.steps_per_epoch(len(ds.x_train), defaults.batch_size)
    lr = args.lr if args.lr is not None else (0.01 if args.optimizer == "sgd" else 0.001)
    cfg = TrainConfig(optimizer=args.optimizer, lr=lr, steps=steps)
    return ds, cfg, MLPConfig(in_features=ds.in_features, out_features=ds.num_classes)


def print_ladder(level: str, cfg: TrainConfig, loss: float, accuracy: float) -> None:
    print(f"{level}: {cfg.steps} updates, train loss {loss:.4f}, test accuracy {accuracy:.4f}")
