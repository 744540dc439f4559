"""Flax NNX module <-> canonical dict (`name -> NumPy array`, torch layouts), in place.

Twin of `oop/convert.py` and `functional/convert.py`. An `nnx.Module` is an object graph, as an
`nn.Module` is: a variable reached by `model.layers[0].kernel` has the path `('layers', 0,
'kernel')`. Flax names and lays out some arrays otherwise than torch: `nnx.Linear` keeps
`kernel` as `(in, out)` where `nn.Linear` keeps `weight` as `(out, in)`, `nnx.Conv` keeps its
kernel as `(H, W, in, out)`, `nnx.LayerNorm` and `nnx.BatchNorm` call their weight `scale`.
`LAYOUT_RULES` maps each layer type's attribute to torch's name and layout; a model never
special-cases it. Loading writes into the module's variables, as `load_state_dict` does.

The optimizer's state is optax's (`nnx.Optimizer` holds an optax state whose per-parameter
entries are `nnx.State`s shaped like the model), so it is walked with the functional side's
`map_opt_state` and saved under torch's keys (`opt.exp_avg.layers.0.weight`).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from functional.convert import map_opt_state, to_device
from shared.weights import check_optimizer_tensors, check_weights

Rule = tuple[str, Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]


def _same(a):
    return a


def _t(a):
    return a.T


# layer type -> flax attribute -> (torch's attribute, to canonical, from canonical)
LAYOUT_RULES: dict[type, dict[str, Rule]] = {
    nnx.Linear: {"kernel": ("weight", _t, _t)},  # (in, out) <-> (out, in)
    nnx.Conv: {  # (H, W, in, out) <-> (out, in, H, W)
        "kernel": ("weight", lambda k: k.transpose(3, 2, 0, 1), lambda w: w.transpose(2, 3, 1, 0))
    },
    nnx.Embed: {"embedding": ("weight", _same, _same)},
    nnx.LayerNorm: {"scale": ("weight", _same, _same)},
    nnx.BatchNorm: {  # and its subclass crossover.oop_jax.layers.BatchNorm2d
        "scale": ("weight", _same, _same),
        "mean": ("running_mean", _same, _same),
        "var": ("running_var", _same, _same),
    },
}
_KEEP: dict[str, Rule] = {}


# -- weights --
def _owners(model: nnx.Module) -> dict[tuple, type]:
    """The path of every module in the graph -> its type."""
    return {
        path: type(node) for path, node in nnx.iter_graph(model) if isinstance(node, nnx.Module)
    }


def _entries(model: nnx.Module, state: nnx.State) -> list[tuple[tuple, str, Rule]]:
    """`(flax path, canonical name, rule)` of each variable of `state` (a state of `model`, or
    one shaped like its parameters, as an optimizer's moments are), in the state's order."""
    owners, out = _owners(model), []
    for path, _ in nnx.to_flat_state(state):
        owner = owners.get(path[:-1], object)
        rules = next((LAYOUT_RULES[c] for c in owner.__mro__ if c in LAYOUT_RULES), _KEEP)
        attr = str(path[-1])
        name, to, back = rules.get(attr, (attr, _same, _same))
        out.append((path, ".".join([*map(str, path[:-1]), name]), (name, to, back)))
    return out


def _arrays(model: nnx.Module) -> nnx.State:
    """What a checkpoint holds of the model: its parameters and batch statistics (not its
    random streams, which `nnx.Rngs` keeps as variables too)."""
    return nnx.state(model, nnx.Any(nnx.Param, nnx.BatchStat))


def _host(a) -> np.ndarray:
    """A host copy; an integer (a BatchNorm's count, int32 without x64) as torch's int64."""
    a = np.asarray(jax.device_get(a))
    return a.astype(np.int64) if a.dtype.kind == "i" else a


def _canonical(model: nnx.Module, state: nnx.State) -> dict[str, np.ndarray]:
    values = dict(nnx.to_flat_state(state))
    return {
        name: _host(rule[1](values[path].get_value()))
        for path, name, rule in _entries(model, state)
    }


def canonical_of(model: nnx.Module, state: nnx.State) -> dict[str, np.ndarray]:
    """A state shaped like the model's parameters (its gradients, an optimizer's moments) by
    canonical name, in torch's layouts."""
    return _canonical(model, state)


def leaf_names(model: nnx.Module) -> Callable[[nnx.State], list[str]]:
    """`names_of` for `functional.optim.make_optimizer`: a parameter state of `model` (as
    `nnx.Optimizer` hands it to optax) -> each leaf's canonical name, in `tree_leaves` order, so
    that `no_decay` patterns (`wte.weight`) match NNX's attributes (`wte.embedding`)."""

    def names_of(state) -> list[str]:
        flat = jax.tree_util.tree_flatten_with_path(state)[0]
        named = {path: name for path, name, _ in _entries(model, nnx.state(model, nnx.Param))}
        return [named[tuple(k.key for k in p if isinstance(k, jax.tree_util.DictKey))]
                for p, _ in flat]  # fmt: skip

    return names_of


def to_canonical(model: nnx.Module) -> dict[str, np.ndarray]:
    """Parameters and batch statistics by canonical name, in torch's layouts (host copies)."""
    return _canonical(model, _arrays(model))


def canonical_like(model: nnx.Module) -> dict[str, jax.ShapeDtypeStruct]:
    """The name, shape and dtype of everything `to_canonical` writes, without a host copy."""
    state = _arrays(model)
    values = dict(nnx.to_flat_state(state))
    out = {}
    for path, name, rule in _entries(model, state):
        like = jax.eval_shape(rule[1], values[path].get_value())
        kind = np.dtype(like.dtype).kind
        out[name] = jax.ShapeDtypeStruct(like.shape, np.int64 if kind == "i" else like.dtype)
    return out


def from_canonical(model: nnx.Module, weights: dict[str, np.ndarray]) -> nnx.Module:
    """Copy canonical weights into `model`'s variables in place (and return it).

    Checks names, shapes and dtypes first and reports every mismatch in one error.
    """
    like = canonical_like(model)
    check_weights(
        weights, {k: v.shape for k, v in like.items()}, {k: v.dtype.name for k, v in like.items()}
    )
    state = _arrays(model)
    values = dict(nnx.to_flat_state(state))
    for path, name, rule in _entries(model, state):
        variable = values[path]
        variable.set_value(
            to_device(rule[2](np.asarray(weights[name])), variable.get_value().dtype)
        )
    return model


# -- optimizer state --
def optimizer_to_canonical(
    model: nnx.Module, optimizer: nnx.Optimizer, step: int
) -> dict[str, np.ndarray]:
    """`opt.step` (int64) and `opt.<torch key>.<weight name>` for every buffer, torch layouts."""
    out = {"opt.step": np.asarray(step, dtype=np.int64)}

    def buffer(key, moments):
        out.update({f"opt.{key}.{k}": v for k, v in _canonical(model, moments).items()})
        return moments

    map_opt_state(optimizer.opt_state, buffer, _same)
    return out


def optimizer_from_canonical(
    model: nnx.Module, optimizer: nnx.Optimizer, tensors: dict[str, np.ndarray]
) -> None:
    """Load saved optimizer state into `optimizer` in place: every buffer, every count and the
    optimizer's own `step`."""
    step = int(tensors["opt.step"])
    expected = optimizer_to_canonical(model, optimizer, step)
    check_optimizer_tensors(tensors, expected)

    def buffer(key, moments):
        values = dict(nnx.to_flat_state(moments))
        for path, name, rule in _entries(model, moments):
            v = values[path]
            v.set_value(to_device(rule[2](tensors[f"opt.{key}.{name}"]), v.get_value().dtype))
        return moments

    def count(variable):
        variable.set_value(jnp.asarray(step, variable.get_value().dtype))
        return variable

    map_opt_state(optimizer.opt_state, buffer, count)
    count(optimizer.step)


# -- random streams --
def rng_to_canonical(model: nnx.Module) -> dict[str, np.ndarray]:
    """Every `nnx.Rngs` stream the model keeps (each Dropout's), as `rng.nnx.<path>.key` (the
    key's raw uint32 data) and `rng.nnx.<path>.count` (the draws so far): with them a resumed
    run draws on where it stopped, as `rng.torch` does for the OOP side."""
    out = {}
    for path, v in nnx.to_flat_state(nnx.state(model, nnx.RngState)):
        value = v.get_value()
        if jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key):
            value = jax.random.key_data(value)
        out["rng.nnx." + ".".join(map(str, path))] = np.asarray(jax.device_get(value))
    return out


def rng_from_canonical(model: nnx.Module, tensors: dict[str, np.ndarray]) -> bool:
    """Put saved streams back into `model`, in place; False (nothing changed) where the file
    holds none of this model's streams (a run written by another side draws otherwise)."""
    flat = nnx.to_flat_state(nnx.state(model, nnx.RngState))
    names = {"rng.nnx." + ".".join(map(str, path)): v for path, v in flat}
    if not names or not all(n in tensors for n in names):
        return False
    for name, v in names.items():
        old = v.get_value()
        if jax.dtypes.issubdtype(old.dtype, jax.dtypes.prng_key):
            v.set_value(
                jax.random.wrap_key_data(to_device(tensors[name]), impl=jax.random.key_impl(old))
            )
        else:
            v.set_value(to_device(tensors[name], old.dtype))
    return True
