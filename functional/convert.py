"""Pytree <-> canonical dict (`name -> NumPy array`, torch layouts).

Generic over attribute paths: a leaf reached by `.layers[0].weight` is named `layers.0.weight`,
whatever the model. The same code names a level-1 parameter dict (`params["layers"][0]
["weight"]`) identically. Where an equinox layer stores an array in another layout than its torch
twin, `LAYOUT_RULES` says how to convert; the MLP needs none.

A template to load weights into need not hold drawn weights: `skeleton(init_model, config)` is
the model with every array a `jax.ShapeDtypeStruct` (nothing drawn, nothing compiled), and
`from_canonical` fills it. Evaluating, sampling, `--init` and `--resume` start from one.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PyTree

from shared.weights import check_optimizer_tensors, check_weights

Rule = tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]

# layer type -> attribute -> (to canonical, from canonical)
LAYOUT_RULES: dict[type, dict[str, Rule]] = {
    # equinox keeps a conv bias as (C, 1, 1) so it broadcasts over (C, H, W); torch keeps (C,).
    eqx.nn.Conv2d: {"bias": (lambda b: b.reshape(-1), lambda b: b.reshape(-1, 1, 1))},
}
_IDENTITY: Rule = (lambda a: a, lambda a: a)


# -- weights --
def to_device(a, dtype=None) -> jax.Array:
    """A host array on JAX's default device, as `dtype` if given (cast by NumPy, as
    `jnp.asarray(a, dtype)` would). `jax.device_put` copies; `jnp.asarray` of a NumPy array
    compiles a small XLA program per shape and dtype (JAX 0.10: about 10 ms each on a 2-core
    CPU), so loading a checkpoint through it compiled one per weight shape."""
    return jax.device_put(np.asarray(a, dtype))


def is_array_or_shape(leaf) -> bool:
    """An array, or the shape and dtype of one (a skeleton's leaf)."""
    return eqx.is_array(leaf) or isinstance(leaf, jax.ShapeDtypeStruct)


def skeleton(init_model: Callable, config, *, dtype: str = "float32"):
    """What `init_model(config, key=..., dtype=dtype)` returns, a model or `(model, state)`,
    with every array replaced by its `jax.ShapeDtypeStruct`: the structure without drawing a
    weight or compiling the draws (XLA compiles one random kernel per weight shape).

    **Arguments:**

    - `init_model`: a model module's `init_model`.
    - `config`: its model config.
    - `dtype`: `"float32"` or `"float64"`.

    **Returns:** the template for `from_canonical` or `from_canonical_with_state`.
    """
    return eqx.filter_eval_shape(init_model, config, key=jax.random.PRNGKey(0), dtype=dtype)


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
        if not is_array_or_shape(leaf):
            continue
        owner = tree
        for key in path[:-1]:
            owner = _child(owner, key)
        attr = _key_name(path[-1])
        out.append(
            (".".join(map(_key_name, path)), LAYOUT_RULES.get(type(owner), {}).get(attr, _IDENTITY))
        )
    return out


def _canonical_arrays(tree: PyTree) -> dict[str, jax.Array | jax.ShapeDtypeStruct]:
    """Canonical name -> the array in torch's layout, still on its device (a skeleton's leaf:
    its shape and dtype in torch's layout)."""
    arrays = [x for x in jax.tree_util.tree_leaves(tree) if is_array_or_shape(x)]
    return {
        name: jax.eval_shape(rule[0], x) if isinstance(x, jax.ShapeDtypeStruct) else rule[0](x)
        for (name, rule), x in zip(_entries(tree), arrays, strict=True)
    }


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
        if is_array_or_shape(leaf):
            name, rule = next(entries)
            new.append(to_device(rule[1](weights[name])))
        else:
            new.append(leaf)
    return jax.tree_util.tree_unflatten(treedef, new)


def leaf_names(tree: PyTree) -> list[str]:
    """The canonical name of each array leaf, in `tree_leaves` order."""
    return [name for name, _ in _entries(tree)]


# -- optimizer state --
# (optax state type, field) -> torch's per-parameter state key. A field holding one array per
# parameter is saved as `opt.<torch key>.<weight name>`; every `count` becomes `opt.step`.
STATE_KEYS = {
    ("TraceState", "trace"): "momentum_buffer",
    ("ScaleByAdamState", "mu"): "exp_avg",
    ("ScaleByAdamState", "nu"): "exp_avg_sq",
    ("ScaleByRmsState", "nu"): "square_avg",
    ("ScaleByRStdDevState", "mu"): "grad_avg",
    ("ScaleByRStdDevState", "nu"): "square_avg",
    ("ScaleByTorchAdagradState", "sum"): "sum",
}


def map_opt_state(node, on_buffer, on_count):
    """Rebuild an optax state, replacing per-parameter buffers (`on_buffer(torch key, pytree)`)
    and counts (`on_count(count)`); walks chains, masks and any other NamedTuple or tuple of
    states. Flax NNX's `nnx.Optimizer` keeps the same states (`crossover/oop_jax/convert.py`)."""
    if isinstance(node, tuple) and hasattr(node, "_fields"):  # a NamedTuple state
        new = {}
        for field in node._fields:
            value = getattr(node, field)
            key = STATE_KEYS.get((type(node).__name__, field))
            if key is not None:
                new[field] = on_buffer(key, value)
            elif field == "count":
                new[field] = on_count(value)
            else:
                new[field] = map_opt_state(value, on_buffer, on_count)
        return node._replace(**new)
    if isinstance(node, tuple | list):
        return type(node)(map_opt_state(c, on_buffer, on_count) for c in node)
    return node


def opt_state_to_canonical(opt_state: PyTree, step: int) -> dict[str, np.ndarray]:
    """`opt.step` (int64) and `opt.<torch key>.<weight name>` for every buffer, torch layouts."""
    out = {"opt.step": np.asarray(step, dtype=np.int64)}

    def buffer(key, value):
        out.update({f"opt.{key}.{name}": a for name, a in to_canonical(value).items()})
        return value

    map_opt_state(opt_state, buffer, lambda c: c)
    return out


def opt_state_from_canonical(opt_state: PyTree, tensors: dict[str, np.ndarray]) -> PyTree:
    """`opt_state` (a fresh `optimizer.init(params)`) with the saved buffers and step count."""
    step = int(tensors["opt.step"])
    expected = opt_state_to_canonical(opt_state, step)
    check_optimizer_tensors(tensors, expected)

    def buffer(key, value):
        prefix = f"opt.{key}."
        return from_canonical(
            value, {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        )

    return map_opt_state(opt_state, buffer, lambda c: jnp.asarray(step, dtype=c.dtype))


# -- model state (BatchNorm statistics) --
def _stateful_layers(model: PyTree) -> list[tuple[str, eqx.Module]]:
    """`(canonical path, layer)` of every layer that keeps state: it carries an `index`
    (`eqx.nn.StateIndex`) and the torch buffer names of its state (`state_names`)."""

    def is_stateful(node) -> bool:
        return isinstance(node, eqx.Module) and hasattr(node, "state_names")

    flat = jax.tree_util.tree_flatten_with_path(model, is_leaf=is_stateful)[0]
    return [(".".join(map(_key_name, p)), n) for p, n in flat if is_stateful(n)]


def model_state_to_canonical(model: PyTree, state: eqx.nn.State) -> dict[str, np.ndarray]:
    """torch's buffers from an equinox state: `norms.0.running_mean`, ..., counts as int64."""
    out = {}
    for path, layer in _stateful_layers(model):
        for name, value in zip(layer.state_names, state.get(layer.index), strict=True):
            value = np.asarray(jax.device_get(value))
            out[f"{path}.{name}"] = value.astype(np.int64) if value.dtype.kind == "i" else value
    return out


def model_state_from_canonical(
    model: PyTree, state: eqx.nn.State, tensors: dict[str, np.ndarray]
) -> eqx.nn.State:
    """`state` with every stateful layer's values replaced by the canonical buffers."""
    for path, layer in _stateful_layers(model):
        old = state.get(layer.index)
        new = tuple(
            to_device(tensors[f"{path}.{name}"], o.dtype)
            for name, o in zip(layer.state_names, old, strict=True)
        )
        state = state.set(layer.index, new)
    return state


# -- a model with its state --
def to_canonical_with_state(model: PyTree, state: eqx.nn.State | None) -> dict[str, np.ndarray]:
    """Weights and, if any, the state's buffers: what a checkpoint holds of a model."""
    return {
        **to_canonical(model),
        **(model_state_to_canonical(model, state) if state is not None else {}),
    }


def _state_like(model: PyTree, state: eqx.nn.State) -> dict[str, jax.ShapeDtypeStruct]:
    out = {}
    for path, layer in _stateful_layers(model):
        for name, value in zip(layer.state_names, state.get(layer.index), strict=True):
            kind = np.dtype(value.dtype).kind
            out[f"{path}.{name}"] = jax.ShapeDtypeStruct(
                value.shape, np.int64 if kind == "i" else value.dtype
            )
    return out


def canonical_like(model: PyTree, state: eqx.nn.State | None) -> dict[str, jax.ShapeDtypeStruct]:
    """The name, shape and dtype of everything a checkpoint of `(model, state)` holds, as
    `to_canonical_with_state` writes it; a skeleton answers as well as a model."""
    weights = {
        k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in _canonical_arrays(model).items()
    }
    return {**weights, **({} if state is None else _state_like(model, state))}


def from_canonical_with_state(
    model: PyTree, state: eqx.nn.State | None, tensors: dict[str, np.ndarray]
) -> tuple[PyTree, eqx.nn.State | None]:
    """`(model, state)` with the canonical weights and buffers; every mismatch in one error.
    `(model, state)` may be a skeleton."""
    buffers = set() if state is None else set(_state_like(model, state))
    model = from_canonical(model, {k: v for k, v in tensors.items() if k not in buffers})
    return model, (None if state is None else model_state_from_canonical(model, state, tensors))
