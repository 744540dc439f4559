"""The model interface of the objects-on-JAX corner, written down, and the one adapter over it.

Twin of `oop/interface.py`: every `crossover/oop_jax/models/NAME.py` is a `Model`, an
`nnx.Module` and the functions that train and evaluate it in place. As on the OOP side, state
(batch statistics) and random streams (`nnx.Rngs`) live inside the module, so the adapter is
one step for every model. The optimizer is `nnx.Optimizer` over the functional side's optax
chain (`functional.optim.make_optimizer`: the same library, so the same chain), restricted to
the `nnx.Param`s; batch statistics are variables too, but no gradient reaches them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from flax import nnx
from jaxtyping import Array, Float, Int

from crossover.oop_jax.convert import leaf_names
from functional.optim import make_optimizer
from shared.config import TrainConfig


# -- model --
@runtime_checkable
class Model(Protocol):
    """What a model file provides (`crossover.oop_jax.models.MODELS[name]` is one).

    - `HAS_STATE`: the module holds `nnx.BatchStat`s that `train()` mode moves in place.
    - `STOCHASTIC`: `train()` mode draws from the module's own `nnx.Rngs` stream.
    - `DTYPES`: `"float32"` / `"float64"` -> the jnp dtype.
    """

    HAS_STATE: bool
    STOCHASTIC: bool
    DTYPES: dict[str, Any]

    def init_model(self, config: Any, *, seed: int, dtype: str = "float32") -> nnx.Module:
        """The module, its initial weights drawn from `nnx.Rngs(seed)`."""

    def loss_fn(self, model: nnx.Module, x: Array, y: Array) -> Float[Array, ""]:
        """The mean loss of a batch, in whatever mode the module is in."""

    def train_step(self, model: nnx.Module, optimizer: nnx.Optimizer, x: Array, y: Array) -> Array:
        """One update in place (`train()` mode, gradient, `optimizer.update`); the batch's loss
        before it, still on the device."""

    def evaluate(self, model: nnx.Module, x: Array, y: Array) -> tuple[Array, Array]:
        """`(mean loss, accuracy)` in `eval()` mode."""


# -- decoding --
@runtime_checkable
class Decoder(Protocol):
    """A character model read one token at a time (the gpt), as on the OOP side."""

    def reset_decode(self, batch: int = 1) -> None:
        """Forget what was read: an empty KV cache, kept in the module's variables."""

    def decode(self, token: Int[Array, " batch"]) -> Float[Array, "batch V"]:
        """One token per sequence in, the next token's logits out; the cache moves in place."""


# -- adapter --
def init(module: Model, config: Any, *, seed: int, dtype: str) -> nnx.Module:
    """The module for every model: its state and random streams, if any, live inside."""
    return module.init_model(config, seed=seed, dtype=dtype)


def optimizer(model: nnx.Module, cfg: TrainConfig) -> nnx.Optimizer:
    """`nnx.Optimizer` over the run's optax chain (clipping and schedule included), for the
    model's parameters only (`wrt=nnx.Param`); `no_decay` patterns read torch's names, as on
    every side (`convert.leaf_names`: NNX's `wte.embedding` is `wte.weight`)."""
    tx = make_optimizer(cfg.optimizer, cfg.schedule, cfg.dtype, names_of=leaf_names(model))
    return nnx.Optimizer(model, tx, wrt=nnx.Param)


def uniform_step(
    module: Model, model: nnx.Module, optimizer: nnx.Optimizer
) -> Callable[[Array, Array], Array]:
    """Every model's step as `(x, y) -> loss`, updating `model` and `optimizer` in place."""

    def uniform(x: Array, y: Array) -> Array:
        return module.train_step(model, optimizer, x, y)

    return uniform


def evaluate(module: Model, model: nnx.Module, x: Array, y: Array) -> tuple[float, float]:
    """`(mean loss, accuracy)` of every model on a split, in `eval()` mode."""
    loss, accuracy = module.evaluate(model, x, y)
    return float(loss), float(accuracy)
