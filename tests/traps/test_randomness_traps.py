"""Traps of hidden randomness and hidden dtypes: who else draws from torch's global generator,
and what dtype a JAX mean of booleans has.

- `dataloader-seed`: a torch `DataLoader` draws a seed from the global generator every time an
  iterator starts, even when its sampler needs no randomness. A run resumed from a saved
  generator state therefore gets Dropout masks shifted by one draw. Fix: give the loader its
  own `generator=`, as `oop.data.make_loader` does.
- `mean-of-bool`: `jnp.mean(pred == y)` is float32 even under `jax.enable_x64`, while torch
  computes whatever dtype it is asked for (`.double().mean()`). An accuracy compared in float64
  disagrees at 1e-8. Fix: `jnp.mean(correct, dtype=jnp.float64)`, or compare counts.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import torch
from harness import Trap, naive_and_fixed_tests
from torch.utils.data import DataLoader, TensorDataset

import functional.models.mlp as fmlp
from shared.config import MLPConfig

BATCHES, RESUME_AT, BATCH, P = 12, 6, 8, 0.5


def _masks(loader_generator: bool, first: int, last: int) -> list[np.ndarray]:
    """Dropout masks of batches first..last-1, drawn by a loop over a DataLoader whose iterator
    starts at batch `first`; the global generator holds the state of an uninterrupted run."""
    data = TensorDataset(torch.ones(BATCHES * BATCH, 4))
    indices = [list(range(b * BATCH, (b + 1) * BATCH)) for b in range(first, last)]
    private = torch.Generator().manual_seed(0) if loader_generator else None
    loader = DataLoader(data, batch_sampler=indices, generator=private)
    drop = torch.nn.Dropout(P).train()
    return [(drop(x) != 0).numpy() for (x,) in loader]


def dataloader_resume_gaps(loader_generator: bool) -> np.ndarray:
    """Per batch, the fraction of Dropout mask entries that differ between one uninterrupted
    run and a run stopped after RESUME_AT batches and resumed from the saved generator state."""
    state = torch.get_rng_state()
    try:
        torch.manual_seed(0)
        straight = _masks(loader_generator, 0, BATCHES)
        torch.manual_seed(0)
        _masks(loader_generator, 0, RESUME_AT)  # the first session
        saved = torch.get_rng_state()  # what a checkpoint stores as rng.torch
        torch.set_rng_state(saved)  # the resumed session: a new loader, a new iterator
        resumed = _masks(loader_generator, RESUME_AT, BATCHES)
    finally:
        torch.set_rng_state(state)
    return np.array([np.mean(a != b) for a, b in zip(straight[RESUME_AT:], resumed, strict=True)])


def accuracy_gaps(dtype) -> np.ndarray:
    """Per count of correct predictions out of 1000, |JAX accuracy - torch float64 accuracy|."""
    n = 1000
    correct = np.arange(n)[None, :] < np.arange(n + 1)[:, None]  # row c: c correct
    with jax.enable_x64(True):
        f = jax.vmap(lambda c: jnp.mean(c, dtype=dtype))(jnp.asarray(correct))
        f = np.asarray(f, np.float64)
    o = torch.from_numpy(correct).double().mean(dim=1).numpy()
    return np.abs(f - o)


TRAPS = [
    Trap(
        name="dataloader-seed",
        title="DataLoader draws from the global generator",
        quantity="fraction of mask entries differing per batch after resume",
        naive=lambda: dataloader_resume_gaps(loader_generator=False),
        fixed=lambda: dataloader_resume_gaps(loader_generator=True),
        naive_at_least=0.3,  # a shifted stream: about half of the entries differ (measured 0.56)
        fixed_tol=0.0,  # the same draws in the same order
    ),
    Trap(
        name="mean-of-bool",
        title="jnp.mean of booleans is float32 under x64",
        quantity="|Δaccuracy| per correct count out of 1000",
        naive=lambda: accuracy_gaps(None),
        fixed=lambda: accuracy_gaps(jnp.float64),
        naive_at_least=1e-9,  # float32 rounding of a fraction below 1 (measured 7.5e-8)
    ),
]

test_naive_port_diverges, test_fixed_port_matches = naive_and_fixed_tests(TRAPS)


def test_the_naive_mean_really_is_float32():
    with jax.enable_x64(True):
        assert jnp.mean(jnp.asarray([True, False])).dtype == jnp.float32
        assert jnp.mean(jnp.asarray([True, False]), dtype=jnp.float64).dtype == jnp.float64


def test_the_functional_evaluate_reports_accuracy_in_the_models_dtype():
    with jax.enable_x64(True):
        model = fmlp.init_model(MLPConfig(in_features=2, out_features=2, width=4),
                                key=jax.random.PRNGKey(0), dtype="float64")  # fmt: skip
        _, accuracy = fmlp.evaluate(model, jnp.zeros((3, 2)), jnp.array([0, 1, 1]))
    assert accuracy.dtype == jnp.float64
