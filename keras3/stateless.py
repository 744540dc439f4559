"""The functional view of Keras, on the JAX backend: one update as a pure function.

Keras's own JAX trainer runs `fit` this way. The model's and the optimizer's variables are taken
out as arrays (`state_of`). `model.stateless_call` computes the outputs from arrays and returns
the non-trainable variables' new values (BatchNorm's statistics, each Dropout's seed state).
`optimizer.stateless_apply` returns the new weights and slots. Nothing changes in place, so
`jax.jit` compiles the whole update, as `functional/models/mlp.py`'s `make_step` is compiled,
and `write_back` puts the result into the objects afterwards. Where Keras's randomness lives
shows here: the seed generators' states are non-trainable variables, threaded in and out with
the statistics, so the pure step draws the masks `fit` draws (tests/test_keras.py proves the
two equal).

The model files import keras alone; this file is the JAX backend's and imports jax.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import keras

# -- train step --
State = tuple[list, list, list]  # (trainable, non-trainable, optimizer variables) as arrays


def state_of(model: keras.Model, optimizer) -> State:
    """The arrays of every variable the update reads and writes."""
    return (
        [v.value for v in model.trainable_variables],
        [v.value for v in model.non_trainable_variables],
        [v.value for v in optimizer.variables],
    )


def make_step(model: keras.Model, optimizer, loss: keras.losses.Loss) -> Callable:
    """`step(state, x, y) -> (state, loss)`, pure and compiled: the gradient of `loss` through
    `model.stateless_call(training=True)`, then `optimizer.stateless_apply`."""

    def step(state: State, x, y):
        trainable, non_trainable, opt_vars = state

        def loss_of(weights):
            out, moved = model.stateless_call(weights, non_trainable, x, training=True)
            return loss(y, out), moved  # moved: the statistics' and the seeds' new values

        (value, moved), grads = jax.value_and_grad(loss_of, has_aux=True)(trainable)
        trainable, opt_vars = optimizer.stateless_apply(opt_vars, grads, trainable)
        return (trainable, moved, opt_vars), value

    return jax.jit(step)


def write_back(model: keras.Model, optimizer, state: State) -> None:
    """Put a state's arrays into the objects' variables (what `fit` does at an epoch's end)."""
    trainable, non_trainable, opt_vars = state
    for variables, values in ((model.trainable_variables, trainable),
                              (model.non_trainable_variables, non_trainable),
                              (optimizer.variables, opt_vars)):  # fmt: skip
        for v, a in zip(variables, values, strict=True):
            v.assign(a)
