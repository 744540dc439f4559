"""The rungs of the MLP ladder behind one small interface, so every pair is tested alike.

Each implementation starts from the same canonical weights and exposes the same five things:
logits, loss, the gradient of every parameter (by canonical name), one optimizer update, and
its current weights (`pairs.canonical`, so a comparison never cares which side a value came
from). The level-2 twins of every other model are built by `tests/pairs.py`.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib

import equinox as eqx
import jax
import numpy as np
import torch
from pairs import Trajectory, Weights, canonical, cast
from quick import quick_jit

import functional.convert as fconvert
import functional.level1.mlp as f1
import functional.models.mlp as f2
import oop.convert as oconvert
import oop.level1.mlp as o1
import oop.models.mlp as o2
import shared.level0.mlp as l0
from functional.optim import make_optimizer as functional_optimizer
from oop.optim import make_optimizer as oop_optimizer
from shared.config import MLPConfig, TrainConfig

# The MLP's optimizer cases, shared by its twin tests (test_mlp.py) and the ladder
# (test_ladder.py): two in float32 and float64, the remaining SGD and Adam options in float64.
OPTIMIZERS = {
    "sgd-momentum": dict(name="sgd", lr=0.05, momentum=0.9),
    "adam": dict(name="adam", lr=1e-3),
    # float64 only: the remaining SGD and Adam options of the training CLI
    "sgd-nesterov-decay": dict(name="sgd", lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam-decay": dict(name="adam", lr=1e-3, beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=1e-3),
}
CASES = [
    (dtype, opt)
    for dtype in ("float64", "float32")
    for opt in OPTIMIZERS
    if dtype == "float64" or opt in ("sgd-momentum", "adam")
]


def _x64(method):
    """Run a functional method with JAX's 64-bit mode matching the implementation's dtype."""

    @functools.wraps(method)
    def wrapper(self, *args):
        with jax.enable_x64(self.dtype == "float64"):
            return method(self, *args)

    return wrapper


class Level0:
    name = "level0"

    def __init__(self, weights: Weights, config: MLPConfig, cfg: TrainConfig):
        self.dtype, self.cfg = cfg.dtype, cfg
        self.params = {k: v.astype(cfg.dtype) for k, v in weights.items()}
        self.opt_state = l0.OPTIMIZERS[cfg.optimizer.name][0](self.params)

    def logits(self, x):
        return l0.forward(self.params, x)[0]

    def loss(self, x, y):
        return l0.loss_and_grads(self.params, x, y)[0]

    def grads(self, x, y):
        return l0.loss_and_grads(self.params, x, y)[1]

    def step(self, x, y):
        self.params, self.opt_state, loss = l0.train_step(
            self.params, self.opt_state, x, y, self.cfg
        )
        return loss

    def weights(self):
        return dict(self.params)


class _Functional:
    """What both functional rungs share: x64 set per call, a jitted pure step, named weights."""

    def __init__(self, weights: Weights, config: MLPConfig, cfg: TrainConfig):
        self.dtype, self.cfg = cfg.dtype, cfg
        self._setup(weights, config, cfg)

    @_x64
    def step(self, x, y):
        self.params, self.opt_state, loss = self._step(self.params, self.opt_state, x, y)
        return float(loss)

    def weights(self):
        return canonical(self.params)


# One compiled step per configuration, shared by every instance (the twins' run, the rounding
# controls, the pairs a rung belongs to). Compiled quickly: the MLP's step is a few matrix
# products, as fast either way, and LLVM's optimisations only cost compile time (tests/quick.py).
@functools.cache
def _level1_step(cfg: TrainConfig):
    return quick_jit(f1.make_step(cfg))


@functools.cache
def _level2_step(config: MLPConfig, cfg: TrainConfig):
    with jax.enable_x64(cfg.dtype == "float64"):
        template = fconvert.skeleton(f2.init_model, config, dtype=cfg.dtype)
    static = eqx.partition(template, fconvert.is_array_or_shape)[1]
    optimizer = functional_optimizer(cfg.optimizer, cfg.schedule, cfg.dtype)
    return optimizer, quick_jit(f2.make_step(optimizer, static))


# The forward pass, loss and gradient, compiled once (op by op they compile every primitive)
_F1_APPLY, _F1_LOSS = quick_jit(f1.apply), quick_jit(f1.loss_fn)
_F1_GRAD = quick_jit(jax.grad(f1.loss_fn))
_F2_APPLY = eqx.filter_jit(lambda model, x: jax.vmap(model)(x))
_F2_LOSS = eqx.filter_jit(f2.loss_fn)
_F2_GRAD = eqx.filter_jit(eqx.filter_grad(f2.loss_fn))


class FunctionalLevel1(_Functional):
    name = "functional.level1"

    @_x64
    def _setup(self, weights, config, cfg):
        template = jax.eval_shape(
            lambda: f1.init(config, key=jax.random.PRNGKey(0), dtype=cfg.dtype)
        )  # shapes: nothing drawn
        self.params = fconvert.from_canonical(template, weights)
        self.opt_state = f1.OPTIMIZERS[cfg.optimizer.name][0](self.params)
        self._step = _level1_step(cfg)

    @_x64
    def logits(self, x):
        return np.asarray(_F1_APPLY(self.params, x))

    @_x64
    def loss(self, x, y):
        return float(_F1_LOSS(self.params, x, y))

    @_x64
    def grads(self, x, y):
        return canonical(_F1_GRAD(self.params, x, y))


class FunctionalLevel2(_Functional):
    name = "functional.models"

    @_x64
    def _setup(self, weights, config, cfg):
        template = fconvert.skeleton(f2.init_model, config, dtype=cfg.dtype)
        model = fconvert.from_canonical(template, weights)
        self.params, self.static = eqx.partition(model, eqx.is_array)
        optimizer, self._step = _level2_step(config, cfg)
        self.opt_state = optimizer.init(self.params)

    @property
    def model(self):
        return eqx.combine(self.params, self.static)

    @_x64
    def logits(self, x):
        return np.asarray(_F2_APPLY(self.model, x))

    @_x64
    def loss(self, x, y):
        return float(_F2_LOSS(self.model, x, y))

    @_x64
    def grads(self, x, y):
        return canonical(_F2_GRAD(self.model, x, y))


def _tensors(x, y, dtype):
    return torch.as_tensor(x, dtype=o2.DTYPES[dtype]), torch.as_tensor(y)


class OOPLevel1:
    name = "oop.level1"

    def __init__(self, weights: Weights, config: MLPConfig, cfg: TrainConfig):
        self.dtype, self.cfg = cfg.dtype, cfg
        self.params = o1.init(config, seed=0, dtype=o2.DTYPES[cfg.dtype])
        with torch.no_grad():
            for name, p in o1.named(self.params):
                p.copy_(torch.from_numpy(weights[name]))
        self.opt_state = o1.OPTIMIZERS[cfg.optimizer.name][0](self.params)

    def logits(self, x):
        with torch.no_grad():
            return o1.apply(self.params, _tensors(x, [], self.dtype)[0]).numpy()

    def loss(self, x, y):
        with torch.no_grad():
            return float(o1.loss_fn(self.params, *_tensors(x, y, self.dtype)))

    def grads(self, x, y):
        for _, p in o1.named(self.params):
            p.grad = None
        o1.loss_fn(self.params, *_tensors(x, y, self.dtype)).backward()
        return {name: p.grad.numpy().copy() for name, p in o1.named(self.params)}

    def step(self, x, y):
        return float(
            o1.train_step(self.params, self.opt_state, *_tensors(x, y, self.dtype), self.cfg)
        )

    def weights(self):
        return canonical(self.params)


class OOPLevel2:
    name = "oop.models"

    def __init__(self, weights: Weights, config: MLPConfig, cfg: TrainConfig):
        self.dtype, self.cfg = cfg.dtype, cfg
        self.model = oconvert.from_canonical(
            o2.init_model(config, seed=0, dtype=cfg.dtype), weights
        )
        self.optimizer = oop_optimizer(cfg.optimizer, self.model.named_parameters())

    def logits(self, x):
        with torch.no_grad():
            return self.model(_tensors(x, [], self.dtype)[0]).numpy()

    def loss(self, x, y):
        with torch.no_grad():
            return float(o2.loss_fn(self.model, *_tensors(x, y, self.dtype)))

    def grads(self, x, y):
        self.model.zero_grad(set_to_none=True)
        o2.loss_fn(self.model, *_tensors(x, y, self.dtype)).backward()
        return {k: p.grad.numpy().copy() for k, p in self.model.named_parameters()}

    def step(self, x, y):
        return float(o2.train_step(self.model, self.optimizer, *_tensors(x, y, self.dtype)))

    def weights(self):
        return canonical(self.model)


# Each neighbouring pair on the ladder, on each side. The two level-2 twins are the MLP's
# twin pair, built by tests/pairs.py like every other model's (tests/test_mlp.py).
PAIRS = {
    "level0-functional.level1": (Level0, FunctionalLevel1),
    "functional.level1-functional.models": (FunctionalLevel1, FunctionalLevel2),
    "level0-oop.level1": (Level0, OOPLevel1),
    "oop.level1-oop.models": (OOPLevel1, OOPLevel2),
}


@dataclasses.dataclass(frozen=True)
class RungRun(Trajectory):
    first: dict  # the weights after the first update


_RUNS: dict = {}  # every rung's run, by (rung, settings, start, batches): each computed once


def _fingerprint(weights: Weights, batches) -> str:
    h = hashlib.sha1()
    for k in sorted(weights):
        h.update(k.encode())
        h.update(np.ascontiguousarray(weights[k]).tobytes())
    for batch in batches:
        for a in batch:
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def trainer(cls, config: MLPConfig, cfg: TrainConfig):
    """A rung as a `rounding.Trainer`: `(weights, batches) -> RungRun`. Runs are kept: a rung
    belongs to two pairs, and its rounding controls are the same in both."""

    def train(weights, batches):
        key = (cls, config, cfg, _fingerprint(weights, batches))
        if key not in _RUNS:
            impl = cls(cast(weights, cfg.dtype), config, cfg)
            losses, first = [], None
            for x, y in batches:
                losses.append(impl.step(x, y))
                first = first or impl.weights()
            _RUNS[key] = RungRun(np.array(losses), impl.weights(), first)
        return _RUNS[key]

    return train
