"""Both sides' training loops, built from one `TrainConfig` by the package's own factories, on a
small problem, recording what the optimizer tests compare after every update.

The loops are the ones `functional/train.py` and `oop/train.py` run (the same factories, step
functions and schedule handling), minus files and evaluation, so a test can afford dozens of
optimizer x schedule combinations. The functional step compiles with `quick_jit`
(tests/quick.py): most of these tests' time is compilation.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import equinox as eqx
import jax
import numpy as np
import torch
from quick import quick_jit

import functional.convert as fconvert
import functional.models.mlp as fmlp
import functional.optim as foptim
import oop.convert as oconvert
import oop.models.mlp as omlp
import oop.optim as ooptim
import shared.level0.mlp as l0
from shared import data
from shared.config import MLPConfig, TrainConfig

BATCH = 32
Weights = dict[str, np.ndarray]


@dataclass
class Trajectory:
    losses: np.ndarray  # (steps,) the loss of each update
    weights: list[Weights]  # canonical weights after each update
    opt_state: Weights  # canonical optimizer state after the last update


@functools.cache
def problem(steps: int) -> tuple[MLPConfig, Weights, tuple]:
    """Moons, a 2-16-16-2 MLP's float64 initial weights, and `steps` batches."""
    ds = data.load("moons")
    config = MLPConfig(in_features=2, out_features=2, width=16, layers=2)
    batches = data.batches(ds.x_train, ds.y_train, BATCH, seed=0)
    return config, l0.init(config, seed=0), tuple(next(batches) for _ in range(steps))


def functional_run(cfg: TrainConfig) -> Trajectory:
    config, weights, batches = problem(cfg.steps)
    with jax.enable_x64(cfg.dtype == "float64"):
        model = fconvert.skeleton(fmlp.init_model, config, dtype=cfg.dtype)
        model = fconvert.from_canonical(model, {k: v.astype(cfg.dtype) for k, v in weights.items()})
        params, static = eqx.partition(model, eqx.is_array)
        tx = foptim.make_optimizer(cfg.optimizer, cfg.schedule, cfg.dtype)
        state = tx.init(params)
        step = quick_jit(fmlp.make_step(tx, static))
        losses, out = [], []
        for x, y in batches:
            params, state, loss = step(params, state, x.astype(cfg.dtype), y)
            losses.append(float(loss))
            out.append(fconvert.to_canonical(params))
        return Trajectory(np.array(losses), out, fconvert.opt_state_to_canonical(state, cfg.steps))


def oop_run(cfg: TrainConfig) -> Trajectory:
    config, weights, batches = problem(cfg.steps)
    dtype = omlp.DTYPES[cfg.dtype]
    model = omlp.init_model(config, seed=0, dtype=cfg.dtype)
    oconvert.from_canonical(model, {k: v.astype(cfg.dtype) for k, v in weights.items()})
    optimizer = ooptim.make_optimizer(cfg.optimizer, model.named_parameters())
    scheduler = ooptim.make_scheduler(cfg.optimizer, cfg.schedule, optimizer, cfg.steps)
    losses, out = [], []
    for x, y in batches:
        xt, yt = torch.as_tensor(x, dtype=dtype), torch.as_tensor(y)
        loss = omlp.train_step(model, optimizer, xt, yt, clip_norm=cfg.optimizer.clip_norm)
        scheduler.step()
        losses.append(float(loss))
        out.append(oconvert.to_canonical(model))
    return Trajectory(
        np.array(losses), out, oconvert.optimizer_to_canonical(model, optimizer, cfg.steps)
    )


def max_weight_gap(a: list[Weights], b: list[Weights]) -> float:
    """The largest |Δ| over every weight after every update."""
    return max(
        float(np.max(np.abs(x[k].astype(np.float64) - y[k])))
        for x, y in zip(a, b, strict=True)
        for k in x
    )
