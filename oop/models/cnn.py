"""The CNN on the OOP side: an `nn.Module` written for an NCHW batch.

Twin of `functional/models/cnn.py`; read the two side by side. Nothing here has buffers or
randomness, so the loss, the in-place step and the evaluation are the MLP's
(`oop.models.mlp`): only the model differs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from oop.layers import make_convs
from oop.models import mlp
from shared.config import CNNConfig

# -- config --

DTYPES = {"float32": torch.float32, "float64": torch.float64}
HAS_STATE = False  # no buffers that train() mode moves
STOCHASTIC = False  # nothing drawn in train() mode


# -- model --
class CNN(nn.Module):
    """Two blocks of 3x3 conv (padding 1) -> ReLU -> 2x2 max-pool, then a linear head.

    Attribute names and order mirror `functional.models.cnn.CNN`: `state_dict()` keys are the
    canonical names (`convs.0.weight` `(out, in, 3, 3)`, `convs.0.bias` `(out,)`, ...).

    **Arguments:**

    - `config`: the sizes, a `CNNConfig`.
    - `dtype`: `torch.float32` or `torch.float64`.

    The initial weights come from torch's global generator (seed it with `torch.manual_seed`).
    """

    def __init__(self, config: CNNConfig, *, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.convs = make_convs(config, dtype=dtype)
        self.pool = nn.MaxPool2d(2, stride=2)
        self.head = nn.Linear(config.head_features, config.out_features, dtype=dtype)
        self.image_shape = config.image_shape

    def forward(self, x: Float[Tensor, "batch features"]) -> Float[Tensor, "batch classes"]:
        """A batch of flat rows `(batch, C*H*W)` -> `(batch, classes)` logits."""
        x = x.view(x.shape[0], *self.image_shape)  # (B, C, H, W): NCHW, torch's layout
        for conv in self.convs:
            x = self.pool(F.relu(conv(x)))  # (B, w, H/2, W/2), then (B, 2w, H/4, W/4)
        return self.head(torch.flatten(x, 1))  # (B, 2w*H/4*W/4) in C order -> (B, classes)


def init_model(config: CNNConfig, *, seed: int, dtype: str = "float32") -> CNN:
    torch.manual_seed(seed)
    return CNN(config, dtype=DTYPES[dtype])


# -- loss --
# Without buffers or randomness, the loss, the step and the evaluation are the MLP's.
loss_fn = mlp.loss_fn  # F.cross_entropy


# -- train step --
train_step = mlp.train_step  # zero_grad / backward / step, in place


# -- evaluate --
evaluate = mlp.evaluate  # (loss, accuracy) under no_grad, in eval mode
