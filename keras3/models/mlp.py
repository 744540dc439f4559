"""The MLP in Keras 3: a subclassed `keras.Model`, `compile` and `fit`, on any backend.

Twin of `oop/models/mlp.py` and `functional/models/mlp.py`. The model owns its variables,
the optimizer owns its state, as in torch; what Keras adds is the loop: `compile` fixes the
loss and the optimizer, and `fit` (in `keras3.train`) runs the steps, compiled on JAX
(`jax.jit`) and TensorFlow (`tf.function`), eager on torch. The file imports `keras` alone:
`KERAS_BACKEND` decides which framework runs it. One departure from the twins' names: a
`keras.Model` has a read-only `layers` property, so the linear maps are `linears` here and
`keras3.convert` names them `layers.N` in the checkpoint.
"""

from __future__ import annotations

import keras
from jaxtyping import Float, Int
from keras import ops

from keras3.layers import Linear
from shared.config import MLPConfig

# -- config --

DTYPES = {"float32": "float32", "float64": "float64"}
HAS_STATE = False  # no variables that training moves besides the weights
STOCHASTIC = False  # nothing drawn in training


# -- model --
class MLP(keras.Model):
    """`config.layers` hidden ReLU layers, then a linear head producing logits.

    **Arguments:**

    - `config`: the sizes, an `MLPConfig`.
    - `seed`: a `keras.random.SeedGenerator`, drawn from in turn for every initial weight.
    - `dtype`: `"float32"` or `"float64"`: every variable's and every computation's.

    No global seed: `keras.utils.set_random_seed` would also seed Python's `random`, NumPy's
    and torch's global generators, and import TensorFlow on any backend.
    """

    def __init__(self, config: MLPConfig, *, seed, dtype: str = "float32"):
        super().__init__(dtype=dtype)
        self.linears = [Linear(i, o, seed=seed, dtype=dtype) for i, o in config.sizes]
        self.built = True  # every variable exists already: the model needs no sample call

    def call(self, x: Float[keras.KerasTensor, "batch features"], training=False):
        """A batch: `(batch, features)` -> `(batch, classes)` logits."""
        for layer in self.linears[:-1]:
            x = ops.relu(layer(x))  # (batch, width)
        return self.linears[-1](x)  # (batch, classes)


def init_model(config: MLPConfig, *, seed: int, dtype: str = "float32") -> MLP:
    return MLP(config, seed=keras.random.SeedGenerator(seed), dtype=DTYPES[dtype])


# -- loss --
def loss_fn(model: keras.Model, x, y: Int[keras.KerasTensor, " batch"], *, training=True):
    """Mean softmax cross-entropy over the batch: what `compile`'s loss computes in `fit`."""
    logits = model(x, training=training)
    return ops.mean(keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True))


def fit_loss(model: keras.Model) -> keras.losses.Loss:
    """The loss `compile` takes: the same mean cross-entropy, as a Keras `Loss` object."""
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype=model.dtype)


# -- train step --
def compile_model(model: keras.Model, optimizer, *, loss, jit_compile="auto") -> keras.Model:
    """`model.compile`: the optimizer (`keras3.optim.make_optimizer`) and the loss (the model
    file's `fit_loss(model)`); `fit` then
    runs one update per batch. `jit_compile="auto"` is Keras's default: XLA on JAX and
    TensorFlow where the model allows, eager on torch."""
    model.compile(optimizer=optimizer, loss=loss, jit_compile=jit_compile)
    return model


# -- evaluate --
def evaluate(model: keras.Model, x, y) -> tuple[float, float]:
    """`(mean loss, accuracy)` on a whole split, with `training=False`."""
    logits = model(x, training=False)  # (batch, classes)
    loss = ops.mean(keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True))
    accuracy = ops.mean(ops.cast(ops.argmax(logits, axis=-1) == ops.cast(y, "int32"), "float64"))
    return float(loss), float(accuracy)
