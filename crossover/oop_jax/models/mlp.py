"""The MLP as objects on JAX: a Flax NNX module, an `nnx.Optimizer`, a step that mutates.

Twin of `oop/models/mlp.py` (the same paradigm on PyTorch) and of `functional/models/mlp.py`
(the same framework, functional). Read against the torch twin, almost nothing changes: the
module owns its parameters, the optimizer owns its state, and the step changes both in place.
What JAX adds is underneath: `nnx.jit` splits the objects into a pure graph and a state,
compiles one pure function as `jax.jit` would, and writes the new state back into the objects.
`pure_step` writes the same step the way `nnx.jit` runs it (`nnx.split`, then `jax.jit` of
a function that calls `nnx.merge`), the NNX performance guide's loop. Like torch's, the
module takes a batch.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jaxtyping import Array, Float, Int

from crossover.oop_jax.layers import torch_uniform
from shared.config import MLPConfig

# -- config --

DTYPES = {"float32": jnp.float32, "float64": jnp.float64}
HAS_STATE = False  # no batch statistics
STOCHASTIC = False  # nothing drawn in train() mode


# -- model --
class MLP(nnx.Module):
    """`config.layers` hidden ReLU layers, then a linear head producing logits.

    Attribute names and order mirror `oop.models.mlp.MLP`; `nnx.Linear` keeps `kernel` as
    `(in, out)`, the transpose of torch's `weight`, which `crossover.oop_jax.convert` turns.

    **Arguments:**

    - `config`: the sizes, an `MLPConfig`.
    - `rngs`: the random streams for the initial weights (keyword-only), `nnx.Rngs(seed)`.
    - `dtype`: `jnp.float32` or `jnp.float64`.
    """

    def __init__(self, config: MLPConfig, *, rngs: nnx.Rngs, dtype=jnp.float32):
        self.layers = nnx.List(
            nnx.Linear(fan_in, fan_out, kernel_init=torch_uniform(fan_in),
                       bias_init=torch_uniform(fan_in), dtype=dtype, param_dtype=dtype, rngs=rngs)
            for fan_in, fan_out in config.sizes
        )  # fmt: skip

    def __call__(self, x: Float[Array, "batch features"]) -> Float[Array, "batch classes"]:
        """A batch: `(batch, features)` -> `(batch, classes)` logits."""
        for layer in self.layers[:-1]:
            x = jax.nn.relu(layer(x))  # (batch, width)
        return self.layers[-1](x)  # (batch, classes)


def init_model(config: MLPConfig, *, seed: int, dtype: str = "float32") -> MLP:
    return MLP(config, rngs=nnx.Rngs(seed), dtype=DTYPES[dtype])


# -- loss --
def loss_fn(model: MLP, x: Float[Array, "batch features"], y: Int[Array, " batch"]) -> Array:
    """Mean softmax cross-entropy over the batch, in whatever mode the module is in."""
    return optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean()


# -- train step --
def make_step(loss_of: Callable | None = None) -> Callable:
    """`step(model, optimizer, x, y) -> loss`, compiled by `nnx.jit`: the gradient with respect
    to the model's `nnx.Param`s, then `optimizer.update(model, grads)`, which writes the new
    weights into the model and the new optax state into the optimizer, as torch's `step()`
    does. `loss_of(model, x, y)` (default: this file's `loss_fn`) lets another model reuse it."""
    loss_of = loss_of or loss_fn

    @nnx.jit
    def step(model, optimizer: nnx.Optimizer, x, y):
        loss, grads = nnx.value_and_grad(loss_of)(model, x, y)  # grads: an nnx.State of Params
        optimizer.update(model, grads)  # in place, seen from outside nnx.jit
        return loss

    return step


def pure_step(graphdef: nnx.GraphDef, loss_of: Callable | None = None) -> Callable:
    """The same update as `make_step`, written as `nnx.jit` runs it: a pure `(state, x, y) ->
    (state, loss)` for `jax.jit`, where `graphdef, state = nnx.split((model, optimizer))` and
    `nnx.update((model, optimizer), state)` puts the result back. The functional side's shape:
    the objects exist only inside the trace."""
    loss_of = loss_of or loss_fn

    def step(state: nnx.State, x, y):
        model, optimizer = nnx.merge(graphdef, state)
        loss, grads = nnx.value_and_grad(loss_of)(model, x, y)
        optimizer.update(model, grads)
        return nnx.state((model, optimizer)), loss

    return step


_step = make_step()


def train_step(
    model: MLP, optimizer: nnx.Optimizer, x: Float[Array, "batch features"], y: Int[Array, " batch"]
) -> Array:
    """One update, in place: `train()` mode, then the compiled step. Clipping, if asked for, is
    inside the optax chain (`functional.optim.make_optimizer`), where torch calls
    `clip_grad_norm_` between `backward()` and `step()`. Returns the batch's loss before it."""
    model.train()
    return _step(model, optimizer, x, y)


# -- evaluate --
@nnx.jit
def _scores(model: MLP, x, y) -> tuple[Array, Array]:
    logits = model(x)  # (batch, classes)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    accuracy = (jnp.argmax(logits, axis=-1) == y).mean(dtype=logits.dtype)
    return loss, accuracy


def evaluate(
    model: MLP, x: Float[Array, "batch features"], y: Int[Array, " batch"]
) -> tuple[Array, Array]:
    """`(mean loss, accuracy)` on a whole split, in `eval()` mode, as torch's twin."""
    model.eval()
    return _scores(model, x, y)
