"""The run folder both training scripts write: config, checkpoints, metrics, and the NaN guard.

The loops themselves live in `functional/train.py` and `oop/train.py`, where they read as each
paradigm writes them; this class only keeps the files the same on both sides:

    DIR/config.json          the model and training configs, the side, the start, the versions
    DIR/init.safetensors     the weights before the first update
    DIR/step-N.safetensors   every --save-every updates
    DIR/final.safetensors    the weights after the last update
    DIR/metrics.jsonl        one record per update and per evaluation (shared.metrics)

Only these (and `compare.png`) count as a run, and only these go under `--overwrite`: first
set aside in `DIR/.replaced-run/`, removed once the new run's first checkpoint is written, and
put back if the new run fails (or was killed) before that.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import platform
import re
import shutil
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm import tqdm

from shared import checkpoint, data
from shared.config import TrainConfig, to_dict
from shared.errors import Refused, Stopped, os_reason
from shared.metrics import MetricsWriter
from shared.optim import learning_rate

FETCH_EVERY = 50  # losses reach the host at least every N updates (and at evals and saves)
OWNED = ("config.json", "metrics.jsonl", "compare.png", "init.safetensors", "final.safetensors")
STEP = re.compile(r"step-[0-9]+\.safetensors")  # with OWNED: the files a run writes
LEFTOVER = re.compile(r"\.tmp-.*\.safetensors")  # an atomic write cut short (a kill mid-save)
REPLACED = ".replaced-run"  # under --overwrite: the old run, kept until the new one has a file


@dataclass(frozen=True)
class RunOptions:
    """Where a run starts from and where it writes; not part of the training config."""

    out: str  # the run folder
    init: str | None  # --init: a checkpoint's weights to start from
    progress: bool  # show the progress bar
    overwrite: bool  # replace the run already in `out`
    resume: str | None = None
    jitter: bool = False  # start one ulp (of the run's dtype) away: shared.compare's control
    control: bool = False  # --control: jitter, each batch reversed, the inputs one ulp away
    ensemble: int = 1  # --ensemble N: N models from seeds seed..seed+N-1, one vmapped step
    devices: int = 1  # --devices N: each batch split over N devices (functional/parallel.py)
    parallel: str = "auto"  # --parallel: "auto" (sharding annotations) or "shard_map"

    def start(self) -> dict:
        """Where the weights came from, for config.json: a fresh draw, --init, or --resume."""
        return {"init": self.init, "resume": self.resume, "jitter_init": self.jitter,
                "control": self.control}  # fmt: skip

    def parallelism(self) -> dict:
        """How the updates were spread, for config.json (the checkpoints do not depend on it)."""
        return {"devices": self.devices, "form": self.parallel if self.devices > 1 else None}


def train_batches(ds, cfg: TrainConfig, opts: RunOptions, start: int):
    """The run's training batches from update `start + 1` on, in the order every side draws
    them (`shared.data.batches`), floats in the run's dtype. Under `--control` (the rounding
    control), every input one ulp away at random and each batch's examples reversed."""
    dtype = np.dtype(cfg.dtype)
    x_train = data.as_dtype(ds.x_train, dtype)
    if opts.control:
        x_train = data.jitter_inputs(x_train, cfg.seed)
    return data.batches(x_train, data.as_dtype(ds.y_train, dtype), cfg.batch_size,
                        seed=cfg.seed, start_step=start, reverse=opts.control)  # fmt: skip


class RunError(Stopped):
    """A run that cannot go on; the message says why and what to do (exit 1)."""


class NonFiniteLoss(RunError):
    """A loss or a weight became NaN or infinite; the message names the last good checkpoint."""


def _previous_run(out: str, leftovers: bool = False) -> list[str]:
    """The files of a run in `out`, by name: never a file the run did not write (a checkpoint
    a user put there, an --init file). `leftovers`: also the temporary files of cut-short
    writes."""
    if not os.path.isdir(out):
        return []

    def owned(f: str) -> bool:
        return f in OWNED or bool(STEP.fullmatch(f)) or bool(leftovers and LEFTOVER.fullmatch(f))

    return sorted(f for f in os.listdir(out) if owned(f))


