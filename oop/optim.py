"""`TrainConfig` -> a `torch.optim` optimizer.

torch optimizers are objects: they hold references to the parameters and keep per-parameter
state (`momentum_buffer`, `exp_avg`, ...) inside, and `step()` changes the weights in place.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from shared.config import TrainConfig


def make_optimizer(cfg: TrainConfig, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """`torch.optim.SGD` or `torch.optim.Adam`, the definitions the functional twin follows."""
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=cfg.lr,
            momentum=cfg.momentum,
            nesterov=cfg.nesterov,
            weight_decay=cfg.weight_decay,
        )
    if cfg.optimizer == "adam":
        return torch.optim.Adam(
            params,
            lr=cfg.lr,
            betas=(cfg.beta1, cfg.beta2),
            eps=cfg.eps,
            weight_decay=cfg.weight_decay,
        )
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")  # TrainConfig refuses it first
