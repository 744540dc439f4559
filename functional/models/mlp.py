"""The MLP at level 2 on the functional side: an equinox module, a pure loss, a pure step.

Twin of `oop/models/mlp.py`; read the two side by side. Here the model is an immutable pytree:
the step takes `(params, opt_state, x, y)` and returns new ones, and `jax.jit` compiles it once.
The model sees one example at a time and `jax.vmap` adds the batch, where the torch twin is
written for a batch from the start.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray, PyTree

from shared.config import MLPConfig

# -- config --

DTYPES = {"float32": jnp.float32, "float64": jnp.float64}
HAS_STATE = False  # init_model returns the model alone
STOCHASTIC = False  # the step takes no key


# -- model --
class MLP(eqx.Module):
    """`config.layers` hidden ReLU layers, then a linear head producing logits.

    Attribute names and order mirror `oop.models.mlp.MLP`, so the canonical names
    (`layers.0.weight`, ...) are the attribute paths on both sides. `eqx.nn.Linear` stores
    `weight` as `(out, in)`, torch's layout, and draws both weight and bias from
    U(-1/sqrt(in), 1/sqrt(in)), torch's default distribution (not the same numbers: the two
    sides start from the same weights only when one loads the other's `init.safetensors`).

    **Arguments:**

    - `config`: the sizes, an `MLPConfig`.
    - `key`: a PRNG key for the initial weights (keyword-only).
    - `dtype`: `jnp.float32` or `jnp.float64`.
    """

    layers: tuple[eqx.nn.Linear, ...]

    def __init__(self, config: MLPConfig, *, key: PRNGKeyArray, dtype=jnp.float32):
        keys = jax.random.split(key, len(config.sizes))
        self.layers = tuple(
            eqx.nn.Linear(fan_in, fan_out, key=k, dtype=dtype)
            for (fan_in, fan_out), k in zip(config.sizes, keys, strict=True)
        )

    def __call__(self, x: Float[Array, " features"]) -> Float[Array, " classes"]:
        """One example: `(features,)` -> `(classes,)` logits."""
        for layer in self.layers[:-1]:
            x = jax.nn.relu(layer(x))  # (width,)
        return self.layers[-1](x)  # (classes,)


def init_model(config: MLPConfig, *, key: PRNGKeyArray, dtype: str = "float32") -> MLP:
    return MLP(config, key=key, dtype=DTYPES[dtype])


# -- loss --
def loss_fn(
    model: MLP, x: Float[Array, "batch features"], y: Int[Array, " batch"]
) -> Float[Array, ""]:
    """Mean softmax cross-entropy over the batch, as `F.cross_entropy` (reduction="mean")."""
    logits = jax.vmap(model)(x)  # (batch, classes): vmap adds the batch axis
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


# -- train step --
def make_step(
    optimizer: optax.GradientTransformation, static: PyTree, loss_of: Callable | None = None
) -> Callable:
    """A pure update: `(params, opt_state, x, y, *extra) -> (params, opt_state, loss)`.

    `params` holds the model's arrays and `static` the rest (`eqx.partition(model,
    eqx.is_array)`), so `jax.jit(make_step(...))` sees arrays only and traces once. Nothing
    is mutated: the caller rebinds the returned params and state, where the torch twin's
    `optimizer.step()` changes the weights in place. `loss_of(model, x, y, *extra)` (default:
    this file's `loss_fn`) lets another model reuse the step; `extra` is, say, a dropout key.
    """
    loss_of = loss_of or loss_fn

    def step(params, opt_state, x, y, *extra):
        def objective(p):
            return loss_of(eqx.combine(p, static), x, y, *extra)

        loss, grads = jax.value_and_grad(objective)(params)  # grads: same pytree as params
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return params, opt_state, loss

    return step


# -- evaluate --
@eqx.filter_jit
def evaluate(
    model: MLP, x: Float[Array, "batch features"], y: Int[Array, " batch"]
) -> tuple[Float[Array, ""], Float[Array, ""]]:
    """`(mean loss, accuracy)` on a whole split; a pure function, so no eval mode is needed."""
    logits = jax.vmap(model)(x)  # (batch, classes)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    accuracy = (jnp.argmax(logits, axis=-1) == y).mean(dtype=logits.dtype)  # not float32: traps.md
    return loss, accuracy
