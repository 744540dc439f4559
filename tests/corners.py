"""The grid's other two corners on the scaffold of tests/pairs.py: each trained from canonical
weights on given batches, as `rounding.Trainer`s.

- `nnx_model`, `torch_func_model`: a corner's model holding canonical weights.
- `oop_jax_trainer`, `functional_torch_trainer`: the corner's own loop under a `TrainConfig`
  (`nnx.Optimizer` over the functional side's optax chain; the pure torch optimizer of
  `crossover.functional_torch.optim`), recording the loss of every update and the weights at
  the end, so that `rounding.check_trajectories` judges any two corners, and runs each again
  from a start one ulp away for its control.
- `TRAINERS`: all four corners' trainers by side name, the two native sides' from pairs.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np
import rounding
import torch
from flax import nnx
from pairs import TWINS, Run, Weights, _floats_in, cast, functional_trainer, oop_trainer

import crossover.functional_torch.convert as tconvert
import crossover.functional_torch.interface as tinterface
import crossover.functional_torch.models
import crossover.functional_torch.optim as toptim
import crossover.oop_jax.convert as nconvert
import crossover.oop_jax.interface as ninterface
import crossover.oop_jax.models
from shared import sides
from shared.config import TrainConfig

NNX = crossover.oop_jax.models.MODELS
TORCH_FUNC = crossover.functional_torch.models.MODELS


# -- a corner's model from canonical weights --
def nnx_model(name: str, config, weights: Weights, dtype: str = "float64"):
    """The Flax NNX module holding `weights` (and batch statistics) in `dtype`."""
    with jax.enable_x64(dtype == "float64"):
        model = ninterface.init(NNX[name], config, seed=0, dtype=dtype)
        return nconvert.from_canonical(model, cast(weights, dtype))


def torch_func_model(name: str, config, weights: Weights, dtype: str = "float64"):
    """`(skeleton, params, buffers)` of the functions-on-torch corner holding `weights`."""
    module = TORCH_FUNC[name]
    params, buffers = tinterface.init(module, config, seed=0, dtype=dtype)
    params, buffers = tconvert.from_canonical(params, buffers, cast(weights, dtype))
    return module.skeleton(config, dtype=dtype), params, buffers


# -- the corners' loops --
def oop_jax_trainer(name: str, config, cfg: TrainConfig, *, pure=None):
    """The objects-on-JAX corner under `cfg` as a `rounding.Trainer`: its `train_step` under
    `nnx.jit`, or the same step as `nnx.split`, `pure(step)` (a jit: `jax.jit`, or the row's
    compiler options from tests/pairs.py's TWINS) and `nnx.update`. The compiled pure step is
    made once and shared by every run of the trainer (the twin and its controls)."""
    module, compiled = NNX[name], {}

    def train(start: Weights, batches: Sequence[tuple]) -> Run:
        with jax.enable_x64(cfg.dtype == "float64"):
            model = nnx_model(name, config, start, cfg.dtype)
            optimizer = ninterface.optimizer(model, cfg)
            losses = []
            if pure:
                model.train()
                graphdef, state = nnx.split((model, optimizer))
                if "step" not in compiled:
                    compiled["step"] = pure(module.pure_step(graphdef))
                step = compiled["step"]
                for batch in batches:
                    state, loss = step(state, *_floats_in(batch, cfg.dtype))
                    losses.append(float(loss))
                nnx.update((model, optimizer), state)
            else:
                step = ninterface.uniform_step(module, model, optimizer)
                losses = [float(step(*_floats_in(b, cfg.dtype))) for b in batches]
            weights = nconvert.to_canonical(model)
        return Run(np.array(losses), weights, {len(batches): weights}, None)

    return train


def functional_torch_trainer(
    name: str, config, cfg: TrainConfig, *, compiled: str = "", at=(), opt_state: bool = False
):
    """The functions-on-torch corner under `cfg` as a `rounding.Trainer`: its pure step over
    dicts, eager, or under `torch.compile(backend=compiled)`; the weights recorded after the
    updates in `at` and the optimizer state at the end where asked, as `pairs.run_oop` does."""
    module = TORCH_FUNC[name]
    optimizer = toptim.make_optimizer(cfg.optimizer, cfg.schedule, cfg.dtype)

    def train(start: Weights, batches: Sequence[tuple]) -> Run:
        skeleton, params, buffers = torch_func_model(name, config, start, cfg.dtype)
        step = tinterface.uniform_step(module, optimizer, skeleton)
        step = torch.compile(step, backend=compiled, fullgraph=True) if compiled else step
        state, losses, seen = optimizer.init(params), [], {}
        for k, batch in enumerate(batches, start=1):
            x, y = map(torch.from_numpy, _floats_in(batch, cfg.dtype))
            params, buffers, state, loss = step(params, buffers, state, x, y, k)
            losses.append(float(loss))
            if k in at or k == len(batches):
                seen[k] = tconvert.to_canonical(params, buffers)
        n = len(batches)
        opt = tconvert.opt_state_to_canonical(state, n) if opt_state else None
        return Run(np.array(losses), seen[n], seen, opt)

    return train


def trainer(side: str, name: str, config, cfg: TrainConfig):
    """The trainer of `side` (a name of `shared.sides`) for model `name` under `cfg`; the
    objects-on-JAX corner's pure loop, compiled as the functional side's step is (its row of
    TWINS): `nnx.jit` compiles with the suite's quick options, whose convolutions run 3-5x
    slower, and costs Python time per call; tests/test_grid.py proves the two loops give the
    same bits."""
    if side == "oop_jax":
        return oop_jax_trainer(name, config, cfg, pure=TWINS[name].jit)
    return {
        "functional": functional_trainer,
        "oop": oop_trainer,
        "functional_torch": functional_torch_trainer,
    }[side](name, config, cfg)


# -- the grid's edges, judged by one set of controls --
def check_grid(trainers: dict, start: Weights, batches: Sequence[tuple], what: str) -> dict:
    """Train every side (`trainers`: side name -> `rounding.Trainer`) once from `start` and
    twice more as its rounding controls, then judge each edge of the grid (the two rows and the
    two columns, and the diagonal functional/oop) as `rounding.check_trajectories` judges a
    pair: within FACTOR of the larger control gap of its two sides, plus the floor. Each side's
    runs are shared by its edges (12 runs for five edges, where five pairwise checks would take
    30). Returns `edge -> Verdict`, an edge named `"oop/oop_jax"`, its runs in that order."""
    runs, controls = {}, {}
    for side, train in trainers.items():
        runs[side] = train(start, batches)
        controls[side] = [
            rounding.Gap.between(runs[side], train(*rounding.perturbed(start, batches, seed)))
            for seed in rounding.CONTROL_ORDERS
        ]
    out = {}
    edges = [("functional", "oop")]  # the diagonal: the package's two original sides
    for s in trainers:
        for other in (sides.same_paradigm(sides.side(s)), sides.same_framework(sides.side(s))):
            edges.append(tuple(sorted((s, other.name))))
    for a, b in dict.fromkeys(edges):  # each edge once, in order
        twins = rounding.Gap.between(runs[a], runs[b])
        gaps = controls[a] + controls[b]
        control = rounding.Gap(max(g.loss for g in gaps), max(g.weights for g in gaps))
        floor = rounding.floor_of(runs[a], runs[b])
        for field in ("loss", "weights"):
            t, c, f = (getattr(g, field) for g in (twins, control, floor))
            assert t <= rounding.FACTOR * c + f, (
                f"{what} {a} vs {b}: {field} gap {t:.3e} is {t / max(c, 1e-300):.1f}x the "
                f"rounding control's {c:.3e} (allowed: {rounding.FACTOR:g}x + {f:.1e})"
            )
        out[f"{a}/{b}"] = rounding.Verdict(runs[a], runs[b], twins, control, floor)
    return out


def check_with_corners(name: str, config, cfg: TrainConfig, native: tuple, start: Weights,
                       batches: Sequence[tuple], what: str) -> rounding.Verdict:  # fmt: skip
    """A float32 trajectory of a grid model judged on all four corners at once: `native` are
    the functional and OOP trainers a model test built (with what it records), the corners'
    are added, and every edge is judged by `check_grid`; prints each edge (the table of
    docs/paradigms.md) and returns the functional/oop verdict, as `check_trajectories` would.
    The model test's own runs and controls serve the grid, so the corners cost only their own."""
    assert cfg.dtype == "float32", "float64 pairs are proved by check_trajectories"
    kinds = {v.dtype.name for v in start.values() if v.dtype.kind == "f"}
    assert kinds == {"float32"}, f"start from float32 weights (one ulp of float32), not {kinds}"
    trainers = {"functional": native[0], "oop": native[1],
                "oop_jax": trainer("oop_jax", name, config, cfg),
                "functional_torch": trainer("functional_torch", name, config, cfg)}  # fmt: skip
    verdicts = check_grid(trainers, start, batches, what)
    for edge, v in verdicts.items():
        same = v.twins.loss == 0 and v.twins.weights == 0
        print(f"{what} {edge}: {v}; bit-identical: {same}")
    return verdicts["functional/oop"]
