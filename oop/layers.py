"""Layers that several OOP models use, each a twin of `functional/layers.py`'s.

Each is torch's own module, or a thin subclass of it: the models call them on a whole batch,
and `train()` / `eval()` switch what they do. Randomness and state stay inside: `Dropout`
draws from torch's global generator (or a test's mask), `BatchNorm2d` keeps its running
statistics in buffers that `forward` moves in place.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from shared.config import CNNConfig


# -- convolutions --
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


# -- dropout --
class Dropout(nn.Dropout):
    """`nn.Dropout(p)`, plus `mask`: when set (a boolean `(batch, n)` tensor, keep = True) and
    in training mode, it replaces the random draw. For tests only; None in normal use.

    And `shard`: under DDP (oop/parallel.py), `(rank, world)`. Each process then draws the
    masks of the whole global batch, `world` times its own, and keeps its rows: every process's
    generator moves as one process's would, and N processes drop what one process drops."""

    mask: Tensor | None = None
    shard: tuple[int, int] | None = None

    def forward(self, x: Tensor) -> Tensor:
        if self.training and self.mask is not None:
            return torch.where(self.mask, x / (1.0 - self.p), torch.zeros_like(x))
        if not self.training or self.shard is None or self.p == 0:
            return super().forward(x)  # torch's own: draws from the global generator
        rank, world = self.shard
        part = len(x)
        whole = torch.ones((part * world, *x.shape[1:]), dtype=x.dtype, device=x.device)
        return x * super().forward(whole)[rank * part : (rank + 1) * part]  # 0 or 1 / (1 - p)


# -- batch norm --
# torch's own (momentum 0.1, eps 1e-5): the batch's statistics with the biased variance in
# train(), the running ones in eval(), the running variance moved with the unbiased one. The
# functional twin is written out by hand because equinox's BatchNorm computes otherwise.
BatchNorm2d = nn.BatchNorm2d
