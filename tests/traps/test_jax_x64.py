"""Trap: JAX is 32-bit unless asked. float64 NumPy arrays handed to JAX become float32, silently.

Naive port: build float64 weights and data in NumPy, compare JAX with a float64 torch model.
JAX truncates every array to float32 and the two disagree by 4e-8, a float32-sized error in
what looks like a float64 comparison. Fix: run JAX inside `jax.enable_x64(True)` (or set
`jax_enable_x64` at start-up), as `functional.train --dtype float64` does. The package's own
`functional.convert.from_canonical` refuses the naive case: it checks every weight's dtype.
"""

from __future__ import annotations

import jax
import numpy as np
import torch
from harness import Trap, check_fixed, check_naive

import functional.level1.mlp as f1
import oop.level1.mlp as o1
import shared.level0.mlp as l0
from shared import data
from shared.config import MLPConfig

NAIVE_AT_LEAST = 1e-9  # measured 4.4e-8: float32 rounding of logits of size ~1


def logits_gaps(*, x64: bool) -> tuple[np.ndarray, str]:
    """Per test example, the largest |Δlogit| between JAX and float64 torch; JAX's dtype."""
    ds = data.load("digits")
    config = MLPConfig(in_features=ds.in_features, out_features=ds.num_classes)
    weights, x = l0.init(config, seed=0), ds.x_test[:64]  # float64
    with jax.enable_x64(x64):  # the naive port builds the pytree straight from NumPy
        n = len(config.sizes)
        params = {
            "layers": [
                {k: jax.numpy.asarray(weights[f"layers.{i}.{k}"]) for k in ("weight", "bias")}
                for i in range(n)
            ]
        }
        jax_logits = f1.apply(params, jax.numpy.asarray(x))
    torch_params = o1.init(config, seed=0, dtype=torch.float64)
    with torch.no_grad():
        for name, p in o1.named(torch_params):
            p.copy_(torch.from_numpy(weights[name]))
        torch_logits = o1.apply(torch_params, torch.from_numpy(x)).numpy()
    gaps = np.abs(np.asarray(jax_logits, np.float64) - torch_logits).max(axis=1)
    return gaps, str(jax_logits.dtype)


TRAPS = [
    Trap(
        name="jax-x64",
        title="JAX is 32-bit unless x64 is enabled",
        quantity="max |Δlogit| per example",
        naive=lambda: logits_gaps(x64=False)[0],
        fixed=lambda: logits_gaps(x64=True)[0],
        naive_at_least=NAIVE_AT_LEAST,
    )
]


def test_naive_float64_without_x64_is_silently_float32():
    gaps, dtype = logits_gaps(x64=False)
    assert dtype == "float32"
    assert check_naive(TRAPS[0]) > NAIVE_AT_LEAST


def test_fixed_with_x64_matches_torch_float64():
    _, dtype = logits_gaps(x64=True)
    assert dtype == "float64"
    check_fixed(TRAPS[0])
