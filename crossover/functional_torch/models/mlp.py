"""The MLP as functions on PyTorch: a dict of weights, `functional_call`, a pure step.

Twin of `functional/models/mlp.py` (the same paradigm on JAX) and of `oop/models/mlp.py` (the
same framework, object-oriented). The architecture is the OOP side's `nn.Module`, built on the
meta device so that it holds no weights (`skeleton`); the weights are a plain dict `name ->
tensor` under `state_dict`'s names, and `torch.func.functional_call(skeleton, params, x)` runs
the module's `forward` with them. `torch.func.grad_and_value` differentiates a function of that
dict, as `jax.value_and_grad` differentiates a function of a pytree, and the step returns new
weights and a new optimizer state instead of changing anything.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn
from torch.func import functional_call, grad_and_value

from crossover.functional_torch.optim import GradientTransformation, OptState, apply_updates
from oop.models import mlp as modules
from shared.config import MLPConfig

# -- config --

DTYPES = {"float32": torch.float32, "float64": torch.float64}
HAS_STATE = False  # no buffers to thread
STOCHASTIC = False  # the step takes no generator
Params = dict[str, Tensor]


# -- model --
def init_model(config: MLPConfig, *, seed: int, dtype: str = "float32") -> Params:
    """The initial weights, drawn as the OOP side draws them from `seed` (the same numbers),
    inside `torch.random.fork_rng` so that torch's global generator is left as it was."""
    with torch.random.fork_rng(devices=[]):
        module = modules.init_model(config, seed=seed, dtype=dtype)
    return {name: p.detach() for name, p in module.named_parameters()}


def skeleton(config: MLPConfig, *, dtype: str = "float32") -> nn.Module:
    """The architecture without weights: `oop.models.mlp.MLP` on the meta device, whose
    `forward` `functional_call` runs with the weights it is given."""
    with torch.device("meta"):
        return modules.MLP(config, dtype=DTYPES[dtype])


def apply(
    model: nn.Module, params: Params, x: Float[Tensor, "batch features"]
) -> Float[Tensor, "batch classes"]:
    """A batch through the skeleton with `params`: `(batch, features)` -> `(batch, classes)`."""
    return functional_call(model, params, (x,))


def inference_mode(model: nn.Module) -> nn.Module:
    """A copy of the skeleton in `eval()` mode (dropout off, BatchNorm reads its statistics),
    as `eqx.nn.inference_mode` returns a copy: the training skeleton stays as it was."""
    return copy.deepcopy(model).eval()


# -- loss --
def loss_fn(
    model: nn.Module, params: Params, x: Float[Tensor, "batch features"], y: Int[Tensor, " batch"]
) -> Float[Tensor, ""]:
    """Mean softmax cross-entropy over the batch, a function of `params`."""
    return F.cross_entropy(apply(model, params, x), y)


# -- train step --
def make_step(
    optimizer: GradientTransformation, model: nn.Module, loss_of: Callable | None = None
) -> Callable:
    """A pure update: `(params, opt_state, x, y, *extra) -> (params, opt_state, loss)`.

    `model` is the skeleton; nothing is mutated, so the caller rebinds what comes back, as on
    the functional side. `torch.compile(step)` compiles it. `loss_of(model, params, x, y)`
    (default: this file's `loss_fn`) lets another model reuse the step; `extra` is, say, a
    dropout generator."""
    loss_of = loss_of or loss_fn

    def step(params: Params, opt_state: OptState, x: Tensor, y: Tensor, *extra):
        grads, loss = grad_and_value(lambda p: loss_of(model, p, x, y, *extra))(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return apply_updates(params, updates), opt_state, loss.detach()

    return step


# -- evaluate --
@torch.no_grad()
def evaluate(
    model: nn.Module, params: Params, x: Float[Tensor, "batch features"], y: Int[Tensor, " batch"]
) -> tuple[Tensor, Tensor]:
    """`(mean loss, accuracy)` on a whole split; nothing here depends on a mode."""
    logits = apply(model, params, x)  # (batch, classes)
    loss = F.cross_entropy(logits, y)
    accuracy = (logits.argmax(dim=-1) == y).to(logits.dtype).mean()
    return loss, accuracy
