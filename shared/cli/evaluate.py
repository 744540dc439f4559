"""Flags of the evaluation scripts, which score a checkpoint from either side.

python -m functional.evaluate --help
python -m oop.evaluate --help
"""

from __future__ import annotations

from dataclasses import dataclass

from shared import checkpoint, data, sides
from shared.cli.base import Parser


@dataclass(frozen=True)
class EvalRequest:
    """What `python -m SIDE.evaluate` evaluates: a checkpoint's model on a data set's test split."""

    ckpt: checkpoint.Checkpoint
    model_config: object
    dataset: data.Dataset
    dtype: str  # the float dtype the checkpoint's weights are stored in (counts are int64)
    path: str = ""  # the checkpoint's file, for errors


def parse_eval(side: str, argv: list[str] | None = None) -> EvalRequest:
    p = Parser(
        prog=f"python -m {sides.side(side).package}.evaluate",
        description=(
            f"Evaluate a canonical checkpoint, written by either side, with the {side} side's "
            "model on a data set's test split."
        ),
    )
    p.add_argument("--checkpoint", required=True, metavar="FILE", help="a .safetensors checkpoint")
    me = sides.side(side)
    if me.backends:
        p.add_argument("--backend", choices=me.backends, default=me.backends[0],
                       help=f"the framework Keras runs on (default: {me.backends[0]})")  # fmt: skip
    p.add_argument(
        "--dataset",
        default=None,
        choices=data.NAMES,
        help="default: the data set the checkpoint was trained on",
    )
    args = p.parse_args(argv)
    try:
        ckpt = checkpoint.read(args.checkpoint)
        model_config = checkpoint.model_config(ckpt, args.checkpoint)
        sides.side(side).refuse_unless_has(ckpt.model)
        if args.dataset is None and "dataset" not in ckpt.train_config:
            raise ValueError(f"{args.checkpoint} does not say its data set; pass --dataset")
        name = args.dataset or ckpt.train_config["dataset"]
        same = name == ckpt.train_config.get("dataset")  # a sequence length of that data set
        ds = data.load(name, ckpt.train_config.get("seq_len") if same else None)
        trained_on = ckpt.train_config.get("dataset")
        takes = (model_config.input_features, model_config.out_features)
        if (ds.in_features, ds.num_classes) != takes:
            raise ValueError(
                f"dataset {ds.name!r} has {ds.in_features} features and {ds.num_classes} "
                f"classes; the checkpoint's model takes {takes[0]} and predicts {takes[1]}: "
                f"pass --dataset {trained_on}"
            )
        vocab = getattr(model_config, "vocab", "")
        if vocab and vocab != ds.vocab:
            raise ValueError(
                f"the checkpoint's characters differ from this Python's pycorpus (text "
                f"{ds.sha256[:12]}): it was trained on another Python's documentation; evaluate "
                "it under that Python, or retrain"
            )
        dtypes = {v.dtype.name for v in ckpt.weights.values() if v.dtype.kind == "f"}
        if len(dtypes) != 1:
            raise ValueError(f"{args.checkpoint}: weights of mixed dtypes {sorted(dtypes)}")
    except (TypeError, ValueError) as e:  # CheckpointError is a ValueError
        p.error(str(e))
    return EvalRequest(ckpt, model_config, ds, dtypes.pop(), args.checkpoint)


def print_eval(side: str, req: EvalRequest, loss: float, accuracy: float) -> None:
    print(
        f"{side}: {req.ckpt.model} written by {req.ckpt.side} at step {req.ckpt.step}, "
        f"{req.dataset.name} test split ({len(req.dataset.y_test)} examples): "
        f"loss {loss:.6f}, accuracy {accuracy:.4f}"
    )
