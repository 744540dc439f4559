"""Layers that several Keras models use, each computing what torch's layer of the same name does.

Twin of `oop/layers.py`. Keras's own layers serve where they compute torch's function on all
three backends (`Conv2D`, `MaxPooling2D`, `Embedding`, `LayerNormalization`); the rest are the
smallest layers that can, each written with `keras.ops` alone, so one file runs on JAX,
PyTorch and TensorFlow:

- `Linear`: a `Dense` that draws torch's initial distribution (Keras's is Glorot uniform).
- `Dropout`: Keras's, plus a test mask, as on the OOP side.
- `BatchNorm2d`: `BatchNormalization` moves its running variance with the batch's biased
  variance and defaults to momentum 0.99, epsilon 1e-3; this one is torch's (0.1, 1e-5,
  unbiased running variance) and keeps torch's names, `num_batches_tracked` included.
- `RNNCell`, `GRUCell`, `LSTMCell`: Keras's cells keep one bias (torch trains two, `b_ih` and
  `b_hh`); these keep Keras's layouts and gate orders
  (`kernel` `(in, gates * units)`, GRU gates z, r, h) plus a `recurrent_bias`, and run inside
  Keras's own `keras.layers.RNN` loop.
"""

from __future__ import annotations

import math

import keras
from keras import ops

# -- initialisers --


