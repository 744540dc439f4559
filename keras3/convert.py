"""Keras models <-> the canonical checkpoint (torch's names and layouts), by attribute path.

Twin of `oop/convert.py`. Every Keras variable has a canonical name: the model's attribute path
(torch's module names) and the leaf's torch name, and a layout rule between Keras's array and
torch's. What the rules say is what Keras stores:


- `Dense` (`keras3.layers.Linear`): `kernel` `(in, out)` is torch's `weight` `(out, in)`
  transposed; `bias` is `bias`.
- `Conv2D`: `kernel` is HWIO `(3, 3, in, out)` in every data format; torch's `weight` is OIHW.
- `Embedding`: `embeddings` `(V, C)` is `weight`, as it is.
- `LayerNormalization`: `gamma`, `beta` are `weight`, `bias`.
- `keras3.layers.BatchNorm2d`: torch's five names, as they are.
- the recurrent cell of `rnn[k]`: `kernel` `(in, g*u)`, `recurrent_kernel` `(u, g*u)`, `bias`,
  `recurrent_bias` are `weight_ih_l{k}` `(g*u, in)`, `weight_hh_l{k}`, `bias_ih_l{k}`,
  `bias_hh_l{k}`: transposed, and the GRU's gate blocks z, r, h reordered to torch's r, z, n.

Keras's own `GRU(reset_after=True)` keeps the two biases as one `(2, 3u)` array (rows: input,
recurrent) and its `LSTM` one bias (`unit_forget_bias=True` adds 1 to the forget gate's at
initialisation); `keras3.layers`' cells keep torch's two. Optimizer slots convert with their
variable's rule; each Dropout's seed generator is saved as `rng.keras.<path>`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import keras
import numpy as np

from keras3.layers import BatchNorm2d, Cell, GRUCell
from shared.weights import check_optimizer_tensors, check_weights

Rule = tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]
SAME: Rule = (lambda a: a, lambda a: a)
TRANSPOSE: Rule = (lambda a: a.T, lambda a: a.T)
HWIO: Rule = (lambda a: a.transpose(3, 2, 0, 1), lambda a: a.transpose(2, 3, 1, 0))

# attribute -> canonical name where Keras forbids torch's: keras.Model.layers is a property
RENAMED = {"linears": "layers"}


def _gru_gates(a: np.ndarray, axis: int) -> np.ndarray:
    """Swap the first two gate blocks along `axis`: Keras's z, r, h <-> torch's r, z, n."""
    z, r, h = np.split(a, 3, axis=axis)
    return np.concatenate([r, z, h], axis=axis)


def _cell_rules(cell: Cell) -> dict[str, Rule]:
    """A cell's variables -> (torch's leaf name without `_l{k}`, rule)."""
    gru = isinstance(cell, GRUCell)
    matrix: Rule = (
        (lambda a: _gru_gates(a.T, 0), lambda a: _gru_gates(a, 0).T) if gru else TRANSPOSE
    )
    vector: Rule = (lambda a: _gru_gates(a, 0), lambda a: _gru_gates(a, 0)) if gru else SAME
    return {"kernel": ("weight_ih", matrix), "recurrent_kernel": ("weight_hh", matrix),
            "bias": ("bias_ih", vector), "recurrent_bias": ("bias_hh", vector)}  # fmt: skip


def _leaves(layer: keras.layers.Layer) -> dict[str, tuple[str, Rule]]:
    """A layer's own variables (by attribute) -> (torch's leaf name, rule)."""
    if isinstance(layer, keras.layers.Dense):
        return {"kernel": ("weight", TRANSPOSE), "bias": ("bias", SAME)}
    if isinstance(layer, keras.layers.Conv2D):
        return {"kernel": ("weight", HWIO), "bias": ("bias", SAME)}
    if isinstance(layer, keras.layers.Embedding):
        return {"embeddings": ("weight", SAME)}
    if isinstance(layer, keras.layers.LayerNormalization):
        return {"gamma": ("weight", SAME), "beta": ("bias", SAME)}
    if isinstance(layer, BatchNorm2d):
        names = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
        return {n: (n, SAME) for n in names}
    return {}


def _children(layer: keras.layers.Layer) -> Iterator[tuple[str, object]]:
    """Public attributes holding layers or lists of layers. On the torch backend a Keras layer
    is also an `nn.Module`, which keeps its sublayers in `_modules` rather than `__dict__`."""
    attributes = {**getattr(layer, "_modules", {}), **vars(layer)}
    for name, value in attributes.items():
        if name.startswith("_"):
            continue
        if isinstance(value, keras.layers.Layer) or (
            isinstance(value, list | tuple) and value
            and all(isinstance(v, keras.layers.Layer) for v in value)
        ):  # fmt: skip
            yield RENAMED.get(name, name), value


def entries(model: keras.layers.Layer, prefix: str = "") -> list[tuple[str, object, Rule]]:
    """`(canonical name, Keras variable, rule)` for every variable the checkpoint holds, in
    torch's `state_dict()` order."""
    out = []
    for attr, rule in _leaves(model).items():
        variable = getattr(model, attr, None)
        if variable is not None:
            out.append((prefix + rule[0], variable, rule[1]))
    for name, child in _children(model):
        if isinstance(child, keras.layers.Layer):
            out += entries(child, f"{prefix}{name}.")
        elif all(isinstance(c, keras.layers.RNN) for c in child):  # torch's fused names
            for k, layer in enumerate(child):
                for attr, (leaf, rule) in _cell_rules(layer.cell).items():
                    out.append((f"{prefix}{name}.{leaf}_l{k}", getattr(layer.cell, attr), rule))
        else:
            for k, c in enumerate(child):
                out += entries(c, f"{prefix}{name}.{k}.")
    return out


