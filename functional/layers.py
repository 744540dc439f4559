"""Layers that several functional models use, each a twin of `oop/layers.py`'s.

Every layer here computes what its torch counterpart computes, on one example: the models call
it inside `jax.vmap`. Randomness and state are arguments, never hidden: `Dropout` takes a key
(or a test's mask), `BatchNorm2d` takes and returns the running statistics.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from shared.config import CNNConfig


# -- convolutions --
def make_convs(
    config: CNNConfig, *, key: PRNGKeyArray, dtype, bias: bool = True
) -> tuple[eqx.nn.Conv2d, ...]:
    """The two 3x3 convs (padding 1) shared by `cnn`, `cnn_bn` and `cnn_dropout`: C -> width,
    then width -> 2 * width. `bias=False` before a BatchNorm, which would cancel it."""
    k0, k1 = jax.random.split(key)
    c, w = config.in_channels, config.width
    return (
        eqx.nn.Conv2d(c, w, 3, padding=1, use_bias=bias, key=k0, dtype=dtype),
        eqx.nn.Conv2d(w, 2 * w, 3, padding=1, use_bias=bias, key=k1, dtype=dtype),
    )


# -- dropout --
class Dropout(eqx.Module):
    """`torch.nn.Dropout(p)`: in training, zero each value with probability `p` and scale the
    kept ones by `1 / (1 - p)`; in inference, the identity.

    **Arguments:**

    - `p`: the drop probability.

    Called as `dropout(x, key=key, inference=...)`; `mask` (keep = True) replaces the draw,
    for tests that feed both sides the same mask.
    """

    p: float = eqx.field(static=True)

    def __call__(
        self,
        x: Float[Array, " n"],
        *,
        key: PRNGKeyArray | None,
        inference: bool,
        mask: Bool[Array, " n"] | None = None,
    ) -> Float[Array, " n"]:
        if inference or self.p == 0.0:
            return x
        if mask is None:
            mask = jax.random.bernoulli(key, 1.0 - self.p, x.shape)  # keep with prob 1 - p
        return jnp.where(mask, x / (1.0 - self.p), 0.0)


# -- batch norm --
MOMENTUM, EPS = 0.1, 1e-5  # torch.nn.BatchNorm2d's defaults, with torch's meaning of momentum


class BatchNorm2d(eqx.Module):
    """`torch.nn.BatchNorm2d(channels)` for one `(C, H, W)` example inside a named `vmap`.

    Training: normalise with the batch's mean and *biased* variance over (batch, H, W), and
    move the running statistics by `running = (1 - momentum) * running + momentum * batch`,
    with the *unbiased* variance (`n / (n - 1)`), as torch does. Inference: normalise with the
    running statistics. `num_batches_tracked` counts training calls, as torch's buffer does.

    **Arguments:**

    - `channels`: C.
    - `dtype`: of the weight, bias and running statistics.
    - `axis_name`: the name the caller gives the batch axis of its `jax.vmap`.
    """

    weight: Float[Array, " channels"]
    bias: Float[Array, " channels"]
    index: eqx.nn.StateIndex  # -> (running_mean, running_var, num_batches_tracked)
    axis_name: str = eqx.field(static=True)
    state_names: tuple[str, ...] = eqx.field(static=True)  # canonical names of the state

    def __init__(self, channels: int, *, dtype=jnp.float32, axis_name: str = "batch"):
        self.weight = jnp.ones(channels, dtype)
        self.bias = jnp.zeros(channels, dtype)
        count = jnp.zeros((), jnp.int64 if jax.config.jax_enable_x64 else jnp.int32)
        self.index = eqx.nn.StateIndex(
            (jnp.zeros(channels, dtype), jnp.ones(channels, dtype), count)
        )
        self.axis_name = axis_name
        self.state_names = ("running_mean", "running_var", "num_batches_tracked")

    def __call__(
        self, x: Float[Array, "channels h w"], state: eqx.nn.State, *, inference: bool
    ) -> tuple[Float[Array, "channels h w"], eqx.nn.State]:
        running_mean, running_var, count = state.get(self.index)
        if inference:
            mean, var = running_mean, running_var
        else:
            mean = jax.lax.pmean(x.mean(axis=(1, 2)), self.axis_name)  # (C,) over batch, H, W
            var = jax.lax.pmean(((x - mean[:, None, None]) ** 2).mean(axis=(1, 2)), self.axis_name)
            n = jax.lax.psum(1, self.axis_name) * x.shape[1] * x.shape[2]  # values per channel
            state = state.set(
                self.index,
                (
                    (1 - MOMENTUM) * running_mean + MOMENTUM * mean,
                    (1 - MOMENTUM) * running_var + MOMENTUM * var * (n / (n - 1)),
                    count + 1,
                ),
            )
        y = (x - mean[:, None, None]) / jnp.sqrt(var[:, None, None] + EPS)
        return y * self.weight[:, None, None] + self.bias[:, None, None], state
