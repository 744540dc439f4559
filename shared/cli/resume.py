"""`--resume`: a run goes on from a step-N or final checkpoint of either side, with the settings
the file holds. Only the flags in RESUME_FREE may change; any other flag given must agree with
the file, or the resume is refused, naming each conflict.
"""

from __future__ import annotations

import argparse
import dataclasses

from shared import checkpoint, data, optim, registry
from shared.cli.optim import OPTIMIZER_FLAGS, SCHEDULE_FLAGS
from shared.config import TrainConfig, train_config_from_dict

# Flags a resumed run may set; every other flag must agree with the checkpoint it resumes.
RESUME_FREE = {"steps", "out", "eval_every", "save_every", "device", "tf32", "no_progress",
               "overwrite", "dry_run", "resume"}  # fmt: skip


def resumed(args: argparse.Namespace, dry_run_steps: int) -> tuple[TrainConfig, object]:
    """The checkpoint's configs with only RESUME_FREE flags applied; other flags must agree.
    Under --dry-run the run ends `dry_run_steps` updates after the checkpoint."""
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
    optim.check_optimizer_state(ckpt.tensors, ckpt.step, base.optimizer, model.weight_shapes(),
                                base.dtype)  # fmt: skip
    stored = settings(base, model)
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
        steps=min(steps, ckpt.step + dry_run_steps) if args.dry_run else steps,
        device=args.device,
        tf32=args.tf32,
        eval_every=base.eval_every if args.eval_every is None else args.eval_every,
        save_every=base.save_every if args.save_every is None else args.save_every,
    )
    print(
        f"resuming {args.resume}: written by the {ckpt.side} side at update {ckpt.step}; "
        f"{base.optimizer.name} (lr {base.optimizer.lr:g}, schedule {base.schedule.name}), "
        f"on to update {train.steps}",
        flush=True,
    )
    return train, model


def settings(train: TrainConfig, model) -> dict[str, object]:
    """A run's settings under its training flags' names (dest form: `batch_size`, `lr`)."""
    return {
        **{k: getattr(train, k) for k in ("model", "dataset", "batch_size", "seq_len", "seed")},
        "dtype": train.dtype,
        **registry.entry(train.model).flag_values(model),
        "optimizer": train.optimizer.name,
        "schedule": train.schedule.name,
        **{k: getattr(train.optimizer, k) for k in OPTIMIZER_FLAGS},
        **{k: getattr(train.schedule, k) for k in SCHEDULE_FLAGS},
    }


def as_flags(train: TrainConfig, model) -> list[str]:
    """The training flags that rebuild a run's settings: the model, data set, optimizer and
    steps always, every other setting where it differs from that optimizer's and schedule's
    defaults."""
    plain = dataclasses.replace(
        TrainConfig(), model=train.model, steps=train.steps,
        optimizer=optim.OptimizerSpec.create(train.optimizer.name),
        schedule=optim.ScheduleSpec.create(train.schedule.name),
    )  # fmt: skip
    every = ("eval_every", "save_every")
    given = {**settings(train, model), **{k: getattr(train, k) for k in every}}
    default = {**settings(plain, model), **{k: getattr(plain, k) for k in every}}
    keep = {"model", "dataset", "optimizer", "schedule", *registry.SIZE_FLAGS}
    shown = {k: v for k, v in given.items() if k in keep or v != default.get(k)}
    flags = [_flag(k, v) for k, v in shown.items() if v is not None and v is not False]
    return [*flags, f"--steps {train.steps}"]


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
