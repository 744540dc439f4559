"""The precision trap: what "float32" means for a matrix product on an NVIDIA GPU.

- `tf32-default`: on Ampere and later cards, JAX's default precision for float32 matrix
  products and convolutions is TF32: the operands are rounded to a 10-bit mantissa (float32
  keeps 23) before the tensor cores multiply them. torch's default for matrix products is IEEE
  float32 (`torch.backends.cuda.matmul.fp32_precision`), while its cuDNN convolutions default
  to TF32. So the same float32 MLP, with the same weights, computes other products in JAX than
  in torch.

Measured on an NVIDIA H200 (`tests/gpu_check.py`, jax 0.11.2, torch 2.11): a 1024² float32
product is 3.3e-4 off float64 (relative max error) under JAX's default and 1.5e-6 under
torch's; with TF32 set on both sides, both are 3.3e-4, with it off 5e-7 and 1.5e-6. GPT-mini's
twins, each at its framework's default, drifted 3.7e-3 apart in loss over 200 updates, 1.2e-4
with IEEE float32 on both.

No GPU runs here, so the trap emulates TF32 on the CPU, in float64 like every trap: the naive
port rounds both operands of each of its matrix products to TF32 (round to nearest even), in
the forward pass and in both products of the backward pass, as JAX's default does on such a
card; torch (float64) is the reference. The fixed port does not round: on a GPU that is
`jax.default_matmul_precision("highest")`, which the package's scripts set unless `--tf32`
asks for TF32 on both sides.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch
from harness import STEPS, Trap, max_gap, naive_and_fixed_tests, problem, run_oop
from pairs import max_abs_diff

LR, MOMENTUM = 0.5, 0.9
MANTISSA_DROPPED = 23 - 10  # float32's mantissa bits that TF32 does not keep
# The emulation against the GPU: the relative max error, against float64, of the 1024² float32
# product of tests/gpu_check.py's `defaults()` (the same two matrices: default_rng(0)), measured
# on an H200 under JAX's default and under torch with TF32 on (3.2851e-4 on both).
GPU_TF32_PRODUCT_ERROR = 3.2851e-4
EMULATION_TOL = 0.05  # relative; emulated 3.2797e-4: the card's rounding is not quite ours


def tf32(x: jax.Array) -> jax.Array:
    """`x` rounded to TF32 (round to nearest, ties to even), in x's own dtype. A float64 `x`
    is rounded to float32 first, as it would be on its way to a float32 product; a value that
    is not finite is left as it is."""
    f = x.astype(jnp.float32)
    bits = jax.lax.bitcast_convert_type(f, jnp.uint32)
    half, lsb = (1 << (MANTISSA_DROPPED - 1)) - 1, (bits >> MANTISSA_DROPPED) & 1
    bits = (bits + half + lsb) & ~jnp.uint32((1 << MANTISSA_DROPPED) - 1)
    rounded = jax.lax.bitcast_convert_type(bits, jnp.float32)
    return jnp.where(jnp.isfinite(f), rounded, f).astype(x.dtype)


@jax.custom_vjp
def tf32_matmul(a: jax.Array, b: jax.Array) -> jax.Array:
    """`a @ b` as a TF32 tensor core computes it: operands rounded, the sum kept wide."""
    return tf32(a) @ tf32(b)


def _fwd(a, b):
    return tf32_matmul(a, b), (a, b)


def _bwd(res, g):  # the backward pass's two products run in TF32 too
    a, b = res
    return tf32(g) @ tf32(b).T, tf32(a).T @ tf32(g)


tf32_matmul.defvjp(_fwd, _bwd)


def trajectory(matmul) -> list[dict[str, np.ndarray]]:
    """The 2-16-2 MLP's canonical weights after each SGD update, every product by `matmul`."""
    _, weights, batches = problem()

    def loss(p, x, y):
        h = jax.nn.relu(matmul(x, p["layers.0.weight"].T) + p["layers.0.bias"])  # (B, 16)
        logits = matmul(h, p["layers.1.weight"].T) + p["layers.1.bias"]  # (B, 2)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    tx = optax.sgd(LR, momentum=MOMENTUM)
    with jax.enable_x64(True):

        @jax.jit
        def step(p, s, x, y):
            updates, s = tx.update(jax.grad(loss)(p, x, y), s)
            return optax.apply_updates(p, updates), s

        params = {k: jnp.asarray(v) for k, v in weights.items()}
        state, out = tx.init(params), []
        for x, y in batches[:STEPS]:
            params, state = step(params, state, jnp.asarray(x), jnp.asarray(y))
            out.append({k: np.asarray(v) for k, v in params.items()})
    return out


@functools.cache
def torch_trajectory() -> list[dict[str, np.ndarray]]:
    return run_oop(lambda named: torch.optim.SGD([p for _, p in named], lr=LR, momentum=MOMENTUM))


TRAPS = [
    Trap(
        name="tf32-default",
        title="float32 products on a GPU: JAX defaults to TF32, torch to IEEE",
        quantity="max |Δparam| per step (TF32 emulated)",
        naive=lambda: max_gap(trajectory(tf32_matmul), torch_trajectory()),
        fixed=lambda: max_gap(trajectory(jnp.matmul), torch_trajectory()),
        naive_at_least=5e-3,  # measured 1.8e-2 over 60 steps (4.2e-5 after one)
    ),
]

test_naive_port_diverges, test_fixed_port_matches = naive_and_fixed_tests(TRAPS)


def test_the_emulation_errs_as_a_gpus_tf32_product():
    """TF32 keeps 10 mantissa bits, so rounding moves a value by at most 2^-11 of it; and a
    1024² product of emulated TF32 operands is as far from float64 as the H200's was, on the
    same two matrices."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 1024, 1024)).astype(np.float32)
    with jax.enable_x64(True):
        rounded = np.asarray(tf32(jnp.asarray(a, jnp.float64)))
        product = np.asarray(tf32(jnp.asarray(a, jnp.float64)) @ tf32(jnp.asarray(b, jnp.float64)))
    assert np.max(np.abs(rounded - a) / np.abs(a)) <= 2.0**-11
    assert np.all(rounded.view(np.uint64) & ((1 << 42) - 1) == 0)  # float64's 42 low bits: 0
    exact = a.astype(np.float64) @ b.astype(np.float64)
    error = max_abs_diff(product, exact) / np.max(np.abs(exact))
    assert abs(error / GPU_TF32_PRODUCT_ERROR - 1) <= EMULATION_TOL, f"emulated: {error:.4e}"
