"""The CNN with BatchNorm as objects on JAX: the running statistics are `nnx.BatchStat`s that
the forward pass changes in place in `train()` mode.

Twin of `oop/models/cnn_bn.py` (the same paradigm on PyTorch) and `functional/models/cnn_bn.py`
(the same framework, where the statistics are a state value passed in and returned). Here, as
in torch, nothing in a call's signature says the module has state: `model.train()` /
`model.eval()` switch what the norms do, and under `nnx.jit` the statistics the trace computes
are written back into the module. The loss, the step and the evaluation are the MLP's: the
step differentiates with respect to the `nnx.Param`s only, so the statistics ride along.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, Float

from crossover.oop_jax.layers import BatchNorm2d, make_convs, torch_uniform
from crossover.oop_jax.models import mlp
from shared.config import CNNBNConfig

# -- config --

DTYPES = {"float32": jnp.float32, "float64": jnp.float64}
HAS_STATE = True  # nnx.BatchStats that train() mode moves: the BatchNorm statistics
STOCHASTIC = False  # nothing drawn in train() mode


# -- model --
class CNNBN(nnx.Module):
    """`cnn` with BatchNorm after each conv: conv (no bias) -> BatchNorm -> ReLU -> pool, twice,
    then a linear head. Channels-last inside (NNX's layout), torch's order at the head.

    **Arguments:**

    - `config`: the sizes, a `CNNBNConfig`.
    - `rngs`: the random streams for the initial weights (keyword-only).
    - `dtype`: `jnp.float32` or `jnp.float64`.
    """

    def __init__(self, config: CNNBNConfig, *, rngs: nnx.Rngs, dtype=jnp.float32):
        self.convs = make_convs(config, rngs=rngs, dtype=dtype, bias=False)
        w = config.width
        self.norms = nnx.List([BatchNorm2d(w, dtype=dtype, rngs=rngs),
                               BatchNorm2d(2 * w, dtype=dtype, rngs=rngs)])  # fmt: skip
        init = torch_uniform(config.head_features)
        self.head = nnx.Linear(config.head_features, config.out_features, kernel_init=init,
                               bias_init=init, dtype=dtype, param_dtype=dtype,
                               rngs=rngs)  # fmt: skip
        self.image_shape = config.image_shape

    def __call__(self, x: Float[Array, "batch features"]) -> Float[Array, "batch classes"]:
        """A batch of flat rows -> logits; in train() mode the norms' statistics move."""
        x = x.reshape(x.shape[0], *self.image_shape).transpose(0, 2, 3, 1)  # (B, H, W, C)
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = jax.nn.relu(norm(conv(x)))
            x = nnx.max_pool(x, (2, 2), strides=(2, 2))  # (B, H/2, W/2, w), then (B, H/4, W/4, 2w)
        x = x.transpose(0, 3, 1, 2).reshape(x.shape[0], -1)  # torch's (C, H, W) order
        return self.head(x)  # (B, classes)


def init_model(config: CNNBNConfig, *, seed: int, dtype: str = "float32") -> CNNBN:
    return CNNBN(config, rngs=nnx.Rngs(seed), dtype=DTYPES[dtype])


# -- loss --
# The MLP's: train_step calls model.train() (the norms use the batch and move their
# statistics), evaluate calls model.eval() (they use the statistics).
loss_fn = mlp.loss_fn


# -- train step --
train_step = mlp.train_step
pure_step = mlp.pure_step


# -- evaluate --
evaluate = mlp.evaluate
