"""The trap harness: one tiny problem, two training loops, and the divergence between them.

A trap is a framework difference that makes a faithful-looking port disagree. Each trap module
lists `Trap` entries; each entry has two computations that return a per-step divergence:

- `naive`: the obvious translation (library defaults, the "same" call), which must diverge by
  more than `naive_at_least`;
- `fixed`: the correct translation, which must agree within `fixed_tol`.

A trap of the **paradigm** (`kind="paradigm"`: pure functions against objects, tracing against
running) may instead fail loudly: its `naive` then raises `raises` (the message matching
`match`), and the figure shows the fixed port with the error written over it.

The test modules turn every entry into a failing-naive / passing-fixed pair of tests, and
`python -m tools.render_traps` (`make traps`) draws one figure per trap into docs/figures/traps/.

Everything here runs in float64 (inside `jax.enable_x64`) on a 2-16-2 MLP and 2-D moons, so a
fixed port agrees to rounding (F64_TOL) and a trap's gap stands far above it. The two training
loops are tests/pairs.py's, given the optimizer (and scheduler) a trap's port builds.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import optax
import pairs
import pytest
import torch
from pairs import F64_TOL, Weights, max_abs_diff

import shared.level0.mlp as l0
from shared import data
from shared.config import MLPConfig

STEPS = 60  # updates per trajectory: long enough for momentum and schedules to matter
BATCH = 32


@dataclass(frozen=True)
class Trap:
    """One entry of the catalogue. `naive` and `fixed` return the divergence after each step
    (or at each point compared), as a 1-D array; the tests look at its maximum."""

    name: str  # short id: test ids and figure file names
    title: str  # the cheat-sheet line
    quantity: str  # what is compared, e.g. "max |Δparam|", "|Δlr|"
    naive: Callable[[], np.ndarray]
    fixed: Callable[[], np.ndarray]
    naive_at_least: float  # the naive port diverges by more than this (measured value in doc)
    fixed_tol: float = F64_TOL
    kind: str = "library"  # "library": a default or a numerical effect; "paradigm": a style's
    raises: type[BaseException] | None = None  # the naive port fails with this instead
    match: str = ""  # a regular expression its message matches

    def __repr__(self) -> str:  # pytest ids
        return self.name


def check_naive(trap: Trap) -> float:
    if trap.raises is not None:
        with pytest.raises(trap.raises, match=trap.match):
            trap.naive()
        return float("inf")
    gap = float(np.max(trap.naive()))
    assert gap > trap.naive_at_least, (
        f"{trap.name}: the naive port should diverge by > {trap.naive_at_least:.1e}, got {gap:.3e}"
    )
    return gap


def check_fixed(trap: Trap) -> float:
    gap = float(np.max(trap.fixed()))
    assert gap <= trap.fixed_tol, f"{trap.name}: fixed port differs by {gap:.3e}"
    return gap


def naive_and_fixed_tests(traps: list[Trap]):
    """The pair of tests every trap gets; a module binds them to its own names:

    test_naive_port_diverges, test_fixed_port_matches = naive_and_fixed_tests(TRAPS)
    """

    @pytest.mark.parametrize("trap", traps, ids=repr)
    def test_naive_port_diverges(trap: Trap) -> None:
        check_naive(trap)

    @pytest.mark.parametrize("trap", traps, ids=repr)
    def test_fixed_port_matches(trap: Trap) -> None:
        check_fixed(trap)

    return test_naive_port_diverges, test_fixed_port_matches


# -- the tiny problem --
@functools.cache
def problem() -> tuple[MLPConfig, Weights, list[tuple[np.ndarray, np.ndarray]]]:
    """A 2-16-2 MLP's float64 initial weights and STEPS batches of moons, in a fixed order."""
    ds = data.load("moons")
    config = MLPConfig(in_features=2, out_features=2, width=16, layers=1)
    batches = data.batches(ds.x_train, ds.y_train, BATCH, seed=0)
    return config, l0.init(config, seed=0), [next(batches) for _ in range(STEPS)]


def max_gap(a: Iterable[Weights], b: Iterable[Weights]) -> np.ndarray:
    """Per step, the largest |a - b| over every canonical weight."""
    return np.array([max_abs_diff(x, y) for x, y in zip(a, b, strict=True)])


def _each_update(run: pairs.Run) -> list[Weights]:
    return [run.at[k] for k in range(1, len(run.losses) + 1)]


# -- the two loops: tests/pairs.py's, on the tiny problem --
def run_functional(tx: optax.GradientTransformation, steps: int = STEPS) -> list[Weights]:
    """Canonical weights after each of `steps` updates of the functional MLP under `tx`."""
    config, weights, batches = problem()
    step = pairs.make_step("mlp", config, tx, "float64")
    run = pairs.run_functional(
        "mlp", config, weights, batches[:steps], tx, step, dtype="float64", at=pairs.EVERY_UPDATE
    )
    return _each_update(run)


def run_oop(
    make: Callable[[list[tuple[str, torch.nn.Parameter]]], torch.optim.Optimizer],
    steps: int = STEPS,
    *,
    scheduler: Callable[[torch.optim.Optimizer], object] | None = None,
    clip_norm: float | None = None,
) -> list[Weights]:
    """Canonical weights after each update of the torch MLP. `make(named_params)` builds the
    optimizer, `scheduler(optimizer)` an LR scheduler stepped after each update, and
    `clip_norm` clips the gradients' global norm between `backward()` and `step()`."""
    config, weights, batches = problem()
    run = pairs.run_oop(
        "mlp", config, weights, batches[:steps], make, dtype="float64",
        make_scheduler=scheduler, clip_norm=clip_norm, at=pairs.EVERY_UPDATE,
    )  # fmt: skip
    return _each_update(run)


def params_of(named: list[tuple[str, torch.nn.Parameter]]) -> list[torch.nn.Parameter]:
    return [p for _, p in named]
