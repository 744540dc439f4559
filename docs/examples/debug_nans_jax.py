"""Find the first NaN in JAX: the package's MLP, one moons batch with a NaN feature.

Under `jit` a NaN just flows through to the gradients. `jax.debug_nans(True)` checks every
operation's output, runs a jitted function again op by op when one is NaN, and raises at the
first, naming the primitive and the line. `checkify` makes the same check part of the program
and returns it as a value, for code that must stay jitted.

    python docs/examples/debug_nans_jax.py
"""

import traceback

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.experimental import checkify

import functional.models.mlp as fmlp
from shared import data
from shared.config import MLPConfig

ds = data.load("moons")
x, y = ds.x_train[:32].astype("float32"), ds.y_train[:32]
x[5, 1] = float("nan")  # one bad value in the batch
config = MLPConfig(in_features=2, out_features=2, width=16)
model = fmlp.init_model(config, key=jax.random.PRNGKey(0))
grad_fn = eqx.filter_jit(jax.grad(fmlp.loss_fn))

grads = grad_fn(model, x, y)
nan = any(bool(jnp.isnan(g).any()) for g in jax.tree.leaves(grads))
print("1. jit: NaN in the gradients:", nan)

try:
    with jax.debug_nans(True):
        grad_fn(model, x, y)
except FloatingPointError as error:
    ours = [f for f in traceback.extract_tb(error.__traceback__) if "functional" in f.filename]
    print(f"2. jax.debug_nans: {error}")
    print(f"   at {ours[-1].filename.split('/')[-1]}:{ours[-1].lineno}: {ours[-1].line}")

checked = eqx.filter_jit(checkify.checkify(fmlp.loss_fn, errors=checkify.nan_checks))
error, loss = checked(model, x, y)
print("3. checkify:", error.get())
# checkify says what made the NaN, not where in the data: ask the batch itself
print("   rows of the batch with a NaN:", jnp.argwhere(jnp.isnan(x).any(axis=1)).ravel().tolist())
