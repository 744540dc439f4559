"""The CNN with BatchNorm on the functional side: the running statistics are a value that goes
into every call and comes back out.

Twin of `oop/models/cnn_bn.py`, where the same statistics are buffers that `forward` changes in
place in `train()` mode. Here `init_model` returns `(model, state)`; the model is called as
`logits, state = model(x, state, inference=...)`; the step takes and returns the state beside
the parameters and the optimizer state. BatchNorm couples the examples of a batch, so the
per-example model reaches across the `vmap` with named-axis collectives (`lax.pmean` over
`axis_name="batch"`), as `equinox.nn.BatchNorm` does.

`BatchNorm2d` (in `functional/layers.py`) is written out, not taken from equinox: equinox's
layer normalises training batches with its running statistics in its default mode, takes
`1 - momentum`, stores the biased variance, and debiases at inference in `mode="batch"`, so it
does not compute what `torch.nn.BatchNorm2d` computes (see docs/traps.md).
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray, PyTree

from functional.layers import BatchNorm2d, make_convs
from shared.config import CNNBNConfig

# -- config --

DTYPES = {"float32": jnp.float32, "float64": jnp.float64}
HAS_STATE = True  # init_model returns (model, state): the BatchNorm statistics
STOCHASTIC = False  # the step takes no key


# -- model --
class CNNBN(eqx.Module):
    """`cnn` with BatchNorm after each conv: conv (no bias) -> BatchNorm -> ReLU -> pool, twice,
    then a linear head. A conv before BatchNorm has no bias: the mean subtraction removes it,
    so its true gradient is zero (see docs/traps.md for what Adam makes of the rounding noise).

    **Arguments:**

    - `config`: the sizes, a `CNNBNConfig`.
    - `key`: a PRNG key for the initial weights (keyword-only).
    - `dtype`: `jnp.float32` or `jnp.float64`.
    """

    convs: tuple[eqx.nn.Conv2d, ...]
    norms: tuple[BatchNorm2d, ...]
    pool: eqx.nn.MaxPool2d
    head: eqx.nn.Linear
    image_shape: tuple[int, int, int] = eqx.field(static=True)

    def __init__(self, config: CNNBNConfig, *, key: PRNGKeyArray, dtype=jnp.float32):
        k_convs, k_head = jax.random.split(key)
        self.convs = make_convs(config, key=k_convs, dtype=dtype, bias=False)
        w = config.width
        self.norms = (BatchNorm2d(w, dtype=dtype), BatchNorm2d(2 * w, dtype=dtype))
        self.pool = eqx.nn.MaxPool2d(2, stride=2)
        self.head = eqx.nn.Linear(
            config.head_features, config.out_features, key=k_head, dtype=dtype
        )
        self.image_shape = config.image_shape

    def __call__(
        self, x: Float[Array, " features"], state: eqx.nn.State, *, inference: bool = False
    ) -> tuple[Float[Array, " classes"], eqx.nn.State]:
        """One example (inside `jax.vmap(..., axis_name="batch")`) -> logits, new state."""
        x = x.reshape(self.image_shape)  # (C, H, W)
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x, state = norm(conv(x), state, inference=inference)
            x = self.pool(jax.nn.relu(x))  # (w, H/2, W/2), then (2w, H/4, W/4)
        return self.head(x.reshape(-1)), state


def init_model(
    config: CNNBNConfig, *, key: PRNGKeyArray, dtype: str = "float32"
) -> tuple[CNNBN, eqx.nn.State]:
    """The model and its initial state (running mean 0, variance 1, count 0)."""
    return eqx.nn.make_with_state(CNNBN)(config, key=key, dtype=DTYPES[dtype])


def batched(model: CNNBN, *, inference: bool) -> Callable:
    """`(x (batch, features), state) -> (logits (batch, classes), state)`: the batch axis is
    mapped and named; the state is shared by the batch (`None` axes in and out)."""

    def one(x, state):
        return model(x, state, inference=inference)

    return jax.vmap(one, axis_name="batch", in_axes=(0, None), out_axes=(0, None))


# -- loss --
def loss_fn(
    model: CNNBN, state: eqx.nn.State, x: Float[Array, "batch features"], y: Int[Array, " batch"]
) -> tuple[Float[Array, ""], eqx.nn.State]:
    """Mean cross-entropy in training mode, and the state after this batch."""
    logits, state = batched(model, inference=False)(x, state)  # (batch, classes)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), state


# -- train step --
def make_step(optimizer: optax.GradientTransformation, static: PyTree) -> Callable:
    """A pure update `(params, state, opt_state, x, y) -> (params, state, opt_state, loss)`.

    The BatchNorm state rides along as the auxiliary output of the loss: it is computed in the
    same forward pass as the gradient, and nothing is differentiated through it.
    """

    def step(params, state, opt_state, x, y):
        def loss_of(p):
            return loss_fn(eqx.combine(p, static), state, x, y)

        (loss, state), grads = jax.value_and_grad(loss_of, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), state, opt_state, loss

    return step


# -- evaluate --
@eqx.filter_jit
def evaluate(
    model: CNNBN, state: eqx.nn.State, x: Float[Array, "batch features"], y: Int[Array, " batch"]
) -> tuple[Float[Array, ""], Float[Array, ""]]:
    """`(mean loss, accuracy)` in inference mode: the running statistics, state unchanged."""
    logits, _ = batched(model, inference=True)(x, state)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return loss, (jnp.argmax(logits, axis=-1) == y).mean(dtype=logits.dtype)