def check_out(out: str, overwrite: bool) -> None:
    """Refuse (before any work) an --out that cannot take this run: empty, a file, below a
    file, not writable, or holding a run without --overwrite."""
    if not out:
        raise Refused("--out is empty; name the run's folder, or leave --out out for the default")
    if os.path.exists(out) and not os.path.isdir(out):
        raise Refused(f"--out {out} is a file; name a folder (the run writes several files)")
    above = os.path.abspath(out)
    while not os.path.exists(above):
        above = os.path.dirname(above)
    if not os.path.isdir(above):
        raise Refused(f"--out {out}: {above} is a file, not a folder; choose another --out")
    if not os.access(above, os.W_OK | os.X_OK):
        raise Refused(f"--out {out}: {above} is not writable; choose another --out")
    old = _previous_run(out) or _previous_run(os.path.join(out, REPLACED))
    if old and not overwrite:
        listed = ", ".join(old[:3]) + (", ..." if len(old) > 3 else "")
        raise Refused(f"{out} already holds a run ({listed}); pass --overwrite to replace it, "
                      "or choose another --out")  # fmt: skip


def _move(names: list[str], src: str, dst: str) -> None:
    os.makedirs(dst, exist_ok=True)
    for name in names:
        os.replace(os.path.join(src, name), os.path.join(dst, name))


