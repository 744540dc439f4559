"""Pytree <-> canonical dict (`name -> NumPy array`, torch layouts).

Generic over attribute paths: a leaf reached by `.layers[0].weight` is named `layers.0.weight`,
whatever the model. The same code names a level-1 parameter dict (`params["layers"][0]
["weight"]`) identically. Where an equinox layer stores an array in another layout than its torch
twin, `LAYOUT_RULES` says how to convert; the MLP needs none.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PyTree

from shared.checkpoint import check_weights

Rule = tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]

# layer type -> attribute -> (to canonical, from canonical)
LAYOUT_RULES: dict[type, dict[str, Rule]] = {
    # equinox keeps a conv bias as (C, 1, 1) so it broadcasts over (C, H, W); torch keeps (C,).
    eqx.nn.Conv2d: {"bias": (lambda b: b.reshape(-1), lambda b: b.reshape(-1, 1, 1))},
}
_IDENTITY: Rule = (lambda a: a, lambda a: a)


def _key_name(key) -> str:
    if isinstance(key, jax.tree_util.GetAttrKey):
        return key.name
    if isinstance(key, jax.tree_util.SequenceKey):
        return str(key.idx)
    if isinstance(key, jax.tree_util.DictKey):
        return str(key.key)
    raise TypeError(f"cannot name the pytree path entry {key!r}")


def _child(node, key):
    if isinstance(key, jax.tree_util.GetAttrKey):
        return getattr(node, key.name)
    return node[key.idx if isinstance(key, jax.tree_util.SequenceKey) else key.key]


def _entries(tree: PyTree) -> list[tuple[str, Rule]]:
    """Canonical name and layout rule of each array leaf, in `tree_leaves` order."""
    out = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        if not eqx.is_array(leaf):
            continue
        owner = tree
        for key in path[:-1]:
            owner = _child(owner, key)
        attr = _key_name(path[-1])
        out.append(
            (".".join(map(_key_name, path)), LAYOUT_RULES.get(type(owner), {}).get(attr, _IDENTITY))
        )
    return out


def _canonical_arrays(tree: PyTree) -> dict[str, jax.Array]:
    """Canonical name -> the array in torch's layout, still on its device."""
    arrays = [x for x in jax.tree_util.tree_leaves(tree) if eqx.is_array(x)]
    return {name: rule[0](x) for (name, rule), x in zip(_entries(tree), arrays, strict=True)}


def to_canonical(tree: PyTree) -> dict[str, np.ndarray]:
    """Every array of a model or parameter pytree, by canonical name, in torch's layout."""
    return {k: np.asarray(jax.device_get(v)) for k, v in _canonical_arrays(tree).items()}


def canonical_shapes(tree: PyTree) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in _canonical_arrays(tree).items()}


def from_canonical(tree: PyTree, weights: dict[str, np.ndarray]) -> PyTree:
    """`tree` with every array replaced by the canonical weight of the same name.

    Checks names, shapes and dtypes first and reports every mismatch in one error.
    """
    like = _canonical_arrays(tree)  # shapes and dtypes only: nothing is copied to the host
    check_weights(
        weights, {k: v.shape for k, v in like.items()}, {k: v.dtype.name for k, v in like.items()}
    )
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    entries = iter(_entries(tree))
    new = []
    for leaf in leaves:
        if eqx.is_array(leaf):
            name, rule = next(entries)
            new.append(jnp.asarray(rule[1](weights[name])))
        else:
            new.append(leaf)
    return jax.tree_util.tree_unflatten(treedef, new)
