"""The CNN on the functional side: equinox convs on one `(C, H, W)` image, vmapped over a batch.

Twin of `oop/models/cnn.py`; read the two side by side. Nothing here has state or randomness,
so the loss, the pure step and the evaluation are the MLP's (`functional.models.mlp`): only the
model differs. `equinox.nn.Conv2d` takes one image, channels first, and `jax.vmap` adds the
batch axis, so a batch is NCHW exactly as in torch.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from functional.layers import make_convs
from functional.models import mlp
from shared.config import CNNConfig

# -- config --

DTYPES = {"float32": jnp.float32, "float64": jnp.float64}
HAS_STATE = False  # init_model returns the model alone
STOCHASTIC = False  # the step takes no key


# -- model --
class CNN(eqx.Module):
    """Two blocks of 3x3 conv (padding 1) -> ReLU -> 2x2 max-pool, then a linear head.

    Attribute names and order mirror `oop.models.cnn.CNN`: `convs.0.weight` is
    `(out, in, 3, 3)` on both sides. equinox stores a conv bias as `(out, 1, 1)` so that it
    broadcasts over `(out, H, W)`; `functional.convert` reshapes it to torch's `(out,)`. `pool`
    holds no arrays, like torch's `nn.MaxPool2d`.

    **Arguments:**

    - `config`: the sizes, a `CNNConfig`.
    - `key`: a PRNG key for the initial weights (keyword-only).
    - `dtype`: `jnp.float32` or `jnp.float64`.
    """

    convs: tuple[eqx.nn.Conv2d, ...]
    pool: eqx.nn.MaxPool2d
    head: eqx.nn.Linear
    image_shape: tuple[int, int, int] = eqx.field(static=True)

    def __init__(self, config: CNNConfig, *, key: PRNGKeyArray, dtype=jnp.float32):
        k_convs, k_head = jax.random.split(key)
        self.convs = make_convs(config, key=k_convs, dtype=dtype)
        self.pool = eqx.nn.MaxPool2d(2, stride=2)
        self.head = eqx.nn.Linear(
            config.head_features, config.out_features, key=k_head, dtype=dtype
        )
        self.image_shape = config.image_shape

    def __call__(self, x: Float[Array, " features"]) -> Float[Array, " classes"]:
        """One example: a flat `(C*H*W,)` row -> `(classes,)` logits."""
        x = x.reshape(self.image_shape)  # (C, H, W): the row is the image in C order
        for conv in self.convs:
            x = self.pool(jax.nn.relu(conv(x)))  # (w, H/2, W/2), then (2w, H/4, W/4)
        return self.head(x.reshape(-1))  # flatten in C order, as torch.flatten: (classes,)


def init_model(config: CNNConfig, *, key: PRNGKeyArray, dtype: str = "float32") -> CNN:
    return CNN(config, key=key, dtype=DTYPES[dtype])


# -- loss --
# Stateless and deterministic, so the loss, the step and the evaluation are the MLP's.
loss_fn = mlp.loss_fn  # a vmapped mean cross-entropy


# -- train step --
make_step = mlp.make_step  # a pure `(params, opt_state, x, y) -> (params, opt_state, loss)`


# -- evaluate --
evaluate = mlp.evaluate  # a jitted `(loss, accuracy)`