class RunFolder:
    """The files of one run in `opts.out`, written by either side's loop (`with folder:`)."""

    def __init__(self, opts: RunOptions, train: TrainConfig, model_config: Any, side: str,
                 versions: dict[str, str]) -> None:  # fmt: skip
        out, start = opts.out, opts.start()
        self.out, self._replaced = out, None
        self.train, self.model_config, self.side = train, model_config, side
        self.progress = opts.progress
        self.resumed: str | None = start.get("resume")
        # a resumed run's file is good: until this run writes one, it is the one to go back to
        self.last_good: str | None = self.resumed
        self._pending: tuple[str, dict[str, np.ndarray], int] | None = None
        try:
            if os.path.isdir(os.path.join(out, REPLACED)):  # an --overwrite killed before its
                self._restore()  # first checkpoint: the old run comes back first
            check_out(out, opts.overwrite)
            old = _previous_run(out)
            os.makedirs(out, exist_ok=True)
            if old:  # set aside, not removed: it comes back if the new run fails before its
                self._replaced = os.path.join(out, REPLACED)  # first checkpoint is written
                _move(_previous_run(out, leftovers=True), out, self._replaced)
            else:  # no run: the temporary files of writes a kill cut short are debris
                for name in _previous_run(out, leftovers=True):
                    os.remove(os.path.join(out, name))
            self._start(out, train, model_config, side, versions, start, opts.parallelism())
        except OSError as e:
            self._undo()
            raise Refused(f"cannot write the run folder {out} ({os_reason(e)}); "
                          "choose another --out") from e  # fmt: skip

    def _start(self, out, train, model_config, side, versions, start, parallel) -> None:
        info = {
            "side": side,
            "model": train.model,
            "model_config": to_dict(model_config),
            "train_config": to_dict(train),
            "start": start,  # --init / --resume / --jitter-init: where the weights came from
            "parallel": parallel,
            "versions": {"python": platform.python_version(), "numpy": np.__version__, **versions},
        }
        with open(os.path.join(out, "config.json"), "w", encoding="utf-8") as f:
            json.dump(info, f, indent=2, sort_keys=True)
        self.metrics = MetricsWriter(out)

    def save_verified(self, name: str, weights: dict[str, np.ndarray], step: int) -> None:
        """Write `DIR/name.safetensors` once the loss of update `step + 1`, computed from these
        weights, has reached the host and is finite (`log_losses` does it). Weights that only
        lead to NaN are never written, so the last checkpoint on disk is always a good one."""
        self._pending = (name, weights, step)

    def save(self, name: str, weights: dict[str, np.ndarray], step: int) -> str:
        """Write `DIR/name.safetensors` atomically and remember it as the last good checkpoint.

        For `init` (the weights as loaded) and `final` (after the final evaluation was finite).
        A write that fails (a full disk, a quota) stops the run with RunError, naming the last
        good checkpoint; the atomic write leaves no torn file.
        """
        path = os.path.join(self.out, f"{name}.safetensors")
        bad = [k for k, v in weights.items() if not np.isfinite(v).all()]
        if bad:
            raise NonFiniteLoss(
                f"weights {', '.join(bad)} became non-finite by update {step}; stopped without "
                f"writing {name}. {self._last_good()} {self._advice()}"
            )
        try:
            checkpoint.save(
                path,
                weights,
                model=self.train.model,
                model_config=to_dict(self.model_config),
                train_config=to_dict(self.train),
                step=step,
                side=self.side,
            )
        except OSError as e:
            raise RunError(
                f"writing {path} failed at update {step} ({os_reason(e)}); stopped. "
                f"{self._last_good()} Free space or choose another --out"
                + (f", then --resume {self.last_good}" if self._resumable() else "")
            ) from e
        self.last_good = path
        if self._replaced is not None:  # the new run has its first file: the old one goes
            shutil.rmtree(self._replaced)
            self._replaced = None
        return path

    def _last_good(self) -> str:
        if self.last_good is None:
            return "No checkpoint was written."
        resumed = ", the one resumed" if self.last_good == self.resumed else ""
        return f"The last good checkpoint is {self.last_good}{resumed}."

    def _resumable(self) -> bool:  # init.safetensors holds no optimizer state
        return self.last_good is not None and not self.last_good.endswith("init.safetensors")

    def _advice(self) -> str:
        if self.resumed is not None:  # a resume keeps the file's settings
            return (
                f"A resume keeps its settings: start a new run from {self.last_good} with "
                f"--init and a lower --lr (now {self.train.lr:g}), or check the data."
            )
        return f"Lower --lr (now {self.train.lr:g}) or check the data."

    def _undo(self) -> None:
        """A run that stops before its first checkpoint leaves the folder as it found it: its
        config and metrics go, and a run --overwrite set aside comes back."""
        if self._replaced is not None:
            self._restore()
        elif self.last_good is None or self.last_good == self.resumed:
            for name in ("config.json", "metrics.jsonl"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(os.path.join(self.out, name))

    def _restore(self) -> None:
        """Put back the run --overwrite set aside, over whatever the new run wrote so far."""
        replaced = os.path.join(self.out, REPLACED)
        for name in _previous_run(self.out, leftovers=True):
            os.remove(os.path.join(self.out, name))
        _move(sorted(os.listdir(replaced)), replaced, self.out)
        os.rmdir(replaced)
        self._replaced = None

    def boundary(self, step: int) -> bool:
        """Whether the losses so far must reach the host after update `step`: every
        FETCH_EVERY updates, before each evaluation and save, and at the end. Between
        boundaries both loops keep losses on the device and never synchronise."""
        return step % FETCH_EVERY == 0 or self.wants_eval(step) or self.wants_save(step)

    def wants_eval(self, step: int) -> bool:
        every = self.train.eval_every
        return step == self.train.steps or (every > 0 and step % every == 0)

    def wants_save(self, step: int) -> bool:
        every = self.train.save_every
        return every > 0 and step % every == 0 and step < self.train.steps

    def log_losses(self, last_step: int, losses: np.ndarray, seconds: float, bar) -> None:
        """Write the train records of updates `last_step - len(losses) + 1 ... last_step`, each
        with the learning rate the schedule gave it (`shared.optim.learning_rate`).

        Stops at the first non-finite loss with NonFiniteLoss, before anything after it is
        written or saved, so the last checkpoint on disk is a good one.
        """
        first = last_step - len(losses) + 1
        for step, loss in enumerate(losses.tolist(), start=first):
            self.check_finite(step, loss)
            lr = learning_rate(self.train.optimizer, self.train.schedule, step - 1)
            self.metrics.train(step, loss, lr, seconds)
            if self._pending is not None and self._pending[2] == step - 1:
                self.save(*self._pending)
                self._pending = None
        bar.update(len(losses))
        bar.set_postfix(loss=f"{losses[-1]:.4f}")

    def log_eval(self, step: int, loss: float, accuracy: float, bar) -> None:
        self.check_finite(step, loss, what="test loss")
        self.metrics.eval(step, loss, accuracy)
        bar.write(f"step {step:>6}  test loss {loss:.4f}  accuracy {accuracy:.4f}")

    def check_finite(self, step: int, loss: float, what: str = "loss") -> None:
        if not math.isfinite(loss):
            raise NonFiniteLoss(
                f"{what} became {loss} at update {step}; stopped. {self._last_good()} "
                + self._advice()
            )

    def bar(self, start: int = 0) -> tqdm:
        desc = f"{self.side} {self.train.model}"
        return tqdm(total=self.train.steps, initial=start, desc=desc, unit="step",
                    disable=not self.progress, file=sys.stderr, dynamic_ncols=True)  # fmt: skip

    def close(self) -> None:
        self.metrics.close()

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, kind, error, tb) -> None:
        self.close()
        if kind is None:
            return
        if self.last_good is None or self.last_good == self.resumed:  # before its first file
            self._undo()
        if isinstance(error, OSError):  # a metrics write, mid-run: the one line names the file
            raise RunError(f"{os_reason(error)}; stopped. {self._last_good()}") from error
        if isinstance(error, KeyboardInterrupt):  # Ctrl-C: where to go on from, not a traceback
            more = f" Go on with --resume {self.last_good}" if self._resumable() else ""
            raise RunError(f"interrupted; stopped. {self._last_good()}{more}") from None


