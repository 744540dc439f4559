"""The model interface of the OOP side, written down, and the one adapter over it.

Twin of `functional/interface.py`. Every `oop/models/NAME.py` that `shared.registry` names is a
`Model`: an `nn.Module` and the functions that train and evaluate it in place. A model declares
`HAS_STATE` (buffers that `train()` mode moves: BatchNorm's statistics) and `STOCHASTIC` (masks
drawn from torch's global generator in `train()` mode) as its functional twin does; here neither
changes a signature, since the module keeps both inside, so the adapter is one step for all
four combinations. The character models are also `Decoder`s, read one token at a time.

Where a tuple holds an output and a state, the output comes first (`(out, h_n)`, as torch's
own `nn.GRU` returns them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn


# -- model --
@runtime_checkable
class Model(Protocol):
    """What a model file provides (`oop.models.MODELS[name]` is one).

    - `HAS_STATE`: the module holds buffers that `train()` mode moves in place and `eval()`
      reads (`state_dict()` carries them beside the parameters).
    - `STOCHASTIC`: `train()` mode draws from torch's global generator (`torch.manual_seed`),
      which a checkpoint keeps as `rng.torch` so that a resumed run draws on.
    - `DTYPES`: `"float32"` / `"float64"` -> the torch dtype.
    """

    HAS_STATE: bool
    STOCHASTIC: bool
    DTYPES: dict[str, torch.dtype]

    def init_model(self, config: Any, *, seed: int, dtype: str = "float32") -> nn.Module:
        """The module, its initial weights drawn after `torch.manual_seed(seed)`."""

    def loss_fn(self, model: nn.Module, x: Tensor, y: Tensor) -> Float[Tensor, ""]:
        """The mean loss of a batch, in whatever mode the module is in."""

    def train_step(
        self, model: nn.Module, optimizer: torch.optim.Optimizer, x: Tensor, y: Tensor, *,
        clip_norm: float | None = None,
    ) -> Tensor:  # fmt: skip
        """One update in place (`train()` mode, zero_grad, backward, step); the batch's loss
        before it, still on the device."""

    def evaluate(self, model: nn.Module, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """`(mean loss, accuracy)` in `eval()` mode, under `no_grad`."""


# -- decoding --
@runtime_checkable
class Decoder(Protocol):
    """A character model read one token at a time (rnn, gru and lstm on pycorpus; the gpt)."""

    def reset_decode(self, batch: int = 1) -> None:
        """Forget what was read: an empty KV cache, or a zero state, kept in the module."""

    def decode(self, token: Int[Tensor, " batch"]) -> Float[Tensor, "batch V"]:
        """One token per sequence in, the next token's logits out; the state moves in place."""


# -- adapter --
def init(module: Model, config: Any, *, seed: int, dtype: str) -> nn.Module:
    """The module for every model: its state, if any, lives inside."""
    return module.init_model(config, seed=seed, dtype=dtype)


def uniform_step(
    module: Model, model: nn.Module, optimizer: torch.optim.Optimizer, clip_norm: float | None
) -> Callable[[Tensor, Tensor], Tensor]:
    """Every model's step as `(x, y) -> loss`, updating `model` and `optimizer` in place; the
    buffers and the generator move inside, whichever of HAS_STATE and STOCHASTIC hold."""

    def uniform(x: Tensor, y: Tensor) -> Tensor:
        return module.train_step(model, optimizer, x, y, clip_norm=clip_norm)

    return uniform


def evaluate(module: Model, model: nn.Module, x: Tensor, y: Tensor) -> tuple[float, float]:
    """`(mean loss, accuracy)` of every model on a split, in `eval()` mode."""
    loss, accuracy = module.evaluate(model, x, y)
    return float(loss), float(accuracy)
