"""The CNN with Dropout on the OOP side: `nn.Dropout` draws its masks from torch's global
generator, which the entry point seeds once (`torch.manual_seed`).

Twin of `functional/models/cnn_dropout.py`, where every draw consumes a key the caller split.
Nothing in a call here says that it is random: `model.train()` turns the masks on and
`model.eval()` off. Random streams cannot match across frameworks, so the layer has a test-only
`mask` attribute through which the suite feeds both sides the same NumPy mask.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from oop.layers import Dropout, make_convs
from oop.models import mlp
from shared.config import CNNDropoutConfig

# -- config --

DTYPES = {"float32": torch.float32, "float64": torch.float64}
HAS_STATE = False  # no buffers that train() mode moves
STOCHASTIC = True  # train() mode draws masks from torch's global generator


# -- model --
class CNNDropout(nn.Module):
    """`cnn` with Dropout on the flattened features, before the head.

    **Arguments:**

    - `config`: the sizes and the dropout probability, a `CNNDropoutConfig`.
    - `dtype`: `torch.float32` or `torch.float64`.
    """

    def __init__(self, config: CNNDropoutConfig, *, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.convs = make_convs(config, dtype=dtype)
        self.pool = nn.MaxPool2d(2, stride=2)
        self.dropout = Dropout(config.dropout)
        self.head = nn.Linear(config.head_features, config.out_features, dtype=dtype)
        self.image_shape = config.image_shape

    def forward(self, x: Float[Tensor, "batch features"]) -> Float[Tensor, "batch classes"]:
        x = x.view(x.shape[0], *self.image_shape)  # (B, C, H, W)
        for conv in self.convs:
            x = self.pool(F.relu(conv(x)))
        return self.head(self.dropout(torch.flatten(x, 1)))  # masks only in train() mode


def init_model(config: CNNDropoutConfig, *, seed: int, dtype: str = "float32") -> CNNDropout:
    torch.manual_seed(seed)  # the initial weights, and every mask drawn after them
    return CNNDropout(config, dtype=DTYPES[dtype])


# -- loss --
# The MLP's: train_step calls model.train() (masks on), evaluate calls model.eval() (off).
loss_fn = mlp.loss_fn


# -- train step --
train_step = mlp.train_step


# -- evaluate --
evaluate = mlp.evaluate