class ReplicaFolder(RunFolder):
    """A data-parallel process's view of the run folder where another process (rank 0) writes
    it: the same decisions (when losses reach the host, when to evaluate and save) and the same
    stop at a non-finite loss, and no file written or moved."""

    def __init__(self, opts: RunOptions, train: TrainConfig, model_config: Any, side: str,
                 versions: dict[str, str]) -> None:  # fmt: skip
        self.out, self._replaced, self._pending = opts.out, None, None
        self.train, self.model_config, self.side = train, model_config, side
        self.progress = False
        self.resumed = self.last_good = opts.resume

    def save_verified(self, name: str, weights: dict[str, np.ndarray], step: int) -> None:
        pass

    def save(self, name: str, weights: dict[str, np.ndarray], step: int) -> str:
        return os.path.join(self.out, f"{name}.safetensors")  # rank 0 writes it

    def log_losses(self, last_step: int, losses: np.ndarray, seconds: float, bar) -> None:
        for step, loss in enumerate(losses.tolist(), start=last_step - len(losses) + 1):
            self.check_finite(step, loss)

    def log_eval(self, step: int, loss: float, accuracy: float, bar) -> None:
        self.check_finite(step, loss, what="test loss")

    def _last_good(self) -> str:
        return "Rank 0's line names the last good checkpoint."

    def _resumable(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def __exit__(self, kind, error, tb) -> None:
        if isinstance(error, KeyboardInterrupt):
            raise RunError("interrupted; stopped (rank 0 keeps the run folder)") from None


def launched() -> bool:
    """Whether a launcher (torchrun, shared.launch) started this process as one of several:
    torchrun's variables, which both sides read (oop/parallel.py, functional/parallel.py)."""
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))


def writes_files() -> bool:
    """False in a data-parallel process other than rank 0 (torchrun's `RANK`): that process
    checks, writes and moves nothing in --out, which rank 0 keeps."""
    return not launched() or os.environ["RANK"] == "0"


COLLECTIVE_TIMEOUT_S = 60.0  # joining, and any collective's wait for a peer


def collective_timeout() -> float:
    """Seconds a data-parallel process waits for a peer: PARADIGMS_COLLECTIVE_TIMEOUT, or 60."""
    value = os.environ.get("PARADIGMS_COLLECTIVE_TIMEOUT", str(COLLECTIVE_TIMEOUT_S))
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds >= 1:
        raise Refused(f"PARADIGMS_COLLECTIVE_TIMEOUT={value}: give seconds, 1 or more")
    return seconds


def ensemble_folders(
    stack: contextlib.ExitStack, opts: RunOptions, trains: list[TrainConfig], model_config: Any,
    side: str, versions: dict[str, str],
) -> list[RunFolder]:  # fmt: skip
    """The run folders of `--ensemble`'s members, `OUT/seed-S/`, each entered into `stack` as
    soon as it is made (so a failure undoes every folder made so far). Every member's folder is
    checked first: one that cannot take its run refuses them all before any file is written."""
    outs = [os.path.join(opts.out, f"seed-{t.seed}") for t in trains]
    for out in outs:
        check_out(out, opts.overwrite)
    folders = []
    for i, (train, out) in enumerate(zip(trains, outs, strict=True)):
        member = dataclasses.replace(opts, out=out, progress=opts.progress and i == 0, ensemble=1)
        folders.append(stack.enter_context(RunFolder(member, train, model_config, side, versions)))
    return folders
