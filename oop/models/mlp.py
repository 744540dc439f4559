"""The MLP at level 2 on the OOP side: an `nn.Module`, `F.cross_entropy`, an in-place step.

Twin of `functional/models/mlp.py`; read the two side by side. Here the model owns its
parameters and the optimizer owns its state: the step is `zero_grad`, `backward`, `step`,
and it returns nothing but the loss because everything else changed in place. The module is
written for a batch, where the equinox twin sees one example and is `vmap`ped.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn

from shared.config import MLPConfig

# -- config --

DTYPES = {"float32": torch.float32, "float64": torch.float64}
HAS_STATE = False  # no buffers that train() mode moves
STOCHASTIC = False  # nothing drawn in train() mode


# -- model --
class MLP(nn.Module):
    """`config.layers` hidden ReLU layers, then a linear head producing logits.

    Attribute names and order mirror `functional.models.mlp.MLP`: `state_dict()` keys are the
    canonical names (`layers.0.weight`, ...). `nn.Linear` stores `weight` as `(out, in)`.

    **Arguments:**

    - `config`: the sizes, an `MLPConfig`.
    - `dtype`: `torch.float32` or `torch.float64`.

    The initial weights come from torch's global generator (seed it with `torch.manual_seed`).
    """

    def __init__(self, config: MLPConfig, *, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Linear(fan_in, fan_out, dtype=dtype) for fan_in, fan_out in config.sizes
        )

    def forward(self, x: Float[Tensor, "batch features"]) -> Float[Tensor, "batch classes"]:
        """A batch: `(batch, features)` -> `(batch, classes)` logits."""
        for layer in self.layers[:-1]:
            x = F.relu(layer(x))  # (batch, width)
        return self.layers[-1](x)  # (batch, classes)


def init_model(config: MLPConfig, *, seed: int, dtype: str = "float32") -> MLP:
    torch.manual_seed(seed)
    return MLP(config, dtype=DTYPES[dtype])


# -- loss --
def loss_fn(
    model: MLP, x: Float[Tensor, "batch features"], y: Int[Tensor, " batch"]
) -> Float[Tensor, ""]:
    """Mean softmax cross-entropy over the batch."""
    return F.cross_entropy(model(x), y)


# -- train step --
def train_step(
    model: MLP,
    optimizer: torch.optim.Optimizer,
    x: Float[Tensor, "batch features"],
    y: Int[Tensor, " batch"],
    *,
    clip_norm: float | None = None,
    loss_of=None,
) -> Tensor:
    """One update, in place: gradients accumulate into `.grad`, `step()` rewrites the weights.

    `loss_of(model, x, y)` (default: this file's `loss_fn`) lets another model reuse the step.

    `clip_norm` rescales the gradients in place first (`clip_grad_norm_`); the functional twin
    does the same inside its optax chain. Returns the loss of this batch before the update,
    still on the device (calling `.item()` here would synchronise every step).
    """
    model.train()
    optimizer.zero_grad(set_to_none=True)
    loss = (loss_of or loss_fn)(model, x, y)
    loss.backward()
    if clip_norm is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
    optimizer.step()
    return loss.detach()


# -- evaluate --
@torch.no_grad()
def evaluate(
    model: MLP, x: Float[Tensor, "batch features"], y: Int[Tensor, " batch"]
) -> tuple[Tensor, Tensor]:
    """`(mean loss, accuracy)` on a whole split, in eval mode and without building a graph."""
    model.eval()
    logits = model(x)  # (batch, classes)
    loss = F.cross_entropy(logits, y)
    accuracy = (logits.argmax(dim=-1) == y).to(logits.dtype).mean()
    return loss, accuracy
