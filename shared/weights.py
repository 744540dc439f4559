"""Named weights checked against a model's expected shapes and dtypes, and the rounding
control's perturbation of them. A leaf of the contract: both sides' conversions, the checkpoint
file and the optimizer-state check report mismatches through it, in one line each.
"""

from __future__ import annotations

import numpy as np

from shared.errors import Refused


class CheckpointError(Refused):
    """A checkpoint that cannot be used as asked; the message says why and what to do."""


def summarize(problems: list[str], shown: int = 4) -> str:
    """Problems on one line: the first `shown`, then how many more."""
    more = f"; and {len(problems) - shown} more" if len(problems) > shown else ""
    return "; ".join(p.strip() for p in problems[:shown]) + more


def check_weights(
    weights: dict[str, np.ndarray],
    expected: dict[str, tuple[int, ...]],
    dtype: str | dict[str, str] | None = None,
    *,
    source: str = "file",
) -> None:
    """Raise one CheckpointError, one line, naming the missing, unexpected, mis-shaped or
    mis-typed weights (the first four, and how many more).

    `dtype` is one dtype name for all weights, or a name per weight, or None to skip the check.
    """
    problems = weight_problems(weights, expected, dtype, source=source)
    if problems:
        raise CheckpointError(f"weights do not match the model ({summarize(problems)})")


def check_optimizer_tensors(
    tensors: dict[str, np.ndarray], expected: dict[str, np.ndarray]
) -> None:
    """Raise one CheckpointError unless a checkpoint's `opt.*` entries have the names, shapes and
    dtypes of `expected` (what the side's own optimizer state would write at that step)."""
    check_weights(
        {k: v for k, v in tensors.items() if k.startswith("opt.")},
        {k: v.shape for k, v in expected.items()},
        {k: v.dtype.name for k, v in expected.items()},
        source="checkpoint's optimizer state",
    )


def weight_problems(
    weights: dict[str, np.ndarray],
    expected: dict[str, tuple[int, ...]],
    dtype: str | dict[str, str] | None = None,
    *,
    source: str = "file",
) -> list[str]:
    """Every missing, unexpected, mis-shaped or mis-typed weight, one entry each."""
    problems = []
    for name, shape in expected.items():
        if name not in weights:
            problems.append(f"{name}: missing from {source}")
            continue
        have = weights[name]
        if tuple(have.shape) != tuple(shape):
            problems.append(f"{name}: expected {tuple(shape)}, {source} has {tuple(have.shape)}")
        want = dtype.get(name) if isinstance(dtype, dict) else dtype
        if tuple(have.shape) == tuple(shape) and want is not None and have.dtype != np.dtype(want):
            problems.append(f"{name}: expected {want}, {source} has {have.dtype}")
    problems += [f"{name}: unexpected in {source}" for name in weights if name not in expected]
    return problems


def jitter(weights: dict[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """Every floating value moved up by one ulp with probability 1/2 (drawn from `seed`); integers
    kept. The control for a twin comparison: two runs of the same side, one from jittered weights,
    show how far rounding alone carries a training run."""
    rng = np.random.default_rng(seed)
    out = {}
    for name in sorted(weights):
        w = weights[name]
        if w.dtype.kind != "f":
            out[name] = w
            continue
        up = rng.random(w.shape) < 0.5
        out[name] = np.where(up, np.nextafter(w, np.array(np.inf, w.dtype)), w).astype(w.dtype)
    return out
