"""The run folder's metrics log: one JSON object per line (`metrics.jsonl`).

Records both training scripts write:

    {"kind": "train", "step": k, "loss": ..., "lr": ..., "seconds": ...}
    {"kind": "eval", "step": k, "split": "test", "loss": ..., "accuracy": ...}

`step` counts completed updates from 1; a train record's `loss` is the loss of the batch that
update k was computed on, before the update. `seconds` is the wall time since the first update
began, taken when the loss reached the host (the functional side fetches losses in chunks, so
a chunk's records share one time).
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np

FILENAME = "metrics.jsonl"


class MetricsWriter:
    """Appends records and flushes after each write, so a crashed run keeps its log."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.path = os.path.join(folder, FILENAME)
        self._file = open(self.path, "w", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        for key, value in record.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"metrics record {key}={value} is not finite; JSON cannot hold it")
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def train(self, step: int, loss: float, lr: float, seconds: float) -> None:
        self.write({"kind": "train", "step": step, "loss": loss, "lr": lr, "seconds": seconds})

    def eval(self, step: int, loss: float, accuracy: float, split: str = "test") -> None:
        self.write(
            {"kind": "eval", "step": step, "split": split, "loss": loss, "accuracy": accuracy}
        )

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> MetricsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read(folder_or_file: str | os.PathLike) -> list[dict[str, Any]]:
    """All records of a run folder (or of a metrics.jsonl path), in order."""
    path = str(folder_or_file)
    if os.path.isdir(path):
        path = os.path.join(path, FILENAME)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no metrics log; is this a run folder from --out?")
    records, _ = read_log(path)
    return records


REQUIRED = {"train": ("step", "loss", "seconds"), "eval": ("step", "loss", "accuracy")}


def read_log(path: str | os.PathLike) -> tuple[list[dict[str, Any]], bool]:
    """`(records, cut_short)` of one metrics.jsonl: a last line that a kill cut short mid-write
    is left out (`cut_short` True); any other bad line raises ValueError naming its line."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    records, cut_short = [], False
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            if number == len(lines):  # the last line, with no newline after it: cut short
                cut_short = True
                continue
            raise ValueError(
                f"{path} line {number}: not JSON; not a log this package wrote"
            ) from None
        needs = REQUIRED.get(record.get("kind")) if isinstance(record, dict) else None
        if needs is None or any(key not in record for key in needs):
            raise ValueError(
                f"{path} line {number}: not a train or eval record with "
                f"{', '.join(needs or ('kind', 'step'))}; not a log this package wrote"
            )
        records.append(record)
    return records, cut_short


def train_curve(records: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`(steps, losses, seconds)` of the train records."""
    train = [r for r in records if r["kind"] == "train"]
    return (
        np.array([r["step"] for r in train], dtype=np.int64),
        np.array([r["loss"] for r in train], dtype=np.float64),
        np.array([r["seconds"] for r in train], dtype=np.float64),
    )


def last_eval(records: list[dict[str, Any]], split: str = "test") -> dict[str, Any] | None:
    evals = [r for r in records if r["kind"] == "eval" and r.get("split") == split]
    return evals[-1] if evals else None


def steady_steps_per_second(steps: np.ndarray, seconds: np.ndarray) -> float:
    """Updates per second after the first logged chunk, which holds compilation and warm-up."""
    if len(steps) < 2:
        return float("nan")
    first = np.flatnonzero(seconds == seconds[0])[-1]  # end of the first chunk
    if first == len(steps) - 1 or seconds[-1] <= seconds[first]:
        return float(steps[-1] / seconds[-1]) if seconds[-1] > 0 else float("nan")
    return float((steps[-1] - steps[first]) / (seconds[-1] - seconds[first]))
