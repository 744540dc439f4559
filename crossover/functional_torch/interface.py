"""The model interface of the functions-on-torch corner, written down, and the one adapter.

Twin of `functional/interface.py`: every `crossover/functional_torch/models/NAME.py` is a
`Model`, plain functions over dicts of tensors and a skeleton module that holds no weights. A
model declares `HAS_STATE` (buffers threaded in and out as a second dict) and `STOCHASTIC` (a
`torch.Generator` passed into the step), and the adapter below turns the four combinations into
one signature for the training loop, as the functional side's does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor, nn

from crossover.functional_torch.optim import GradientTransformation, OptState

Params = dict[str, Tensor]


# -- model --
@runtime_checkable
class Model(Protocol):
    """What a model file provides (`crossover.functional_torch.models.MODELS[name]` is one).

    - `HAS_STATE`: `init_model` returns `(params, buffers)`, and `loss_fn`, the step and
      `evaluate` take the buffers after the params and return new ones.
    - `STOCHASTIC`: the step takes a `torch.Generator`, the last argument.
    - `DTYPES`: `"float32"` / `"float64"` -> the torch dtype.
    """

    HAS_STATE: bool
    STOCHASTIC: bool
    DTYPES: dict[str, Any]

    def init_model(self, config: Any, *, seed: int, dtype: str = "float32") -> Any:
        """`params`, or `(params, buffers)` when HAS_STATE: dicts of tensors."""

    def skeleton(self, config: Any, *, dtype: str = "float32") -> nn.Module:
        """The architecture on the meta device, for `functional_call`."""

    def make_step(self, optimizer: GradientTransformation, model: nn.Module) -> Callable:
        """A pure update `(params, [buffers,] opt_state, x, y[, generator])` -> `(params,
        [buffers,] opt_state, loss)`."""

    def evaluate(self, model: nn.Module, params: Params, *args: Any) -> tuple[Tensor, Tensor]:
        """`(model, params, [buffers,] x, y)` -> `(mean loss, accuracy)` in inference mode."""


# -- decoding --
@runtime_checkable
class Decoder(Protocol):
    """A character model read one token at a time (the gpt), as on the functional side."""

    def init_decode(self, model: nn.Module, params: Params, batch: int = 1) -> Any:
        """The state `decode` starts from: an empty KV cache, as tensors."""

    def decode(self, model: nn.Module, params: Params, state: Any, token: Tensor) -> tuple:
        """`(state, token) -> (state, logits of the next token)`, nothing changed in place;
        `model` is the skeleton in `eval()` mode."""


# -- adapter --
def init(module: Model, config: Any, *, seed: int, dtype: str) -> tuple[Params, Params | None]:
    """`(params, buffers)` for every model: `buffers` is None where the model has none."""
    made = module.init_model(config, seed=seed, dtype=dtype)
    return made if module.HAS_STATE else (made, None)


def generator(seed: int, k: int) -> torch.Generator:
    """Update `k`'s dropout generator, derived from the run's seed rather than carried, so a
    resumed run draws the masks an uninterrupted one would (`fold_in(key, k)` in JAX)."""
    return torch.Generator().manual_seed(
        int(np.random.SeedSequence([seed, 1, k]).generate_state(1)[0])
    )


def uniform_step(
    module: Model, optimizer: GradientTransformation, model: nn.Module, seed: int = 0
) -> Callable:
    """Every model's step as `(params, buffers, opt_state, x, y, k) -> (params, buffers,
    opt_state, loss)` for update `k`; `buffers` is None (and comes back None) without state. A
    model that draws gets `generator(seed, k)`, a torch.Generator of its own per update."""
    step = module.make_step(optimizer, model)

    def uniform(params, buffers, opt_state, x, y, k):
        draws = (generator(seed, k),) if module.STOCHASTIC else ()
        if module.HAS_STATE:
            return step(params, buffers, opt_state, x, y, *draws)
        params, opt_state, loss = step(params, opt_state, x, y, *draws)
        return params, buffers, opt_state, loss

    return uniform


def evaluate(module: Model, model: nn.Module, params: Params, buffers, x, y) -> tuple[float, float]:
    """`(mean loss, accuracy)` of every model on a split, in inference mode."""
    extra = (buffers,) if module.HAS_STATE else ()
    loss, accuracy = module.evaluate(model, params, *extra, x, y)
    return float(loss), float(accuracy)


def ensemble_step(module: Model, optimizer: GradientTransformation, model: nn.Module) -> Callable:
    """`uniform_step` mapped over a stack of models by `torch.func.vmap`: every tensor of
    `params`, `buffers` and the optimizer state has a leading member axis, `k` is shared. The
    state goes in and out as a dict of its fields that hold tensors (vmap maps tensors, and an
    `OptState` field the optimizer does not use is None)."""
    step = uniform_step(module, optimizer, model)

    def one(params, buffers, fields, x, y, k):
        params, buffers, state, loss = step(params, buffers, OptState(**fields), x, y, k)
        return params, buffers, _fields(state), loss

    mapped = 0 if module.HAS_STATE else None  # no buffers: None in, None out
    return torch.func.vmap(one, in_dims=(0, mapped, 0, 0, 0, None), out_dims=(0, mapped, 0, 0))


def _fields(state: OptState) -> dict:
    return {k: v for k, v in state._asdict().items() if v is not None}


def stack(members: list[dict]) -> dict:
    """Members' dicts of tensors (the same keys) -> one dict of tensors with a member axis."""
    return {k: torch.stack([m[k] for m in members]) for k in members[0]}


def stack_states(states: list[OptState]) -> dict:
    """Members' optimizer states -> the stacked fields `ensemble_step` takes."""
    fields = [_fields(s) for s in states]
    return {k: stack(v) if isinstance(v[0], dict) else torch.stack(v)
            for k, v in ((k, [f[k] for f in fields]) for k in fields[0])}  # fmt: skip


def member(stacked: dict, i: int):
    """Member `i` of stacked tensors (a dict of them, or of dicts: the optimizer's fields)."""
    return {k: member(v, i) if isinstance(v, dict) else v[i] for k, v in stacked.items()}
