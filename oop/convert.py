"""nn.Module <-> canonical dict (`name -> NumPy array`, torch layouts).

torch's `state_dict()` keys already are the attribute paths, and its layouts are the canonical
ones, so this is a thin, checked wrapper around `state_dict` / `load_state_dict`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from shared.checkpoint import check_weights


def to_canonical(module: nn.Module) -> dict[str, np.ndarray]:
    """Parameters and buffers by canonical name, as NumPy arrays on the host (copies)."""
    return {k: v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}


def canonical_shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def from_canonical(module: nn.Module, weights: dict[str, np.ndarray]) -> nn.Module:
    """Copy canonical weights into `module` in place (and return it).

    Checks names, shapes and dtypes first and reports every mismatch in one error.
    """
    state = module.state_dict()
    check_weights(
        weights,
        {k: tuple(v.shape) for k, v in state.items()},
        {k: str(v.dtype).removeprefix("torch.") for k, v in state.items()},
    )
    module.load_state_dict({k: torch.from_numpy(np.array(weights[k])) for k in state})
    return module
