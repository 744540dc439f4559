"""The model interface of the Keras side, written down, and the one adapter over it.

Twin of `oop/interface.py`: every `keras3/models/NAME.py` is a `Model`, a `keras.Model` and
the functions that compile and evaluate it. State (BatchNorm's statistics) and randomness
(each Dropout's seed generator) are variables inside the model, so one adapter serves every
model; `fit` runs the steps. The optimizer is `keras3.optim`'s, torch's formulas as a Keras
optimizer, its schedule inside, `no_decay` read against the canonical names.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import keras

from keras3.convert import names_by_path
from keras3.optim import TorchOptimizer, make_optimizer
from shared.config import TrainConfig


# -- model --
@runtime_checkable
class Model(Protocol):
    """What a model file provides (`keras3.models.MODELS[name]` is one).

    - `HAS_STATE`: the model holds non-trainable variables that training moves (BatchNorm's).
    - `STOCHASTIC`: training draws from the model's own seed generators.
    - `DTYPES`: `"float32"` / `"float64"` -> Keras's dtype name.
    """

    HAS_STATE: bool
    STOCHASTIC: bool
    DTYPES: dict[str, Any]

    def init_model(self, config: Any, *, seed: int, dtype: str = "float32") -> keras.Model:
        """The model, its initial weights drawn from Keras's global seed."""

    def loss_fn(self, model: keras.Model, x: Any, y: Any, *, training: bool = True) -> Any:
        """The mean loss of a batch, as `compile`'s loss computes it."""

    def fit_loss(self, model: keras.Model) -> keras.losses.Loss:
        """The `keras.losses.Loss` that `compile` takes."""

    def compile_model(self, model: keras.Model, optimizer: Any, **kwargs: Any) -> keras.Model:
        """`model.compile` with that loss."""

    def evaluate(self, model: keras.Model, x: Any, y: Any) -> tuple[float, float]:
        """`(mean loss, accuracy)` with `training=False`."""


# -- adapter --
def init(module: Model, config: Any, *, seed: int, dtype: str) -> keras.Model:
    """The model for every model: its state and seed generators, if any, live inside."""
    return module.init_model(config, seed=seed, dtype=dtype)


def optimizer(model: keras.Model, cfg: TrainConfig) -> TorchOptimizer:
    """The run's optimizer with its schedule, built on the model's trainable variables (so that
    a checkpoint's slots can be loaded before the first step)."""
    decays = {path: cfg.optimizer.decays(name) for path, name in names_by_path(model).items()}
    opt = make_optimizer(cfg.optimizer, cfg.schedule, cfg.steps, decays=decays)
    opt.build(model.trainable_variables)
    return opt


def compile_model(
    module: Model, model: keras.Model, optimizer: TorchOptimizer, *, jit_compile="auto"
) -> keras.Model:
    """Every model's `compile`: its loss, the optimizer, Keras's choice of compilation."""
    return module.compile_model(
        model, optimizer, loss=module.fit_loss(model), jit_compile=jit_compile
    )


def evaluate(module: Model, model: keras.Model, x: Any, y: Any) -> tuple[float, float]:
    """`(mean loss, accuracy)` of every model on a split, with `training=False`."""
    return module.evaluate(model, x, y)
