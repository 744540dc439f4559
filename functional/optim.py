"""`TrainConfig` -> an optax optimizer with PyTorch's meaning of each hyperparameter.

optax optimizers are pure `(init, update)` pairs: the state is an ordinary pytree that goes
into `update` and comes back out, where `torch.optim` keeps state inside the optimizer object.
"""

from __future__ import annotations

import optax

from shared.config import TrainConfig


def make_optimizer(cfg: TrainConfig) -> optax.GradientTransformation:
    """SGD or Adam as `torch.optim.SGD` / `torch.optim.Adam` define them.

    - SGD momentum: optax's `trace` keeps `buf = momentum * buf + grad` and steps by
      `-lr * buf` (or `-lr * (grad + momentum * buf)` with Nesterov): torch's formula with
      `dampening=0`.
    - Adam: eps outside the square root and `eps_root=0`, as in torch.
    - weight_decay: torch adds `weight_decay * param` to the gradient before the optimizer sees
      it (coupled L2, not AdamW), which is `add_decayed_weights` chained in front.
    """
    if cfg.optimizer == "sgd":
        opt = optax.sgd(cfg.lr, momentum=cfg.momentum or None, nesterov=cfg.nesterov)
    elif cfg.optimizer == "adam":
        opt = optax.adam(cfg.lr, b1=cfg.beta1, b2=cfg.beta2, eps=cfg.eps)
    else:  # TrainConfig has already refused other names
        raise ValueError(f"unknown optimizer {cfg.optimizer!r}")
    if cfg.weight_decay:
        opt = optax.chain(optax.add_decayed_weights(cfg.weight_decay), opt)
    return opt
