"""The canonical weight file: one `.safetensors` file, name -> array, plus JSON metadata.

Names are the dotted attribute paths that both sides share (`layers.0.weight`), in torch's
layouts (`weight` is `(out, in)`). Entries whose names begin with `opt.` (optimizer state) or
`rng.` (random state) are reserved for resuming; loading weights ignores them. There is no
pickle anywhere: safetensors holds raw arrays and a string-to-string header.

    python -m shared.checkpoint runs/demo/functional/final.safetensors
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save as _serialize

from shared import registry
from shared.cli.base import Parser
from shared.config import model_config_from_dict
from shared.errors import entry_point
from shared.weights import CheckpointError, summarize, weight_problems

FORMAT = "paradigms-checkpoint"
# 1: weights and flat optimizer settings. 2: optimizer state (opt.*) and nested optimizer and
# schedule specs in train_config; version-1 files still load (shared.config reads both).
FORMAT_VERSION = 2
RESERVED_PREFIXES = ("opt.", "rng.")  # not model weights


@dataclass(frozen=True)
class Checkpoint:
    tensors: dict[str, np.ndarray]  # every entry, weights and reserved ones
    model: str
    model_config: dict[str, Any]
    train_config: dict[str, Any]
    step: int
    side: str  # "functional", "oop" or "level0"
    format_version: int

    @property
    def weights(self) -> dict[str, np.ndarray]:
        return {k: v for k, v in self.tensors.items() if not k.startswith(RESERVED_PREFIXES)}


def save(
    path: str | os.PathLike,
    tensors: dict[str, np.ndarray],
    *,
    model: str,
    model_config: dict[str, Any],
    train_config: dict[str, Any],
    step: int,
    side: str,
) -> None:
    """Write a checkpoint atomically: a temp file in the same folder, then `os.replace`."""
    meta = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "model": model,
        "model_config": json.dumps(model_config, sort_keys=True),
        "train_config": json.dumps(train_config, sort_keys=True),
        "step": str(int(step)),
        "side": side,
    }
    arrays = {k: np.require(v, requirements="C") for k, v in tensors.items()}  # keeps 0-d
    data = _serialize(arrays, metadata=meta)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".safetensors")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual mode
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)


def read(path: str | os.PathLike) -> Checkpoint:
    """Read every entry and the metadata; a truncated or foreign file raises CheckpointError."""
    if os.path.isdir(path):
        final = os.path.join(path, "final.safetensors")
        raise CheckpointError(f"{path} is a folder; pass one of its files, e.g. {final}")
    if not os.path.isfile(path):
        raise CheckpointError(
            f"{path}: no such checkpoint file; a run writes DIR/init.safetensors and "
            "DIR/final.safetensors into its --out DIR"
        )
    try:
        with safe_open(str(path), framework="np") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(
            f"{path}: not a safetensors checkpoint, or a truncated one ({e}); "
            "use an earlier step-N.safetensors or rerun"
        ) from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(
            f"{path}: a safetensors file without paradigms metadata; "
            "write it with shared.checkpoint.save"
        )
    try:
        version = int(meta.get("format_version", "0"))
    except ValueError:
        raise CheckpointError(
            f"{path}: damaged paradigms metadata (format_version "
            f"{meta.get('format_version')!r} is not an integer); use another checkpoint"
        ) from None
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: format version {version} is newer than this package's {FORMAT_VERSION}; "
            "upgrade paradigms"
        )
    try:
        ckpt = Checkpoint(
            tensors=tensors,
            model=meta["model"],
            model_config=json.loads(meta["model_config"]),
            train_config=json.loads(meta["train_config"]),
            step=int(meta["step"]),
            side=meta["side"],
            format_version=version,
        )
    except (KeyError, ValueError) as e:  # JSONDecodeError is a ValueError
        raise CheckpointError(f"{path}: damaged paradigms metadata ({e!r})") from None
    for key in ("model_config", "train_config"):
        if not isinstance(getattr(ckpt, key), dict):
            raise CheckpointError(
                f"{path}: damaged paradigms metadata ({key} is a "
                f"{type(getattr(ckpt, key)).__name__}, not a JSON object); use another checkpoint"
            )
    return ckpt


def model_config(ckpt: Checkpoint, path: str | os.PathLike):
    """The model config the file's metadata describes. Refuses a model or a setting that this
    version of the package does not know (a newer version's file), or a damaged one."""
    if ckpt.model not in registry.NAMES:
        raise CheckpointError(
            f"{path} holds a {ckpt.model!r} model, which this version of paradigms does not know "
            f"(it knows {', '.join(registry.NAMES)}); upgrade paradigms or use another file"
        )
    try:
        return model_config_from_dict(ckpt.model, ckpt.model_config)
    except ValueError as e:
        raise CheckpointError(f"{path}: {e}") from None


def check_finite(ckpt: Checkpoint, path: str | os.PathLike) -> None:
    """Refuse a file with NaN or infinite values: no run can start from it."""
    bad = [k for k, v in ckpt.tensors.items() if v.dtype.kind == "f" and not np.isfinite(v).all()]
    if bad:
        count = sum(int((~np.isfinite(ckpt.tensors[k])).sum()) for k in bad)
        raise CheckpointError(
            f"{path} holds {count:,} NaN or infinite values (in {', '.join(bad[:3])}"
            + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
            + "); a run cannot start from it: use an earlier checkpoint of its run"
        )


def load_weights(
    path: str | os.PathLike,
    *,
    model: str,
    expected: dict[str, tuple[int, ...]],
    dtype: str | dict[str, str] | None = None,
) -> Checkpoint:
    """Read a checkpoint meant for `model` and check its weights against `expected` shapes."""
    ckpt = read(path)
    check_fits(ckpt, path, model=model, expected=expected, dtype=dtype)
    return ckpt


def check_fits(
    ckpt: Checkpoint,
    path: str | os.PathLike,
    *,
    model: str,
    expected: dict[str, tuple[int, ...]],
    dtype: str | dict[str, str] | None = None,
) -> None:
    """Raise one CheckpointError, one line, unless `ckpt` holds `model`'s weights in exactly
    these shapes (and dtypes): the fix names the sizes the file was written for."""
    if ckpt.model != model:
        fix = f"pass --model {ckpt.model}" if ckpt.model in registry.NAMES else "pass another file"
        raise CheckpointError(f"{path}: holds a {ckpt.model!r} model, not {model!r}; {fix}")
    problems = weight_problems(ckpt.weights, expected, dtype)
    if problems:
        t = ckpt.train_config
        sizes = ", ".join(f"{k}={v}" for k, v in ckpt.model_config.items() if k != "vocab")
        raise CheckpointError(
            f"{path}: weights do not match the model ({summarize(problems)}). It says it was "
            f"written for {sizes}, dataset {t.get('dataset')}, dtype {t.get('dtype')}: match "
            "those with --width/--layers/--heads/--seq-len, --dataset and --dtype, or leave "
            "those flags out to take them from the file"
        )


@contextlib.contextmanager
def about(path: str | os.PathLike) -> Iterator[None]:
    """Name `path` in a CheckpointError raised inside: `with about(path): from_canonical(...)`."""
    try:
        yield
    except CheckpointError as e:
        raise CheckpointError(
            f"{path}: {e}; it does not fit the model its own metadata describes (a tensor "
            "renamed or reshaped after it was written): use another checkpoint"
        ) from None


def describe(ckpt: Checkpoint) -> str:
    """Metadata and a table of names, shapes and dtypes."""
    lines = [
        f"model        {ckpt.model}  {json.dumps(ckpt.model_config, sort_keys=True)}",
        f"step         {ckpt.step}",
        f"written by   {ckpt.side}",
        f"format       {FORMAT} v{ckpt.format_version}",
        *(
            f"{k:<12} {json.dumps(ckpt.train_config[k], sort_keys=True)}"
            for k in ("optimizer", "schedule")
            if k in ckpt.train_config
        ),
        "train config "
        + json.dumps(
            {k: v for k, v in ckpt.train_config.items() if k not in ("optimizer", "schedule")},
            sort_keys=True,
        ),
        "",
    ]
    width = max([len(k) for k in ckpt.tensors] + [4])
    lines.append(f"{'name':<{width}}  {'shape':<14}  dtype")
    total = 0
    for name, arr in ckpt.tensors.items():
        lines.append(f"{name:<{width}}  {str(tuple(arr.shape)):<14}  {arr.dtype}")
        if not name.startswith(RESERVED_PREFIXES):
            total += arr.size
    lines.append(f"{len(ckpt.weights)} weights, {total:,} parameters")
    return "\n".join(lines)


@entry_point("python -m shared.checkpoint")
def main(argv: list[str] | None = None) -> int:
    p = Parser(
        prog="python -m shared.checkpoint",
        description="Print a canonical checkpoint's metadata and its table of weights.",
    )
    p.add_argument("file", help="a .safetensors file written by either training script")
    args = p.parse_args(argv)
    print(describe(read(args.file)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
