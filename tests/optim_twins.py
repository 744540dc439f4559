"""Both sides' training loops, built from one `TrainConfig` by the package's own factories, on a
small problem, recording what the optimizer tests compare after every update.

The loops are `tests/pairs.py`'s, which run the package's step functions, optimizers and
schedulers as `functional/train.py` and `oop/train.py` do, minus files and evaluation, so a
test can afford dozens of optimizer x schedule combinations. The functional step compiles with
`quick_jit` (tests/quick.py): most of these tests' time is compilation.
"""

from __future__ import annotations

import functools

from pairs import EVERY_UPDATE, Run, Weights, cast, functional_trainer, max_abs_diff, oop_trainer

import shared.level0.mlp as l0
from shared import data
from shared.config import MLPConfig, TrainConfig

BATCH = 32


@functools.cache
def problem(steps: int) -> tuple[MLPConfig, Weights, tuple]:
    """Moons, a 2-16-16-2 MLP's float64 initial weights, and `steps` batches."""
    ds = data.load("moons")
    config = MLPConfig(in_features=2, out_features=2, width=16, layers=2)
    batches = data.batches(ds.x_train, ds.y_train, BATCH, seed=0)
    return config, l0.init(config, seed=0), tuple(next(batches) for _ in range(steps))


def functional_run(cfg: TrainConfig) -> Run:
    """The functional MLP under `cfg`: every update's loss and weights, the optimizer state."""
    config, weights, batches = problem(cfg.steps)
    train = functional_trainer("mlp", config, cfg, at=EVERY_UPDATE, opt_state=True)
    return train(cast(weights, cfg.dtype), batches)


def oop_run(cfg: TrainConfig) -> Run:
    """The torch MLP under `cfg`: every update's loss and weights, the optimizer state."""
    config, weights, batches = problem(cfg.steps)
    train = oop_trainer("mlp", config, cfg, at=EVERY_UPDATE, opt_state=True)
    return train(cast(weights, cfg.dtype), batches)


def functional_torch_run(cfg: TrainConfig) -> Run:
    """The functions-on-torch MLP under `cfg` (its pure torch-ops optimizer), recorded alike."""
    from corners import functional_torch_trainer  # the grid's corner, on the same problem

    config, weights, batches = problem(cfg.steps)
    train = functional_torch_trainer("mlp", config, cfg, at=EVERY_UPDATE, opt_state=True)
    return train(cast(weights, cfg.dtype), batches)


def max_weight_gap(a: Run, b: Run) -> float:
    """The largest |Δ| over every weight after every update."""
    assert a.at.keys() == b.at.keys() == set(range(1, len(a.losses) + 1))
    return max(max_abs_diff(a.at[k], b.at[k]) for k in a.at)
