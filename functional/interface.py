"""The model interface of the functional side, written down, and the one adapter over it.

Twin of `oop/interface.py`. Every `functional/models/NAME.py` that `shared.registry` names is a
`Model`: plain functions over equinox modules, with the model's parameters, its state (if any)
and the PRNG key (if it draws) passed in and returned. A model declares which of the two it
has, `HAS_STATE` and `STOCHASTIC`, and the adapter below turns the four combinations into one
signature for the training loop, the benchmarks and the evaluation script, so none of them
guesses at run time. The character models are also `Decoder`s, read one token at a time.

State goes with its output in the order `(output, state)` everywhere (`model(x, state)`,
`loss_fn(...)`, every layer), as `equinox.nn.BatchNorm` returns it. `decode` alone takes and
returns `(state, ...)`: it is the body of a `jax.lax.scan`, whose carry comes first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import jax
import numpy as np
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray, PyTree

from functional.convert import skeleton, to_device


# -- model --
@runtime_checkable
class Model(Protocol):
    """What a model file provides (`functional.models.MODELS[name]` is one).

    - `HAS_STATE`: `init_model` returns `(model, state)`, an `eqx.nn.State` (the BatchNorm
      statistics), which `loss_fn`, the step and `evaluate` take after the model and return.
    - `STOCHASTIC`: `loss_fn` and the step take a PRNG key, the last argument; the same key
      gives the same draws.
    - `DTYPES`: `"float32"` / `"float64"` -> the jnp dtype.
    """

    HAS_STATE: bool
    STOCHASTIC: bool
    DTYPES: dict[str, Any]

    def init_model(self, config: Any, *, key: PRNGKeyArray, dtype: str = "float32") -> Any:
        """`model`, or `(model, state)` when HAS_STATE: the initial weights drawn from `key`."""

    def loss_fn(self, model: PyTree, *args: Any) -> Any:
        """`(model, [state,] x, y[, key])` -> the mean loss, or `(loss, state)` when HAS_STATE."""

    def make_step(self, optimizer: optax.GradientTransformation, static: PyTree) -> Callable:
        """A pure update `(params, [state,] opt_state, x, y[, key])` -> `(params, [state,]
        opt_state, loss)`, for `jax.jit`; `static` is `eqx.partition`'s second half."""

    def evaluate(self, model: PyTree, *args: Any) -> tuple[Float[Array, ""], Float[Array, ""]]:
        """`(model, [state,] x, y)` -> `(mean loss, accuracy)` in inference mode (no key)."""


# -- decoding --
@runtime_checkable
class Decoder(Protocol):
    """A character model read one token at a time (rnn, gru and lstm on pycorpus; the gpt)."""

    def init_decode(self) -> PyTree:
        """The state `decode` starts from: zero carries, or an empty KV cache."""

    def decode(self, state: PyTree, token: Int[Array, ""]) -> tuple[PyTree, Float[Array, " V"]]:
        """`(state, token) -> (state, logits of the next token)`: a `lax.scan` body."""


# -- adapter --
def init(module: Model, config: Any, *, key: PRNGKeyArray, dtype: str) -> tuple[PyTree, Any]:
    """`(model, state)` for every model: `state` is None where the model has none."""
    made = module.init_model(config, key=key, dtype=dtype)
    return made if module.HAS_STATE else (made, None)


def template(module: Model, config: Any, *, dtype: str) -> tuple[PyTree, Any]:
    """`init`'s result with every array a `jax.ShapeDtypeStruct` (`convert.skeleton`): what
    weights are loaded into, without drawing any."""
    made = skeleton(module.init_model, config, dtype=dtype)
    return made if module.HAS_STATE else (made, None)


def uniform_step(
    module: Model, optimizer: optax.GradientTransformation, static: PyTree, seed: int
) -> Callable:
    """Every model's step as `(params, state, opt_state, x, y, k) -> (params, state, opt_state,
    loss)` for update `k`; `state` is None (and comes back None) without state. A model that
    draws gets the key `fold_in(dropout_key, k)`, with or without state: one key per update,
    derived rather than carried, so a resumed run draws the masks an uninterrupted one would."""
    step = module.make_step(optimizer, static)
    dropout_key = jax.random.fold_in(jax.random.PRNGKey(seed), 1)  # not the init key's stream

    def uniform(params, mstate, opt_state, x, y, k):
        key = (jax.random.fold_in(dropout_key, k),) if module.STOCHASTIC else ()
        if module.HAS_STATE:
            return step(params, mstate, opt_state, x, y, *key)
        params, opt_state, loss = step(params, opt_state, x, y, *key)
        return params, mstate, opt_state, loss

    return uniform


def evaluate(module: Model, model: PyTree, mstate: Any, x, y) -> tuple[float, float]:
    """`(mean loss, accuracy)` of every model on a split, in inference mode."""
    extra = (mstate,) if module.HAS_STATE else ()
    loss, accuracy = module.evaluate(model, *extra, x, y)
    return float(loss), float(accuracy)


def ensemble_step(
    module: Model, optimizer: optax.GradientTransformation, static: PyTree, seed: int
) -> Callable:
    """`uniform_step` mapped over a stack of models by `jax.vmap`: every array of `params`,
    `state`, `opt_state`, `x` and `y` has a leading member axis, `k` is shared. One program
    updates all members at once; member i computes what its own run would."""
    return jax.vmap(uniform_step(module, optimizer, static, seed), in_axes=(0, 0, 0, 0, 0, None))


def stack(trees: list[PyTree]) -> PyTree:
    """Members' pytrees (the same structure) -> one pytree whose arrays have a member axis.
    Stacked on the host and copied (`to_device`): eager `jnp.stack`, like `jnp.asarray`,
    would compile one program per array shape."""
    return jax.tree_util.tree_map(lambda *xs: to_device(np.stack(xs)), *trees)


def member(tree: PyTree, i: int) -> PyTree:
    """Member `i` of a stacked pytree, as NumPy arrays on the host (for its checkpoints and its
    evaluation; slicing on the device would compile a program per array shape)."""
    return jax.tree_util.tree_map(lambda x: np.asarray(x)[i], tree)