def _numpy(variable) -> np.ndarray:
    a = np.array(keras.ops.convert_to_numpy(variable.value))
    return a.astype(np.int64) if a.dtype.kind in "iu" else a


# -- weights --
def to_canonical(model: keras.Model) -> dict[str, np.ndarray]:
    """Weights and BatchNorm statistics by canonical name, in torch's layouts (host copies)."""
    return {name: np.array(rule[0](_numpy(v)), order="C") for name, v, rule in entries(model)}


def canonical_like(model: keras.Model) -> dict[str, tuple[tuple[int, ...], str]]:
    """name -> (torch's shape, dtype name) of everything `to_canonical` writes."""
    return {k: (v.shape, v.dtype.name) for k, v in to_canonical(model).items()}


def from_canonical(model: keras.Model, weights: dict[str, np.ndarray]) -> keras.Model:
    """Copy canonical weights into `model`'s variables in place (and return it); every
    mismatch of name, shape or dtype in one error first."""
    like = canonical_like(model)
    check_weights(weights, {k: s for k, (s, _) in like.items()},
                  {k: d for k, (_, d) in like.items()})  # fmt: skip
    for name, variable, rule in entries(model):
        variable.assign(np.asarray(rule[1](np.asarray(weights[name])), dtype=variable.dtype))
    return model


def names_by_path(model: keras.Model) -> dict[str, str]:
    """Keras variable path (`mlp/dense/kernel`) -> canonical name, for the optimizer's
    `no_decay` patterns, which name torch's attributes."""
    return {v.path: name for name, v, _ in entries(model)}


# -- optimizer state --
def _trainable(model: keras.Model) -> list[tuple[str, object, Rule]]:
    return [e for e in entries(model) if e[1].trainable]


def optimizer_to_canonical(model: keras.Model, optimizer, step: int) -> dict[str, np.ndarray]:
    """`opt.step` (int64) and `opt.<torch key>.<weight name>` for every slot, torch layouts.
    `optimizer` is a `keras3.optim.TorchOptimizer`, whose slots carry torch's keys."""
    out = {"opt.step": np.asarray(step, dtype=np.int64)}
    for name, variable, rule in _trainable(model):
        for key, slot in optimizer.slots_of(variable).items():
            out[f"opt.{key}.{name}"] = np.array(rule[0](_numpy(slot)), order="C")
    return out


def optimizer_from_canonical(model: keras.Model, optimizer, tensors: dict[str, np.ndarray]) -> None:
    """Load saved optimizer state into `optimizer` in place: every slot and its `iterations`."""
    step = int(tensors["opt.step"])
    expected = optimizer_to_canonical(model, optimizer, step)
    check_optimizer_tensors(tensors, expected)
    for name, variable, rule in _trainable(model):
        for key, slot in optimizer.slots_of(variable).items():
            slot.assign(np.asarray(rule[1](tensors[f"opt.{key}.{name}"]), dtype=slot.dtype))
    optimizer.iterations.assign(step)


# -- random streams --
def _seed_generators(layer, prefix: str = "") -> Iterator[tuple[str, object]]:
    generator = getattr(layer, "seed_generator", None)
    if generator is not None:
        yield prefix.rstrip("."), generator
    for name, child in _children(layer):
        for k, c in [(None, child)] if isinstance(child, keras.layers.Layer) else enumerate(child):
            yield from _seed_generators(c, f"{prefix}{name}." + ("" if k is None else f"{k}."))


def rng_to_canonical(model: keras.Model) -> dict[str, np.ndarray]:
    """Each Dropout's seed-generator state as `rng.keras.<path>`: with them a resumed run draws
    on where it stopped, as `rng.torch` does for the OOP side."""
    return {f"rng.keras.{p}": _numpy(g.state) for p, g in _seed_generators(model)}


def rng_from_canonical(model: keras.Model, tensors: dict[str, np.ndarray]) -> bool:
    """Put saved seed states back; False (nothing changed) where the file holds none of this
    model's (a run written by another side draws otherwise)."""
    generators = {f"rng.keras.{p}": g for p, g in _seed_generators(model)}
    if not generators or not all(n in tensors for n in generators):
        return False
    for name, g in generators.items():
        g.state.assign(np.asarray(tensors[name], dtype=g.state.dtype))
    return True
