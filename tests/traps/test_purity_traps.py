"""Traps of purity: JAX arrays are values and its randomness is a value too.

- `index-assignment`: torch changes a tensor where it lies (`w[i] = 0` under `no_grad`, to prune
  a hidden unit). A JAX array is immutable: `w[i] = 0` raises `TypeError`. Fix: `w.at[i].set(0)`
  returns a new array, and `eqx.tree_at` a new model holding it; the pruned twins then agree.
- `key-reuse`: torch's Dropout draws from a generator that moves on by itself; a JAX key is a
  value, and the same key gives the same draw. A loop that passes one key to every step drops
  the same units every step, so Dropout stops being noise. Fix: a fresh key every step
  (`key, sub = jax.random.split(key)`, or `jax.random.fold_in(key, step)` as
  `functional/interface.py` does).

Both on the package's own code: the harness's MLP, and `functional.layers.Dropout` against
`torch.nn.Dropout` (`oop.layers.Dropout`).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pairs
import torch
from harness import Trap, naive_and_fixed_tests, problem

import functional.layers as flayers
import oop.layers as olayers
from shared import data

UNIT = 3  # the hidden unit pruned


# -- index-assignment --
def torch_pruned_logits(x: np.ndarray) -> np.ndarray:
    config, weights, _ = problem()
    model = pairs.oop_model("mlp", config, weights)
    with torch.no_grad():
        model.layers[0].weight[UNIT] = 0.0  # in place: the module now holds the pruned weight
        model.layers[0].bias[UNIT] = 0.0
        return model(torch.from_numpy(x)).numpy()


def jax_pruned_logits(x: np.ndarray, functional_update: bool) -> np.ndarray:
    config, weights, _ = problem()
    with jax.enable_x64(True):
        model = pairs.functional_model("mlp", config, weights)
        first = model.layers[0]
        if functional_update:
            pruned = (first.weight.at[UNIT].set(0.0), first.bias.at[UNIT].set(0.0))
            model = eqx.tree_at(lambda m: (m.layers[0].weight, m.layers[0].bias), model, pruned)
        else:
            first.weight[UNIT] = 0.0  # TypeError: JAX arrays are immutable
            first.bias[UNIT] = 0.0
        return np.asarray(jax.vmap(model)(jnp.asarray(x)))


def pruned_gaps(functional_update: bool) -> np.ndarray:
    """Per test example of moons, the largest |Δlogit| between the pruned twins."""
    x = data.load("moons").x_test[:64]
    return np.max(np.abs(jax_pruned_logits(x, functional_update) - torch_pruned_logits(x)), axis=1)


# -- key-reuse --
STEPS, SHAPE, P = 20, (8, 16), 0.5


def repeats(masks: list[np.ndarray]) -> np.ndarray:
    """Per step, 1 where its mask equals the mask of an earlier step, else 0."""
    return np.array([float(any((m == e).all() for e in masks[:t])) for t, m in enumerate(masks)])


def jax_masks(split: bool) -> list[np.ndarray]:
    """The kept units of `functional.layers.Dropout` over STEPS steps of a training loop."""
    drop, key, ones, masks = flayers.Dropout(P), jax.random.PRNGKey(0), jnp.ones(SHAPE), []
    for _ in range(STEPS):
        if split:
            key, sub = jax.random.split(key)  # a fresh key for this step, a new one kept
        else:
            sub = key  # the same key every step
        masks.append(np.asarray(drop(ones, key=sub, inference=False) != 0))
    return masks


def torch_masks() -> list[np.ndarray]:
    drop = olayers.Dropout(P).train()
    with torch.random.fork_rng():  # the suite's global generator is left as it was
        torch.manual_seed(0)
        return [(drop(torch.ones(SHAPE)) != 0).numpy() for _ in range(STEPS)]


def repeat_gaps(split: bool) -> np.ndarray:
    """Per step, |JAX repeats an earlier mask - torch repeats one| (torch never does)."""
    return np.abs(repeats(jax_masks(split)) - repeats(torch_masks()))


TRAPS = [
    Trap(
        name="index-assignment",
        title="x[i] = v: JAX arrays are immutable",
        quantity="max |Δlogit| per example",
        naive=lambda: pruned_gaps(functional_update=False),
        fixed=lambda: pruned_gaps(functional_update=True),
        naive_at_least=0.0,
        kind="paradigm",
        raises=TypeError,
        match="immutable",
    ),
    Trap(
        name="key-reuse",
        title="one PRNG key for every step",
        quantity="|Δ(mask repeats an earlier one)| per step",
        naive=lambda: repeat_gaps(split=False),
        fixed=lambda: repeat_gaps(split=True),
        naive_at_least=0.5,  # every step after the first repeats the first mask
        fixed_tol=0.0,
        kind="paradigm",
    ),
]

test_naive_port_diverges, test_fixed_port_matches = naive_and_fixed_tests(TRAPS)


def test_pruning_changes_the_logits_on_both_sides():
    """The fix is proved on a real change: the pruned unit was active on these inputs."""
    config, weights, _ = problem()
    x = data.load("moons").x_test[:64]
    with torch.no_grad():
        whole = pairs.oop_model("mlp", config, weights)(torch.from_numpy(x)).numpy()
    assert np.max(np.abs(torch_pruned_logits(x) - whole)) > 1e-3


def test_a_reused_key_drops_the_same_units_and_a_split_one_does_not():
    same, fresh = jax_masks(split=False), jax_masks(split=True)
    assert all((m == same[0]).all() for m in same)
    assert 0.3 < np.mean(fresh[0] != fresh[1]) < 0.7  # independent draws: about half differ
