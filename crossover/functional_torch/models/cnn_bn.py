"""The CNN with BatchNorm as functions on PyTorch: the running statistics are a dict of tensors
passed into the step and returned from it.

Twin of `functional/models/cnn_bn.py` (the same paradigm on JAX, where they are an
`eqx.nn.State`) and `oop/models/cnn_bn.py` (the same framework, where they are buffers moved in
place). `functional_call(skeleton, {**params, **buffers}, x)` runs the OOP side's module in
`train()` mode, and `nn.BatchNorm2d` then writes its new statistics *into the tensors it was
given*, in place: the step copies the buffers first and returns the copies, so the caller's
dict is never changed and the same inputs give the same outputs.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn
from torch.func import functional_call, grad_and_value

from crossover.functional_torch.models import mlp
from crossover.functional_torch.optim import GradientTransformation, OptState, apply_updates
from oop.models import cnn_bn as modules
from shared.config import CNNBNConfig

# -- config --

DTYPES = {"float32": torch.float32, "float64": torch.float64}
HAS_STATE = True  # init_model returns (params, buffers): the BatchNorm statistics
STOCHASTIC = False  # the step takes no generator
Params = dict[str, Tensor]


# -- model --
def init_model(config: CNNBNConfig, *, seed: int, dtype: str = "float32") -> tuple[Params, Params]:
    """The initial weights and buffers (running mean 0, variance 1, count 0), drawn as the OOP
    side draws them from `seed`, leaving torch's global generator as it was."""
    with torch.random.fork_rng(devices=[]):
        module = modules.init_model(config, seed=seed, dtype=dtype)
    params = {name: p.detach() for name, p in module.named_parameters()}
    return params, {name: b.detach() for name, b in module.named_buffers()}


def skeleton(config: CNNBNConfig, *, dtype: str = "float32") -> nn.Module:
    """The architecture without weights or buffers, on the meta device, in `train()` mode."""
    with torch.device("meta"):
        return modules.CNNBN(config, dtype=DTYPES[dtype])


def apply(
    model: nn.Module, params: Params, buffers: Params, x: Float[Tensor, "batch features"]
) -> tuple[Float[Tensor, "batch classes"], Params]:
    """Logits and the buffers after this batch; in `train()` mode those are new tensors (the
    module writes into copies), in `eval()` mode the ones given."""
    if model.training:
        buffers = {k: v.clone() for k, v in buffers.items()}  # functional_call writes into them
    return functional_call(model, {**params, **buffers}, (x,)), buffers


# -- loss --
def loss_fn(
    model: nn.Module, params: Params, buffers: Params, x: Float[Tensor, "batch features"],
    y: Int[Tensor, " batch"],
) -> tuple[Float[Tensor, ""], Params]:  # fmt: skip
    """Mean cross-entropy in the skeleton's mode, and the buffers after this batch."""
    logits, buffers = apply(model, params, buffers, x)
    return F.cross_entropy(logits, y), buffers


# -- train step --
def make_step(optimizer: GradientTransformation, model: nn.Module) -> Callable:
    """A pure update `(params, buffers, opt_state, x, y) -> (params, buffers, opt_state, loss)`.

    The buffers ride along as the auxiliary output of the loss (`has_aux=True`): computed in
    the same forward pass as the gradient, and nothing is differentiated through them."""

    def step(params: Params, buffers: Params, opt_state: OptState, x: Tensor, y: Tensor):
        def loss_of(p):
            return loss_fn(model, p, buffers, x, y)

        grads, (loss, buffers_after) = grad_and_value(loss_of, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return apply_updates(params, updates), buffers_after, opt_state, loss.detach()

    return step


# -- evaluate --
@torch.no_grad()
def evaluate(
    model: nn.Module, params: Params, buffers: Params, x: Float[Tensor, "batch features"],
    y: Int[Tensor, " batch"],
) -> tuple[Tensor, Tensor]:  # fmt: skip
    """`(mean loss, accuracy)` in inference mode: the running statistics, buffers unchanged."""
    logits, _ = apply(mlp.inference_mode(model), params, buffers, x)
    loss = F.cross_entropy(logits, y)
    return loss, (logits.argmax(dim=-1) == y).to(logits.dtype).mean()
