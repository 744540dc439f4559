"""Layers that several objects-on-JAX models use, each a twin of `oop/layers.py`'s.

Flax NNX's own modules wherever they compute what torch's do, given the right arguments;
where one does not, a thin subclass that fixes exactly what differs, as a PyTorch user would
subclass `nn.Module`. NNX's convolutions and norms are channels-last (NHWC), torch's are
channels-first (NCHW): the models transpose at the way in and before the head, so the weights
keep torch's meaning and the canonical checkpoint crosses unchanged.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, Bool, Float

from shared.config import CNNConfig


def torch_uniform(fan_in: int):
    """An NNX initializer drawing U(-1/sqrt(fan_in), 1/sqrt(fan_in)), torch's `nn.Linear` and
    `nn.Conv2d` default for weight and bias alike; `nnx.Linear`'s own is LeCun-normal and zero
    bias."""
    bound = fan_in**-0.5

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


# -- convolutions --
def make_convs(config: CNNConfig, *, rngs: nnx.Rngs, dtype, bias: bool = True) -> nnx.List:
    """The two 3x3 convs (padding 1) of the cnns: C -> width, then width -> 2 * width, each
    drawn as torch draws a conv, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = in * 3 * 3.
    `nnx.Conv` keeps its kernel as (3, 3, in, out); `crossover.oop_jax.convert` turns it into
    torch's (out, in, 3, 3)."""
    c, w = config.in_channels, config.width

    def conv(fan_in: int, fan_out: int) -> nnx.Conv:
        init = torch_uniform(fan_in * 9)
        return nnx.Conv(fan_in, fan_out, (3, 3), padding=1, use_bias=bias, kernel_init=init,
                        bias_init=init, dtype=dtype, param_dtype=dtype, rngs=rngs)  # fmt: skip

    return nnx.List([conv(c, w), conv(w, 2 * w)])


# -- dropout --
class Dropout(nnx.Dropout):
    """`nnx.Dropout(p)`, drawing from the module's `nnx.Rngs` stream in `train()` mode, plus
    `mask`: when set (a boolean array shaped like the input, keep = True), it replaces the
    draw. For tests only, as on the other sides; None in normal use."""

    def __init__(self, p: float, *, rngs: nnx.Rngs):
        super().__init__(p, rngs=rngs)
        self.mask = nnx.data(None)

    def __call__(self, x: Float[Array, "..."]) -> Float[Array, "..."]:
        if self.deterministic or self.mask is None:
            return super().__call__(x)
        keep: Bool[Array, "..."] = self.mask
        return jnp.where(keep, x / (1.0 - self.rate), 0.0)


# -- batch norm --
MOMENTUM, EPS = 0.1, 1e-5  # torch.nn.BatchNorm2d's defaults, with torch's meaning of momentum


class BatchNorm2d(nnx.BatchNorm):
    """`torch.nn.BatchNorm2d(channels)` on channels-last input: `nnx.BatchNorm` given torch's
    settings, and fixed where no setting reaches.

    What arguments match: flax's `momentum` is torch's `1 - momentum` (0.9 here is torch's
    0.1), `epsilon=1e-5` is torch's eps, and `use_fast_variance=False` takes the two-pass
    variance `mean((x - mean)^2)` where flax's default `mean(x^2) - mean(x)^2` cancels
    catastrophically in float32. What no argument reaches, fixed here: flax moves the running
    variance with the batch's biased variance, torch with the unbiased one (`n / (n - 1)`);
    flax keeps `mean` and `var` in float32 whatever `param_dtype`; flax keeps no
    `num_batches_tracked`. Normalisation itself (biased variance, `scale`, `bias`) is flax's.

    **Arguments:**

    - `channels`: C, the last axis.
    - `dtype`: of the scale, bias and running statistics.
    - `rngs`: as every NNX layer takes it (BatchNorm draws nothing).
    """

    def __init__(self, channels: int, *, dtype=jnp.float32, rngs: nnx.Rngs):
        super().__init__(channels, momentum=1 - MOMENTUM, epsilon=EPS, use_fast_variance=False,
                         dtype=dtype, param_dtype=dtype, rngs=rngs)  # fmt: skip
        self.mean = nnx.BatchStat(jnp.zeros(channels, dtype))  # flax's are float32 always
        self.var = nnx.BatchStat(jnp.ones(channels, dtype))
        count = jnp.int64 if jax.config.jax_enable_x64 else jnp.int32
        self.num_batches_tracked = nnx.BatchStat(jnp.zeros((), count))

    def __call__(self, x: Float[Array, "batch h w channels"]) -> Float[Array, "batch h w channels"]:
        if self.use_running_average:
            return super().__call__(x)
        before = self.var[...]
        y = super().__call__(x)  # normalises with the batch; moves mean (as torch) and var
        n = x.size // x.shape[-1]  # values per channel: batch * h * w
        biased = jax.lax.stop_gradient(jnp.mean((x - x.mean(axis=(0, 1, 2))) ** 2, axis=(0, 1, 2)))
        self.var[...] = self.momentum * before + (1 - self.momentum) * biased * (n / (n - 1))
        self.num_batches_tracked[...] += 1
        return y
