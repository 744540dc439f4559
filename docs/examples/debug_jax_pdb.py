"""The same stop in JAX: `breakpoint()` under `jax.jit` stops once, while tracing, on tracers
without values; `jax.debug.print` and `jax.debug.breakpoint` run inside the compiled program and
see the numbers; `jax.disable_jit()` runs the Python op by op, so plain pdb sees arrays.

    python docs/examples/debug_jax_pdb.py        # at each prompt: p h, then c

docs/debugging.md walks through it; tests/test_debugging.py drives it through pdb (and JAX's
own debugger, jdb) on standard input.
"""

import jax
import jax.numpy as jnp

import functional.models.mlp as fmlp
from shared.config import MLPConfig

model = fmlp.init_model(MLPConfig(in_features=2, out_features=2, width=8, layers=1),
                        key=jax.random.PRNGKey(0))  # fmt: skip
x = jnp.array([[0.5, -1.0], [2.0, 0.25], [-0.5, 0.5], [1.0, 1.0]])


def forward(model, x, stop):
    h = x
    for layer in model.layers[:-1]:
        h = jax.nn.relu(jax.vmap(layer)(h))  # (batch, width)
        stop(h)
    return jax.vmap(model.layers[-1])(h)


def python_breakpoint(h):
    breakpoint()  # under jit: h is a tracer, a placeholder for the program being recorded


def debug_print(h):
    jax.debug.print("relu output, row 0: {}", h[0])  # part of the program: runs every call


def debug_breakpoint(h):
    jax.debug.breakpoint()  # part of the program: stops at run time in jdb, with values


print("1. breakpoint() under jax.jit")
jax.jit(forward, static_argnums=2)(model, x, python_breakpoint)
print("2. jax.debug.print under jax.jit")
jax.jit(forward, static_argnums=2)(model, x, debug_print)
jax.effects_barrier()
print("3. jax.debug.breakpoint under jax.jit")
jax.jit(forward, static_argnums=2)(model, x, debug_breakpoint)
print("4. breakpoint() under jax.disable_jit()")
with jax.disable_jit():
    forward(model, x, python_breakpoint)
print("done")
