"""The recurrent models in Keras 3: `rnn` (Elman), `gru` and `lstm`, cells in `keras.layers.RNN`.

Twin of `oop/models/rnn.py`. Keras's loop (`keras.layers.RNN`) runs a cell over the time axis
on every backend: `lax.scan` on JAX, `tf.while_loop` on TensorFlow, a Python loop on torch.
The cells are `keras3.layers`' (Keras's layouts and gate orders, with torch's second bias);
`keras.layers.LSTM` and `GRU` would compute the same forward pass with one bias folded in,
and train apart (docs/keras.md). Layers stack as a list, `rnn[k]`, which `keras3.convert`
names `rnn.*_l{k}`, torch's fused names.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from keras3.layers import CELLS, Linear
from keras3.models import mlp
from shared.config import RNNConfig

# -- config --

DTYPES = mlp.DTYPES
HAS_STATE = False  # no variables that training moves besides the weights
STOCHASTIC = False  # nothing drawn in training
ADDING_TOLERANCE = 0.04  # an adding prediction counts as right within this of the true sum


# -- model --
class RNNModel(keras.Model):
    """`embed` (character models only), the stacked recurrent layers `rnn`, a linear `head`.

    **Arguments:**

    - `config`: an `RNNConfig`.
    - `seed`: a `keras.random.SeedGenerator`, drawn from in turn for every initial weight.
    - `dtype`: `"float32"` or `"float64"`.
    """

    def __init__(self, config: RNNConfig, *, seed, dtype: str = "float32"):
        super().__init__(dtype=dtype)
        self.cell, self.task = config.cell, config.task
        self.embed = None
        if config.task == "next-char":  # torch's nn.Embedding draws N(0, 1)
            self.embed = keras.layers.Embedding(
                config.in_features, config.width, dtype=dtype,
                embeddings_initializer=keras.initializers.RandomNormal(0.0, 1.0, seed=seed),
            )  # fmt: skip
            self.embed.build((None, None))
        first = config.in_features if config.task == "regress" else config.width
        self.rnn = [
            keras.layers.RNN(CELLS[config.cell](first if k == 0 else config.width, config.width,
                                                seed=seed, dtype=dtype),
                             return_sequences=True, return_state=True, dtype=dtype)
            for k in range(config.layers)
        ]  # fmt: skip
        self.head = Linear(config.width, config.out_features, seed=seed, dtype=dtype)
        self.built = True  # every variable exists already: the model needs no sample call

    def call(self, x, training=False):
        """adding: `(batch, time, 2)` -> predicted sums `(batch,)`. next-char: `(batch, time)`
        ids -> logits `(batch, time, vocab)`."""
        xs = self.embed(x) if self.embed is not None else x  # (batch, time, in)
        for layer in self.rnn:
            xs, h, *_ = layer(xs)  # every step's h (batch, time, hidden); the last h (and c)
        if self.task == "regress":
            return self.head(h)[:, 0]  # the top layer's last state
        return self.head(xs)  # (batch, time, vocab)


def init_model(config: RNNConfig, *, seed: int, dtype: str = "float32") -> RNNModel:
    model = RNNModel(config, seed=keras.random.SeedGenerator(seed), dtype=DTYPES[dtype])
    shape = (1, 1, config.in_features) if config.task == "regress" else (1, 1)
    model(np.zeros(shape, "float64" if config.task == "regress" else "int32"))  # builds the loops
    return model


# -- loss --
def loss_fn(model: RNNModel, x, y, *, training=True):
    """adding: the mean squared error. next-char: cross-entropy over every position."""
    out = model(x, training=training)
    if model.task == "regress":
        return ops.mean(ops.square(out - ops.convert_to_tensor(y)))
    return ops.mean(keras.losses.sparse_categorical_crossentropy(y, out, from_logits=True))


def fit_loss(model: RNNModel) -> keras.losses.Loss:
    """`compile`'s loss: `MeanSquaredError` or `SparseCategoricalCrossentropy`, both means."""
    if model.task == "regress":
        return keras.losses.MeanSquaredError(dtype=model.dtype)
    return mlp.fit_loss(model)


# -- train step --
compile_model = mlp.compile_model


# -- evaluate --
def evaluate(model: RNNModel, x, y) -> tuple[float, float]:
    """`(loss, accuracy)`: MSE and the fraction within ADDING_TOLERANCE for the adding problem;
    cross-entropy per character and next-character accuracy otherwise."""
    if model.task != "regress":
        return mlp.evaluate(model, x, y)
    err = ops.abs(model(x, training=False) - ops.convert_to_tensor(y))
    return float(ops.mean(ops.square(err))), float(ops.mean(ops.cast(err < ADDING_TOLERANCE,
                                                                      "float64")))  # fmt: skip
