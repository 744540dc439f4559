"""The CNN with Dropout on the functional side: every random draw consumes a key the caller
split, and nothing random happens without one.

Twin of `oop/models/cnn_dropout.py`, where `nn.Dropout` draws from torch's global generator,
seeded once. Here the step takes a key, splits it into one key per example (the model sees one
example inside `jax.vmap`) and per dropout layer; the same key gives the same masks, always.
Random streams cannot match across frameworks, so a test-only `mask` argument lets the suite
feed the same NumPy mask to both sides and compare whole trajectories.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray, PyTree

from functional.layers import Dropout, make_convs
from functional.models import mlp
from shared.config import CNNDropoutConfig

# -- config --

DTYPES = {"float32": jnp.float32, "float64": jnp.float64}
HAS_STATE = False  # init_model returns the model alone
STOCHASTIC = True  # the step takes a key; the training loop gives update k `fold_in(key, k)`


# -- model --
class CNNDropout(eqx.Module):
    """`cnn` with Dropout on the flattened features, before the head.

    **Arguments:**

    - `config`: the sizes and the dropout probability, a `CNNDropoutConfig`.
    - `key`: a PRNG key for the initial weights (keyword-only).
    - `dtype`: `jnp.float32` or `jnp.float64`.
    """

    convs: tuple[eqx.nn.Conv2d, ...]
    pool: eqx.nn.MaxPool2d
    dropout: Dropout
    head: eqx.nn.Linear
    image_shape: tuple[int, int, int] = eqx.field(static=True)

    def __init__(self, config: CNNDropoutConfig, *, key: PRNGKeyArray, dtype=jnp.float32):
        k_convs, k_head = jax.random.split(key)
        self.convs = make_convs(config, key=k_convs, dtype=dtype)
        self.pool = eqx.nn.MaxPool2d(2, stride=2)
        self.dropout = Dropout(config.dropout)
        self.head = eqx.nn.Linear(
            config.head_features, config.out_features, key=k_head, dtype=dtype
        )
        self.image_shape = config.image_shape

    def __call__(
        self,
        x: Float[Array, " features"],
        *,
        key: PRNGKeyArray | None = None,
        inference: bool = False,
        mask: Bool[Array, " hidden"] | None = None,
    ) -> Float[Array, " classes"]:
        """One example -> logits. Training needs a `key` (or a `mask`); inference needs none."""
        x = x.reshape(self.image_shape)  # (C, H, W)
        for conv in self.convs:
            x = self.pool(jax.nn.relu(conv(x)))
        # one dropout layer takes the example's key whole; with more, split it once per layer
        x = self.dropout(x.reshape(-1), key=key, inference=inference, mask=mask)
        return self.head(x)  # (classes,)


def init_model(
    config: CNNDropoutConfig, *, key: PRNGKeyArray, dtype: str = "float32"
) -> CNNDropout:
    return CNNDropout(config, key=key, dtype=DTYPES[dtype])


# -- loss --
def loss_fn(
    model: CNNDropout,
    x: Float[Array, "batch features"],
    y: Int[Array, " batch"],
    *,
    key: PRNGKeyArray | None,
    masks: Bool[Array, "batch hidden"] | None = None,
) -> Float[Array, ""]:
    """Mean cross-entropy in training mode: one key per example, split from `key`."""
    keys = jax.random.split(key, len(x)) if masks is None else None

    def one(x, k, m):
        return model(x, key=k, mask=m)

    logits = jax.vmap(one)(x, keys, masks)  # (batch, classes)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


# -- train step --
def make_step(optimizer: optax.GradientTransformation, static: PyTree) -> Callable:
    """A pure update `(params, opt_state, x, y, key, masks=None) -> (params, opt_state, loss)`:
    the MLP's step, with this file's loss.

    The caller gives every step a fresh `key` (`functional.train` passes `fold_in(key, k)` to
    update k); reusing one would draw the same masks again.
    """

    def loss_of(model, x, y, key, masks=None):
        return loss_fn(model, x, y, key=key, masks=masks)

    return mlp.make_step(optimizer, static, loss_of=loss_of)


# -- evaluate --
@eqx.filter_jit
def evaluate(
    model: CNNDropout, x: Float[Array, "batch features"], y: Int[Array, " batch"]
) -> tuple[Float[Array, ""], Float[Array, ""]]:
    """`(mean loss, accuracy)` in inference mode: Dropout is the identity, no key needed."""
    logits = jax.vmap(lambda e: model(e, inference=True))(x)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return loss, (jnp.argmax(logits, axis=-1) == y).mean(dtype=logits.dtype)
