"""One scaffold for every twin test: build a registered model's twin pair from one canonical
checkpoint, train both sides, and measure how far apart they are.

- `F64_TOL` and `max_abs_diff`: what "the same" means in float64, and the one gap measurement.
- `TWINS`: the adapter table, one row per name of `functional.models.MODELS` and
  `oop.models.MODELS`. Everything that differs between models (which compiler options its
  step wants, what a batch feeds each side) is a field of its row, and whether it threads a
  state is the model's own `HAS_STATE`;
  the code below reads the rows and never a model's name.
- `functional_model`, `oop_model`, `pair`: the twins, from canonical weights (and buffers),
  moved between the sides by name through `functional/convert.py` and `oop/convert.py`.
- `run_functional`, `run_oop`: the two training loops, with any optimizer (the package's or a
  trap's naive port), recording the loss of every update and the weights wherever asked.
- `trainers`: both loops from one `TrainConfig` through the package's own factories, as the
  `(start, batches) -> Trajectory` functions `rounding.check_trajectories` runs twice more from
  a start one ulp away (the rounding control that judges a float32 trajectory).

This is the base of the test helpers: `rounding.py` (float32 bounds and controls), `twins.py`
(the MLP ladder), `optim_twins.py` and `traps/harness.py` import from it, never the reverse.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import torch
from quick import quick_jit, run_jit

import functional.convert as fconvert
import functional.interface as finterface
import functional.models
import functional.optim as foptim
import oop.convert as oconvert
import oop.level1.mlp as o1
import oop.models
import oop.optim as ooptim
from shared import data
from shared.config import TrainConfig

F64_TOL = 1e-10  # float64 proves equality: rounding is 1e-16 per operation, 1e-10 catches bugs
Weights = dict[str, np.ndarray]
EVERY_UPDATE = range(1, sys.maxsize)  # `at=EVERY_UPDATE`: record the weights after each update


# -- what a value is, canonically, and how far apart two are --
def canonical(x) -> Weights:
    """`name -> NumPy array` of anything on either side: a canonical dict, a JAX pytree or
    equinox module, an nn.Module, or a level-1 dict of torch tensors."""
    if isinstance(x, torch.nn.Module):
        return oconvert.to_canonical(x)
    if isinstance(x, dict) and x and all(isinstance(v, np.ndarray) for v in x.values()):
        return dict(x)
    leaves = jax.tree_util.tree_leaves(x)
    if leaves and isinstance(leaves[0], torch.Tensor):
        return {k: v.detach().numpy().copy() for k, v in o1.named(x)}
    return fconvert.to_canonical(x)


def cast(weights: Weights, dtype: str) -> Weights:
    """The floating entries in `dtype`; integer buffers (a BatchNorm's count) stay as they are."""
    return {k: v.astype(dtype) if v.dtype.kind == "f" else v for k, v in weights.items()}


def _is_weights(x) -> bool:
    return isinstance(x, dict | torch.nn.Module | eqx.Module)


def _host(x) -> np.ndarray:
    return np.asarray(x.detach() if isinstance(x, torch.Tensor) else x, np.float64)


def _nan_first_max(gaps: list[float]) -> float:
    """The largest gap, NaN if any is (Python's `max` would skip a NaN that is not first)."""
    return float(np.max(gaps, initial=0.0))


def max_abs_diff(a, b) -> float:
    """The largest |a - b|, in float64. Two weight sets (canonical dicts, JAX pytrees, equinox
    or torch modules) are compared by canonical name, and their names must agree; two tuples
    (an LSTM's `(h, c)`) entry by entry; anything else as arrays (NumPy, JAX or torch, or a
    list of them)."""
    if _is_weights(a) or _is_weights(b):
        a, b = canonical(a), canonical(b)
        assert a.keys() == b.keys(), f"different weights: {sorted(a.keys() ^ b.keys())}"
        return _nan_first_max([max_abs_diff(a[k], b[k]) for k in a])
    if isinstance(a, tuple) and isinstance(b, tuple):
        return _nan_first_max([max_abs_diff(x, y) for x, y in zip(a, b, strict=True)])
    return float(np.max(np.abs(_host(a) - _host(b)), initial=0.0))


# -- the adapter table --
def _x_y(batch: tuple) -> tuple:
    return batch


def _x_y_no_key_masks(batch: tuple) -> tuple:
    """Dropout with the masks given: `(x, y, masks)` -> the step's `(x, y, key=None, masks)`."""
    x, y, masks = batch
    return x, y, None, jnp.asarray(masks)


def _torch_x_y(model: torch.nn.Module, batch: tuple) -> tuple:
    return batch


def _torch_masks(model: torch.nn.Module, batch: tuple) -> tuple:
    """Dropout with the masks given: they go into the layer (its test-only `mask`)."""
    x, y, masks = batch
    model.dropout.mask = masks
    return x, y


@dataclass(frozen=True)
class Twin:
    """How this scaffold drives one registered model on each side."""

    name: str  # its name in the registry
    jit: Callable  # compiles its step: quickly or optimised, measured per model (tests/quick.py)
    args: Callable[[tuple], tuple] = _x_y  # a batch -> the functional step's arguments after x, y
    feed: Callable[[torch.nn.Module, tuple], tuple] = _torch_x_y  # a batch -> train_step's x, y

    @property
    def state(self) -> bool:
        """The model's own `HAS_STATE` (BatchNorm): init_model gives (model, state) and the step
        threads the state."""
        return functional.models.MODELS[self.name].HAS_STATE

    def update(self, step, params, state, opt_state, batch):
        """One functional update, as `(params, state, opt_state, loss)` for every model."""
        if self.state:
            return step(params, state, opt_state, *self.args(batch))
        params, opt_state, loss = step(params, opt_state, *self.args(batch))
        return params, state, opt_state, loss


TWINS = {
    "mlp": Twin("mlp", quick_jit),
    "cnn": Twin("cnn", run_jit),
    "cnn_bn": Twin("cnn_bn", run_jit),
    "cnn_dropout": Twin("cnn_dropout", run_jit, args=_x_y_no_key_masks, feed=_torch_masks),
    "rnn": Twin("rnn", quick_jit),
    "gru": Twin("gru", quick_jit),
    "lstm": Twin("lstm", quick_jit),
    "gpt": Twin("gpt", quick_jit),
}
assert TWINS.keys() == functional.models.MODELS.keys() == oop.models.MODELS.keys()
assert all(n == t.name for n, t in TWINS.items())


# -- the twins, from one canonical checkpoint --
@functools.cache
def initial_weights(name: str, config, key: int = 0, dtype: str = "float64") -> Weights:
    """The functional side's initial draw (weights and any buffers) for `config`, canonical:
    the one checkpoint both twins start from. Drawn in `dtype` (float64 unless asked)."""
    with jax.enable_x64(dtype == "float64"):
        module = functional.models.MODELS[name]
        made = finterface.init(module, config, key=jax.random.PRNGKey(key), dtype=dtype)
        return fconvert.to_canonical_with_state(*made)


def functional_model(name: str, config, weights: Weights, dtype: str = "float64"):
    """The equinox twin holding `weights` in `dtype`: a model, or `(model, state)` where the
    model has state (TWINS[name].state)."""
    with jax.enable_x64(dtype == "float64"):
        template = fconvert.skeleton(functional.models.MODELS[name].init_model, config, dtype=dtype)
        if TWINS[name].state:
            return fconvert.from_canonical_with_state(*template, cast(weights, dtype))
        return fconvert.from_canonical(template, cast(weights, dtype))


def oop_model(name: str, config, weights: Weights, dtype: str = "float64") -> torch.nn.Module:
    """The nn.Module twin holding `weights` (and buffers) in `dtype`."""
    module = oop.models.MODELS[name].init_model(config, seed=0, dtype=dtype)
    return oconvert.from_canonical(module, cast(weights, dtype))


def pair(name: str, config, weights: Weights, dtype: str = "float64"):
    """Both twins from the same canonical weights: `(functional, oop)`."""
    return functional_model(name, config, weights, dtype), oop_model(name, config, weights, dtype)


# -- one forward and backward pass on each side --
@dataclass(frozen=True)
class Pass:
    """One side's forward and backward pass on one batch, in training mode."""

    outputs: np.ndarray  # the model's outputs for the batch (logits, or an RNN's predictions)
    loss: float
    grads: Weights  # d loss / d every weight, by canonical name
    model: object  # the side's model the pass ran on (equinox, or nn.Module with its .grad)


@eqx.filter_jit
def _functional_pass(loss_fn, model, x, y, *rest):
    """Outputs, loss and gradients in one compilation (`loss_fn` is static)."""
    loss, grads = eqx.filter_value_and_grad(loss_fn)(model, x, y, *rest)
    return jax.vmap(model)(x, *rest), loss, grads


def forward_and_backward(
    name: str, config, weights: Weights, batch: tuple, dtype: str = "float64"
) -> tuple[Pass, Pass]:
    """Both twins of a model without state from the same `weights` on one batch `(x, y, *rest)`
    (`rest`: an RNN's lengths): `(functional, oop)` outputs, loss and every gradient."""
    assert not TWINS[name].state, f"{name}: its pass threads a state, which this does not"
    batch = _floats_in(batch, dtype)
    with jax.enable_x64(dtype == "float64"):
        model = functional_model(name, config, weights, dtype)
        out, loss, grads = _functional_pass(functional.models.MODELS[name].loss_fn, model, *batch)
        f = Pass(np.asarray(out), float(loss), fconvert.to_canonical(grads), model)
    module = oop_model(name, config, weights, dtype)
    x, y, *rest = map(torch.from_numpy, batch)
    with torch.no_grad():
        out = module(x, *rest).numpy()
    loss = oop.models.MODELS[name].loss_fn(module, x, y, *rest)
    loss.backward()
    grads = {k: p.grad.numpy().copy() for k, p in module.named_parameters()}
    return f, Pass(out, loss.item(), grads, module)


# -- the two training loops --
@dataclass(frozen=True)
class Trajectory:
    losses: np.ndarray  # one per update
    weights: Weights  # canonical, at the end (weights and any state)


@dataclass(frozen=True)
class Run(Trajectory):
    at: dict[
        int, Weights
    ]  # canonical weights (and state) after each update asked for, and the last
    opt_state: Weights | None  # canonical optimizer state at the end, where asked for


def _floats_in(batch: tuple, dtype: str) -> tuple:
    """A NumPy batch with its floating arrays in `dtype` (labels, tokens and masks unchanged)."""
    arrays = map(np.asarray, batch)
    return tuple(a.astype(dtype, copy=False) if a.dtype.kind == "f" else a for a in arrays)


def run_functional(
    name: str, config, start: Weights, batches: Sequence[tuple], tx, step, *, dtype: str,
    at: Container[int] = (), opt_state: bool = False,
) -> Run:  # fmt: skip
    """The functional twin trained from `start` by the compiled `step` of `tx`, one update per
    batch: the loss of each, the weights after the updates in `at` and after the last."""
    twin, n = TWINS[name], len(batches)
    with jax.enable_x64(dtype == "float64"):
        made = functional_model(name, config, start, dtype)
        model, state = made if twin.state else (made, None)
        params, static = eqx.partition(model, eqx.is_array)
        tx_state, losses, seen = tx.init(params), [], {}
        for k, batch in enumerate(batches, start=1):
            params, state, tx_state, loss = twin.update(
                step, params, state, tx_state, _floats_in(batch, dtype)
            )
            losses.append(float(loss))
            if k in at or k == n:
                seen[k] = fconvert.to_canonical_with_state(eqx.combine(params, static), state)
        opt = fconvert.opt_state_to_canonical(tx_state, n) if opt_state else None
        return Run(np.array(losses), seen[n], seen, opt)


def run_oop(
    name: str, config, start: Weights, batches: Sequence[tuple],
    make_optimizer: Callable[[list[tuple[str, torch.nn.Parameter]]], torch.optim.Optimizer],
    *, dtype: str, make_scheduler: Callable | None = None, clip_norm: float | None = None,
    at: Container[int] = (), opt_state: bool = False,
) -> Run:  # fmt: skip
    """The nn.Module twin trained from `start` by its `train_step`, one update per batch:
    `make_optimizer(named_parameters)` builds the optimizer, `make_scheduler(optimizer)` a
    scheduler stepped after each update, `clip_norm` clips between backward and step."""
    twin, n = TWINS[name], len(batches)
    model = oop_model(name, config, start, dtype)
    optimizer = make_optimizer(list(model.named_parameters()))
    scheduler = make_scheduler(optimizer) if make_scheduler else None
    train_step, losses, seen = oop.models.MODELS[name].train_step, [], {}
    for k, batch in enumerate(batches, start=1):
        x, y = twin.feed(model, tuple(map(torch.from_numpy, _floats_in(batch, dtype))))
        losses.append(float(train_step(model, optimizer, x, y, clip_norm=clip_norm)))
        if scheduler is not None:
            scheduler.step()
        if k in at or k == n:
            seen[k] = oconvert.to_canonical(model)
    opt = oconvert.optimizer_to_canonical(model, optimizer, n) if opt_state else None
    return Run(np.array(losses), seen[n], seen, opt)


# -- both loops from one TrainConfig, through the package's factories --
def make_step(name: str, config, tx, dtype: str):
    """The model's functional step for the optax transformation `tx`, compiled as its row says
    (a trap's naive port is an optax chain no TrainConfig describes)."""
    module = functional.models.MODELS[name]
    with jax.enable_x64(dtype == "float64"):
        template = finterface.template(module, config, dtype=dtype)
        static = eqx.partition(template[0], fconvert.is_array_or_shape)[1]
    return TWINS[name].jit(module.make_step(tx, static))


@functools.cache
def compiled_step(name: str, config, cfg: TrainConfig):
    """`(tx, step)` for `cfg`'s optimizer and schedule, compiled once per setting and shared
    by every run that uses it (the twins' run and its rounding controls)."""
    with jax.enable_x64(cfg.dtype == "float64"):
        tx = foptim.make_optimizer(cfg.optimizer, cfg.schedule, cfg.dtype)
    return tx, make_step(name, config, tx, cfg.dtype)


Trainer = Callable[[Weights, Sequence[tuple]], Run]


def functional_trainer(name: str, config, cfg: TrainConfig, **record) -> Trainer:
    """The functional side under `cfg` as a `rounding.Trainer`; `record` as `run_functional`."""
    tx, step = compiled_step(name, config, cfg)

    def train(start: Weights, batches: Sequence[tuple]) -> Run:
        return run_functional(name, config, start, batches, tx, step, dtype=cfg.dtype, **record)

    return train


def oop_trainer(name: str, config, cfg: TrainConfig, **record) -> Trainer:
    """The OOP side under `cfg` as a `rounding.Trainer`: torch.optim and its schedulers built
    by `oop.optim` from the same specs; `record` as `run_oop`."""
    opt, sched = cfg.optimizer, cfg.schedule

    def train(start: Weights, batches: Sequence[tuple]) -> Run:
        return run_oop(
            name, config, start, batches, lambda named: ooptim.make_optimizer(opt, named),
            make_scheduler=lambda o: ooptim.make_scheduler(opt, sched, o, cfg.steps),
            clip_norm=opt.clip_norm, dtype=cfg.dtype, **record,
        )  # fmt: skip

    return train


def trainers(name: str, config, cfg: TrainConfig, **record) -> tuple[Trainer, Trainer]:
    """`(functional, oop)` trainers under `cfg`, for `rounding.check_trajectories`."""
    return functional_trainer(name, config, cfg, **record), oop_trainer(name, config, cfg, **record)


def batches_of(x: np.ndarray, y: np.ndarray, size: int, steps: int, dtype: str) -> list[tuple]:
    """The first `steps` shuffled batches (seed 0) of `(x, y)`, floating arrays in `dtype`."""
    stream = data.batches(*_floats_in((x, y), dtype), size, seed=0)
    return [next(stream) for _ in range(steps)]
