"""The CNN with Dropout in Keras 3: masks drawn from a seed generator the layer owns.

Twin of `oop/models/cnn_dropout.py`. Keras's `Dropout` keeps its random state in a
`SeedGenerator`, a variable of the layer: `fit` passes `training=True` and the layer draws a
new mask each step from that state, which moves on, like torch's global generator but owned by
the layer. The masks are Keras's own, so only inference and injected masks
(`keras3.layers.Dropout.mask`) can equal the twins'.
"""

from __future__ import annotations

import keras
from keras import ops

from keras3.layers import Dropout, Linear, dropout_seed, make_convs
from keras3.models import cnn, mlp
from shared.config import CNNDropoutConfig

# -- config --

DTYPES = mlp.DTYPES
HAS_STATE = False  # no statistics (the seed generator's state is Keras's, not the model's)
STOCHASTIC = True  # training draws masks


# -- model --
class CNNDropout(keras.Model):
    """`cnn` with Dropout on the flattened features, before the head.

    **Arguments:**

    - `config`: the sizes and the dropout probability, a `CNNDropoutConfig`.
    - `seed`: a `keras.random.SeedGenerator`, drawn from in turn for every initial weight.
    - `dtype`: `"float32"` or `"float64"`.
    """

    def __init__(self, config: CNNDropoutConfig, *, seed, dtype: str = "float32"):
        super().__init__(dtype=dtype)
        self.convs = make_convs(config, seed=seed, dtype=dtype)
        self.pool = keras.layers.MaxPooling2D(2, dtype=dtype)
        self.dropout = Dropout(config.dropout, seed=dropout_seed(seed), dtype=dtype)
        self.head = Linear(config.head_features, config.out_features, seed=seed, dtype=dtype)
        self.image_shape = config.image_shape
        self.built = True  # every variable exists already: the model needs no sample call

    def call(self, x, training=False):
        x = cnn.to_nhwc(x, self.image_shape)  # (B, H, W, C)
        for conv in self.convs:
            x = self.pool(ops.relu(conv(x)))
        return self.head(self.dropout(cnn.flatten_chw(x), training=training))


def init_model(config: CNNDropoutConfig, *, seed: int, dtype: str = "float32") -> CNNDropout:
    return CNNDropout(config, seed=keras.random.SeedGenerator(seed), dtype=DTYPES[dtype])


# -- loss --
loss_fn, fit_loss = mlp.loss_fn, mlp.fit_loss


# -- train step --
compile_model = mlp.compile_model


# -- evaluate --
evaluate = mlp.evaluate
