"""nn.Module <-> canonical dict (`name -> NumPy array`, torch layouts).

torch's `state_dict()` keys already are the attribute paths, and its layouts are the canonical
ones, so this is a thin, checked wrapper around `state_dict` / `load_state_dict`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from shared.weights import CheckpointError, check_weights


# -- weights --
def to_canonical(module: nn.Module) -> dict[str, np.ndarray]:
    """Parameters and buffers by canonical name, as NumPy arrays on the host (copies)."""
    return {k: v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}


def canonical_shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def canonical_dtypes(module: nn.Module) -> dict[str, str]:
    """Parameters and buffers by canonical name -> NumPy dtype name (`num_batches_tracked` is
    int64 whatever the model's float dtype)."""
    return {k: str(v.dtype).removeprefix("torch.") for k, v in module.state_dict().items()}


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


# -- optimizer state --
def optimizer_to_canonical(
    model: nn.Module, optimizer: torch.optim.Optimizer, step: int
) -> dict[str, np.ndarray]:
    """`opt.step` (int64) and `opt.<state key>.<weight name>` for every per-parameter buffer.

    torch keeps a `step` per parameter (as a float tensor) for Adam, RMSprop and Adagrad; they
    all equal the number of updates, which is saved once.
    """
    names = {p: n for n, p in model.named_parameters()}
    out = {"opt.step": np.asarray(step, dtype=np.int64)}
    for p, state in optimizer.state.items():
        for key, value in state.items():
            if key != "step" and isinstance(value, torch.Tensor):
                out[f"opt.{key}.{names[p]}"] = value.detach().cpu().numpy().copy()
    return out


def optimizer_from_canonical(
    model: nn.Module, optimizer: torch.optim.Optimizer, tensors: dict[str, np.ndarray]
) -> None:
    """Load saved optimizer state through `optimizer.load_state_dict`, in place."""
    step = int(tensors["opt.step"])
    keys = sorted({k.split(".")[1] for k in tensors if k.startswith("opt.") and k != "opt.step"})
    names = {p: n for n, p in model.named_parameters()}
    counts_steps = not isinstance(optimizer, torch.optim.SGD)  # the others keep state["step"]
    problems = [
        f"opt.{key}.{names[p]}: missing from the checkpoint's optimizer state"
        for g in optimizer.param_groups
        for p in g["params"]
        for key in keys
        if f"opt.{key}.{names[p]}" not in tensors
    ]
    if problems:
        raise CheckpointError("optimizer state does not match:\n  " + "\n  ".join(problems))
    state, index = {}, 0
    for group in optimizer.param_groups:  # state_dict numbers parameters in this order
        for p in group["params"]:
            entry = {k: torch.from_numpy(np.array(tensors[f"opt.{k}.{names[p]}"])) for k in keys}
            if counts_steps:
                entry["step"] = torch.tensor(float(step), dtype=torch.float32)
            state[index] = entry
            index += 1
    saved = optimizer.state_dict()
    optimizer.load_state_dict({"state": state, "param_groups": saved["param_groups"]})
