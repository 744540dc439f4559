"""The CNN in Keras 3: `Conv2D` and `MaxPooling2D` on channels-last maps.

Twin of `oop/models/cnn.py`. The data set's flat rows are torch's NCHW images; Keras's
convolutions take NHWC here (TensorFlow's CPU kernels take nothing else), so `call` turns the
rows into NHWC maps first, and turns the last maps back to CHW before flattening, so that the
head reads its features in torch's order and `head.weight` needs no permutation. The conv
kernels are HWIO (`(3, 3, in, out)`), which `keras3.convert` turns into torch's OIHW.
"""

from __future__ import annotations

import math

import keras
from jaxtyping import Float
from keras import ops

from keras3.layers import Linear, make_convs
from keras3.models import mlp
from shared.config import CNNConfig

# -- config --

DTYPES = mlp.DTYPES
HAS_STATE = False  # no variables that training moves besides the weights
STOCHASTIC = False  # nothing drawn in training


# -- model --
def to_nhwc(x: Float[keras.KerasTensor, "batch features"], image_shape) -> keras.KerasTensor:
    """Flat rows in torch's C, H, W order -> `(B, H, W, C)` maps."""
    return ops.transpose(ops.reshape(x, (-1, *image_shape)), (0, 2, 3, 1))


def flatten_chw(x: Float[keras.KerasTensor, "B H W C"]) -> Float[keras.KerasTensor, "B features"]:
    """`(B, H, W, C)` -> `(B, C*H*W)` in torch's order: what `torch.flatten(x, 1)` gives on NCHW."""
    x = ops.transpose(x, (0, 3, 1, 2))  # (B, C, H, W)
    return ops.reshape(x, (-1, math.prod(x.shape[1:])))


class CNN(keras.Model):
    """Two blocks of 3x3 conv ("same") -> ReLU -> 2x2 max-pool, then a linear head.

    **Arguments:**

    - `config`: the sizes, a `CNNConfig`.
    - `seed`: a `keras.random.SeedGenerator`, drawn from in turn for every initial weight.
    - `dtype`: `"float32"` or `"float64"`.
    """

    def __init__(self, config: CNNConfig, *, seed, dtype: str = "float32"):
        super().__init__(dtype=dtype)
        self.convs = make_convs(config, seed=seed, dtype=dtype)
        self.pool = keras.layers.MaxPooling2D(2, dtype=dtype)
        self.head = Linear(config.head_features, config.out_features, seed=seed, dtype=dtype)
        self.image_shape = config.image_shape
        self.built = True  # every variable exists already: the model needs no sample call

    def call(self, x, training=False):
        """A batch of flat rows `(batch, C*H*W)` -> `(batch, classes)` logits."""
        x = to_nhwc(x, self.image_shape)  # (B, H, W, C)
        for conv in self.convs:
            x = self.pool(ops.relu(conv(x)))  # (B, H/2, W/2, w), then (B, H/4, W/4, 2w)
        return self.head(flatten_chw(x))  # (B, classes)


def init_model(config: CNNConfig, *, seed: int, dtype: str = "float32") -> CNN:
    return CNN(config, seed=keras.random.SeedGenerator(seed), dtype=DTYPES[dtype])


# -- loss --
loss_fn, fit_loss = mlp.loss_fn, mlp.fit_loss


# -- train step --
compile_model = mlp.compile_model


# -- evaluate --
evaluate = mlp.evaluate
