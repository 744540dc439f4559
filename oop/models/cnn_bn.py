"""The CNN with BatchNorm on the OOP side: the running statistics are buffers that `forward`
changes in place in `train()` mode.

Twin of `functional/models/cnn_bn.py`, where the same statistics are a state value passed in
and returned. Here nothing in a call's signature says the module has state: `model.train()` /
`model.eval()` switch what `nn.BatchNorm2d` does, and `state_dict()` holds the buffers
(`norms.0.running_mean`, `running_var`, `num_batches_tracked`) beside the parameters. The loss,
the in-place step and the evaluation are the MLP's: `train_step` calls `model.train()`,
`evaluate` calls `model.eval()`, and that is all BatchNorm needs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from oop.layers import BatchNorm2d, make_convs
from oop.models import mlp
from shared.config import CNNBNConfig

# -- config --

DTYPES = {"float32": torch.float32, "float64": torch.float64}
HAS_STATE = True  # buffers that train() mode moves: the BatchNorm statistics
STOCHASTIC = False  # nothing drawn in train() mode


# -- model --
class CNNBN(nn.Module):
    """`cnn` with BatchNorm after each conv: conv (no bias) -> BatchNorm -> ReLU -> pool, twice,
    then a linear head.

    **Arguments:**

    - `config`: the sizes, a `CNNBNConfig`.
    - `dtype`: `torch.float32` or `torch.float64`.
    """

    def __init__(self, config: CNNBNConfig, *, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.convs = make_convs(config, dtype=dtype, bias=False)
        w = config.width
        self.norms = nn.ModuleList([BatchNorm2d(w, dtype=dtype), BatchNorm2d(2 * w, dtype=dtype)])
        self.pool = nn.MaxPool2d(2, stride=2)
        self.head = nn.Linear(config.head_features, config.out_features, dtype=dtype)
        self.image_shape = config.image_shape

    def forward(self, x: Float[Tensor, "batch features"]) -> Float[Tensor, "batch classes"]:
        """A batch of flat rows -> logits; in train() mode the norms' buffers move in place."""
        x = x.view(x.shape[0], *self.image_shape)  # (B, C, H, W)
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = self.pool(F.relu(norm(conv(x))))  # (B, w, H/2, W/2), then (B, 2w, H/4, W/4)
        return self.head(torch.flatten(x, 1))  # (B, classes)


def init_model(config: CNNBNConfig, *, seed: int, dtype: str = "float32") -> CNNBN:
    torch.manual_seed(seed)
    return CNNBN(config, dtype=DTYPES[dtype])


# -- loss --
# The MLP's: train_step calls model.train() (the norms use the batch and move their buffers),
# evaluate calls model.eval() (they use the buffers), and that is all BatchNorm needs.
loss_fn = mlp.loss_fn


# -- train step --
train_step = mlp.train_step


# -- evaluate --
evaluate = mlp.evaluate
