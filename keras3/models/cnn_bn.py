"""The CNN with BatchNorm in Keras 3: running statistics as non-trainable variables.

Twin of `oop/models/cnn_bn.py`. As in torch, nothing in a call's signature says the model has
state: `training=True` (what `fit` passes) normalises with the batch and moves the running
statistics, `training=False` uses them. On the JAX backend `fit` threads those variables
through its compiled step and writes them back, as the functional twin threads its state by
hand. The norms are `keras3.layers.BatchNorm2d` (torch's), not `BatchNormalization`.
"""

from __future__ import annotations

import keras
from keras import ops

from keras3.layers import BatchNorm2d, Linear, make_convs
from keras3.models import cnn, mlp
from shared.config import CNNBNConfig

# -- config --

DTYPES = mlp.DTYPES
HAS_STATE = True  # non-trainable variables that training moves: the BatchNorm statistics
STOCHASTIC = False  # nothing drawn in training


# -- model --
class CNNBN(keras.Model):
    """`cnn` with BatchNorm after each conv: conv (no bias) -> BatchNorm -> ReLU -> pool, twice,
    then a linear head.

    **Arguments:**

    - `config`: the sizes, a `CNNBNConfig`.
    - `seed`: a `keras.random.SeedGenerator`, drawn from in turn for every initial weight.
    - `dtype`: `"float32"` or `"float64"`.
    """

    def __init__(self, config: CNNBNConfig, *, seed, dtype: str = "float32"):
        super().__init__(dtype=dtype)
        self.convs = make_convs(config, seed=seed, dtype=dtype, bias=False)
        w = config.width
        self.norms = [BatchNorm2d(w, dtype=dtype), BatchNorm2d(2 * w, dtype=dtype)]
        self.pool = keras.layers.MaxPooling2D(2, dtype=dtype)
        self.head = Linear(config.head_features, config.out_features, seed=seed, dtype=dtype)
        self.image_shape = config.image_shape
        self.built = True  # every variable exists already: the model needs no sample call

    def call(self, x, training=False):
        """A batch of flat rows -> logits; with `training=True` the norms' statistics move."""
        x = cnn.to_nhwc(x, self.image_shape)  # (B, H, W, C)
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = self.pool(ops.relu(norm(conv(x), training=training)))
        return self.head(cnn.flatten_chw(x))  # (B, classes)


def init_model(config: CNNBNConfig, *, seed: int, dtype: str = "float32") -> CNNBN:
    return CNNBN(config, seed=keras.random.SeedGenerator(seed), dtype=DTYPES[dtype])


# -- loss --
loss_fn, fit_loss = mlp.loss_fn, mlp.fit_loss


# -- train step --
compile_model = mlp.compile_model


# -- evaluate --
evaluate = mlp.evaluate
