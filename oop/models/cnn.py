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

# -- config --
from shared.config import CNNConfig

DTYPES = {"float32": torch.float32, "float64": torch.float64}


# -- model --
def make_convs(config: CNNConfig, *, dtype: torch.dtype, bias: bool = True) -> nn.ModuleList:
    """The two 3x3 convs (padding 1) shared by `cnn`, `cnn_bn` and `cnn_dropout`: C -> width,
    then width -> 2 * width. `bias=False` before a BatchNorm, which would cancel it."""
    c, w = config.in_channels, config.width
    return nn.ModuleList(
        [
            nn.Conv2d(c, w, 3, padding=1, bias=bias, dtype=dtype),
            nn.Conv2d(w, 2 * w, 3, padding=1, bias=bias, dtype=dtype),
        ]
    )


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
# -- train step --
# -- evaluate --
# Without buffers or randomness these are the MLP's: F.cross_entropy, the zero_grad / backward /
# step update in place, and (loss, accuracy) under no_grad in eval mode.
from oop.models.mlp import evaluate, loss_fn, train_step  # noqa: E402

__all__ = ["CNN", "DTYPES", "evaluate", "init_model", "loss_fn", "train_step"]
