"""Dicts of tensors <-> canonical dict (`name -> NumPy array`, torch layouts).

Twin of `functional/convert.py` and `oop/convert.py`. The weights already are `state_dict`'s
names and layouts, so this is a checked copy each way; the optimizer state (`OptState`'s
fields, torch's own keys) is saved as `opt.<key>.<name>` with the count as `opt.step`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from crossover.functional_torch.optim import OptState
from shared.weights import check_optimizer_tensors, check_weights

Params = dict[str, Tensor]


# -- weights --
def to_canonical(*dicts: Params | None) -> dict[str, np.ndarray]:
    """Weights (and buffers, where a second dict holds them) as host NumPy copies."""
    return {k: v.detach().cpu().numpy().copy() for d in dicts if d for k, v in d.items()}


def canonical_like(*dicts: Params | None) -> dict[str, tuple[tuple[int, ...], str]]:
    """Name -> (shape, NumPy dtype name) of everything `to_canonical` writes."""
    return {k: (tuple(v.shape), str(v.dtype).removeprefix("torch."))
            for d in dicts if d for k, v in d.items()}  # fmt: skip


def from_canonical(
    params: Params, buffers: Params | None, weights: dict[str, np.ndarray]
) -> tuple[Params, Params | None]:
    """New `(params, buffers)` dicts shaped like the ones given, holding the canonical weights
    (and buffers) of the same names; `buffers` None stays None.

    Checks names, shapes and dtypes of both first and reports every mismatch in one error.
    """
    meta = canonical_like(params, buffers)
    check_weights(
        weights, {k: s for k, (s, _) in meta.items()}, {k: d for k, (_, d) in meta.items()}
    )

    def load(like: Params) -> Params:
        return {k: torch.from_numpy(np.array(weights[k])).to(v.device) for k, v in like.items()}

    return load(params), None if buffers is None else load(buffers)


# -- optimizer state --
def opt_state_to_canonical(state: OptState, step: int) -> dict[str, np.ndarray]:
    """`opt.step` (int64) and `opt.<torch key>.<weight name>` for every buffer."""
    out = {"opt.step": np.asarray(step, dtype=np.int64)}
    for key, buffers in state._asdict().items():
        if key != "step" and buffers is not None:
            out.update({f"opt.{key}.{k}": v for k, v in to_canonical(buffers).items()})
    return out


def opt_state_from_canonical(state: OptState, tensors: dict[str, np.ndarray]) -> OptState:
    """`state` (a fresh `optimizer.init(params)`) with the saved buffers and step count."""
    step = int(tensors["opt.step"])
    expected = opt_state_to_canonical(state, step)
    check_optimizer_tensors(tensors, expected)
    new = {  # each buffer where the fresh state's is: the parameters' device
        key: {k: torch.from_numpy(np.array(tensors[f"opt.{key}.{k}"])).to(v.device)
              for k, v in buffers.items()}
        for key, buffers in state._asdict().items()
        if key != "step" and buffers is not None
    }  # fmt: skip
    return state._replace(step=torch.tensor(step, dtype=torch.int64), **new)