def torch_uniform(fan_in: int, seed) -> keras.initializers.Initializer:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)): what `nn.Linear`, `nn.Conv2d` and torch's recurrent
    modules draw their weights and biases from (Keras's default is Glorot uniform), drawn from
    the `keras.random.SeedGenerator` `seed`, which moves on with every draw."""
    bound = 1.0 / math.sqrt(fan_in)
    return keras.initializers.RandomUniform(-bound, bound, seed=seed)


def dropout_seed(seed) -> int:
    """An integer seed for a Dropout layer's own generator, drawn from the model's `seed`
    (Keras's `Dropout(seed=)` takes an integer; without one it asks Python's global `random`)."""
    return int(keras.ops.convert_to_numpy(keras.random.randint((), 0, 2**31 - 1, seed=seed)))


# -- linear --
class Linear(keras.layers.Dense):
    """`nn.Linear(fan_in, units)` as a Keras `Dense`: `kernel` `(in, out)` (torch's `weight`
    transposed), `bias` `(out,)`, torch's initial distribution unless `init` is given.

    **Arguments:**

    - `fan_in`, `units`: the sizes.
    - `bias`: whether there is a bias.
    - `std`: draw the kernel from N(0, std) instead (the GPT's), and start the bias at zero.
    - `seed`: the model's `keras.random.SeedGenerator` (keyword-only).
    - `dtype`: `"float32"` or `"float64"`.
    """

    def __init__(self, fan_in: int, units: int, *, bias: bool = True, std: float | None = None,
                 seed, dtype="float32"):  # fmt: skip
        uniform = torch_uniform(fan_in, seed)
        normal = None if std is None else keras.initializers.RandomNormal(0.0, std, seed=seed)
        super().__init__(
            units,
            use_bias=bias,
            kernel_initializer=normal or uniform,
            bias_initializer="zeros" if normal is not None else uniform,
            dtype=dtype,
        )
        self.build((None, fan_in))


# -- convolutions --
def make_convs(config, *, seed, dtype: str, bias: bool = True) -> list[keras.layers.Conv2D]:
    """The two 3x3 convs (padding 1, "same") of `cnn`, `cnn_bn` and `cnn_dropout`: C -> width,
    then width -> 2 * width. Channels last (NHWC), Keras's default and the only layout
    TensorFlow's CPU convolution takes; the kernels are HWIO whatever the data format."""
    c, w = config.in_channels, config.width
    convs = []
    for fan_in, out in ((c, w), (w, 2 * w)):
        init = torch_uniform(fan_in * 9, seed)
        conv = keras.layers.Conv2D(out, 3, padding="same", use_bias=bias, kernel_initializer=init,
                                   bias_initializer=init, dtype=dtype)  # fmt: skip
        conv.build((None, config.image_size, config.image_size, fan_in))
        convs.append(conv)
    return convs


# -- dropout --
class Dropout(keras.layers.Dropout):
    """`keras.layers.Dropout(rate)`, plus `mask`: when set (a boolean array shaped like the
    input, keep = True) and in training, it replaces the random draw. For tests only.

    Keras draws from a `SeedGenerator`, whose state is a variable of the layer: on the JAX
    backend `fit` threads it through the compiled step as it threads BatchNorm's statistics."""

    mask = None

    def call(self, inputs, training=False):
        if training and self.mask is not None and self.rate > 0:
            return ops.where(self.mask, inputs / (1.0 - self.rate), ops.zeros_like(inputs))
        return super().call(inputs, training=training)


# -- batch norm --
class BatchNorm2d(keras.layers.Layer):
    """torch's `nn.BatchNorm2d` on channels-last maps: normalise with the batch's statistics
    (biased variance) in training and with the running ones otherwise; in training, move
    `running_mean` and `running_var` by `momentum` towards the batch's mean and *unbiased*
    variance, and count `num_batches_tracked`. The variables carry torch's names.

    **Arguments:**

    - `channels`: the last axis's size.
    - `momentum`, `eps`: torch's meaning and defaults (Keras's `momentum=0.99` is 1 - 0.01).
    - `dtype`: `"float32"` or `"float64"`.
    """

    def __init__(self, channels: int, *, momentum: float = 0.1, eps: float = 1e-5, dtype="float32"):
        super().__init__(dtype=dtype)
        self.momentum, self.eps = momentum, eps
        self.weight = self.add_weight(shape=(channels,), initializer="ones", name="weight")
        self.bias = self.add_weight(shape=(channels,), initializer="zeros", name="bias")
        self.running_mean = self.add_weight(
            shape=(channels,), initializer="zeros", trainable=False, name="running_mean"
        )
        self.running_var = self.add_weight(
            shape=(channels,), initializer="ones", trainable=False, name="running_var"
        )
        self.num_batches_tracked = self.add_weight(
            shape=(), initializer="zeros", dtype="int64", trainable=False,
            name="num_batches_tracked",
        )  # fmt: skip

    def call(self, x, training=False):
        if training:
            axes = tuple(range(len(x.shape) - 1))  # every axis but the channels
            mean = ops.mean(x, axis=axes)  # (C,)
            var = ops.mean(ops.square(x - mean), axis=axes)  # biased: what normalises
            n = ops.cast(ops.size(x) // x.shape[-1], x.dtype)  # values per channel
            m = self.momentum
            self.running_mean.assign((1 - m) * self.running_mean + m * mean)
            self.running_var.assign((1 - m) * self.running_var + m * var * (n / (n - 1)))
            self.num_batches_tracked.assign(self.num_batches_tracked + 1)
        else:
            mean, var = self.running_mean, self.running_var
        return (x - mean) / ops.sqrt(var + self.eps) * self.weight + self.bias


# -- recurrent cells --
class Cell(keras.layers.Layer):
    """What the three cells share: Keras's layouts, torch's two biases and initial draw."""

    gates = 1

    def __init__(self, fan_in: int, units: int, *, seed, dtype="float32"):
        super().__init__(dtype=dtype)
        self.units, self.state_size, self.output_size = units, units, units
        init, g = torch_uniform(units, seed), self.gates * units
        self.kernel = self.add_weight(shape=(fan_in, g), initializer=init, name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(units, g), initializer=init,
                                                name="recurrent_kernel")  # fmt: skip
        self.bias = self.add_weight(shape=(g,), initializer=init, name="bias")
        self.recurrent_bias = self.add_weight(shape=(g,), initializer=init, name="recurrent_bias")

    def get_initial_state(self, batch_size=None):
        return [ops.zeros((batch_size, self.units), dtype=self.compute_dtype)]

    def _gates(self, x, h):
        xw = ops.matmul(x, self.kernel) + self.bias  # (batch, gates * units)
        return xw, ops.matmul(h, self.recurrent_kernel) + self.recurrent_bias


class RNNCell(Cell):
    """Elman: `h' = tanh(x W + b + h U + b_h)`, torch's `nn.RNNCell`."""

    def call(self, x, states, training=False):
        xw, hu = self._gates(x, states[0])
        h = ops.tanh(xw + hu)
        return h, [h]


class GRUCell(Cell):
    """torch's `nn.GRUCell` in Keras's gate order z, r, h (torch: r, z, n), `reset_after`: the
    reset gate multiplies `h U_h + b_hh`, as torch's does and Keras's `reset_after=True`."""

    gates = 3

    def call(self, x, states, training=False):
        h = states[0]
        xw, hu = self._gates(x, h)
        xz, xr, xh = ops.split(xw, 3, axis=-1)
        hz, hr, hh = ops.split(hu, 3, axis=-1)
        z, r = ops.sigmoid(xz + hz), ops.sigmoid(xr + hr)
        n = ops.tanh(xh + r * hh)
        h = z * h + (1 - z) * n
        return h, [h]


class LSTMCell(Cell):
    """torch's `nn.LSTMCell`; Keras's gate order i, f, c, o is torch's i, f, g, o. The state
    is `[h, c]`."""

    gates = 4

    def __init__(self, fan_in: int, units: int, *, seed, dtype="float32"):
        super().__init__(fan_in, units, seed=seed, dtype=dtype)
        self.state_size = [units, units]

    def get_initial_state(self, batch_size=None):
        zeros = ops.zeros((batch_size, self.units), dtype=self.compute_dtype)
        return [zeros, zeros]

    def call(self, x, states, training=False):
        h, c = states
        xw, hu = self._gates(x, h)
        i, f, g, o = ops.split(xw + hu, 4, axis=-1)
        c = ops.sigmoid(f) * c + ops.sigmoid(i) * ops.tanh(g)
        h = ops.sigmoid(o) * ops.tanh(c)
        return h, [h, c]


CELLS = {"rnn": RNNCell, "gru": GRUCell, "lstm": LSTMCell}
