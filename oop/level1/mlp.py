"""The MLP at level 1 on the OOP side: raw tensors, `.backward()`, updates under `no_grad`.

    python -m oop.level1.mlp --epochs 30

No `nn.Module` and no `torch.optim`: the parameters are leaf tensors with `requires_grad=True`
in a nested dict, autograd fills each one's `.grad`, and the optimizers rewrite the tensors in
place inside `torch.no_grad()`. Twin of `functional/level1/mlp.py`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import torch
from jaxtyping import Float, Int
from torch import Tensor

from oop.data import make_loader
from shared import errors
from shared.cli import ladder
from shared.config import MLPConfig, TrainConfig
from shared.optim import OptimizerSpec

# -- config --

Params = dict  # {"layers": [{"weight": (out, in), "bias": (out,)}, ...]}: canonical names


def named(params: Params) -> Iterator[tuple[str, Tensor]]:
    """`("layers.0.weight", tensor)`, ...: the canonical name of each parameter."""
    for i, layer in enumerate(params["layers"]):
        for attr, tensor in layer.items():
            yield f"layers.{i}.{attr}", tensor


# -- layers --
def linear(p: dict, x: Float[Tensor, "batch fan_in"]) -> Float[Tensor, "batch fan_out"]:
    return x @ p["weight"].T + p["bias"]


# -- model --
def init(config: MLPConfig, *, seed: int, dtype=torch.float32) -> Params:
    """Weights and biases from U(-1/sqrt(in), 1/sqrt(in)), torch's default distribution."""
    gen = torch.Generator().manual_seed(seed)

    def uniform(shape, bound):
        t = (torch.rand(shape, generator=gen, dtype=dtype) * 2 - 1) * bound
        return t.requires_grad_()  # a leaf: autograd will fill its .grad

    layers = []
    for fan_in, fan_out in config.sizes:
        bound = 1.0 / fan_in**0.5
        layers.append(
            {"weight": uniform((fan_out, fan_in), bound), "bias": uniform((fan_out,), bound)}
        )
    return {"layers": layers}


def apply(params: Params, x: Float[Tensor, "batch features"]) -> Float[Tensor, "batch classes"]:
    for p in params["layers"][:-1]:
        x = torch.relu(linear(p, x))  # (batch, width)
    return linear(params["layers"][-1], x)  # (batch, classes)


# -- loss --
def loss_fn(
    params: Params, x: Float[Tensor, "batch features"], y: Int[Tensor, " batch"]
) -> Float[Tensor, ""]:
    log_probs = torch.log_softmax(apply(params, x), dim=1)  # (batch, classes)
    return -log_probs.gather(1, y[:, None]).mean()


# -- train step --
def sgd_init(params: Params) -> dict[str, Tensor]:
    return {name: torch.zeros_like(p) for name, p in named(params)}  # momentum buffers


@torch.no_grad()
def sgd_update(params: Params, bufs: dict[str, Tensor], opt: OptimizerSpec) -> None:
    """torch.optim.SGD by hand, in place, with the very tensor operations torch uses."""
    for name, p in named(params):
        g = p.grad.add(p, alpha=opt.weight_decay) if opt.weight_decay else p.grad
        if opt.momentum:
            bufs[name].mul_(opt.momentum).add_(g)  # buf = momentum * buf + g
            g = g.add(bufs[name], alpha=opt.momentum) if opt.nesterov else bufs[name]
        p.add_(g, alpha=-opt.lr)  # p -= lr * g


def adam_init(params: Params) -> dict:
    zeros = {name: torch.zeros_like(p) for name, p in named(params)}
    return {"step": 0, "exp_avg": zeros, "exp_avg_sq": {k: v.clone() for k, v in zeros.items()}}


@torch.no_grad()
def adam_update(params: Params, state: dict, opt: OptimizerSpec) -> None:
    """torch.optim.Adam by hand, in place, with the very tensor operations torch uses:
    moments, bias corrections in Python floats, eps outside the square root."""
    state["step"] += 1
    bc1, bc2 = 1 - opt.beta1 ** state["step"], 1 - opt.beta2 ** state["step"]
    for name, p in named(params):
        g = p.grad.add(p, alpha=opt.weight_decay) if opt.weight_decay else p.grad
        m, v = state["exp_avg"][name], state["exp_avg_sq"][name]
        m.lerp_(g, 1 - opt.beta1)  # m = beta1 * m + (1 - beta1) * g
        v.mul_(opt.beta2).addcmul_(g, g, value=1 - opt.beta2)  # v = beta2 * v + (1 - beta2) g^2
        denom = (v.sqrt() / bc2**0.5).add_(opt.eps)
        p.addcdiv_(m, denom, value=-opt.lr / bc1)  # p -= lr / bc1 * m / denom


OPTIMIZERS = {"sgd": (sgd_init, sgd_update), "adam": (adam_init, adam_update)}


def train_step(params: Params, opt_state, x, y, cfg: TrainConfig) -> Tensor:
    """One update in place: clear `.grad`, backward, update. Returns the loss before it."""
    for _, p in named(params):
        p.grad = None
    loss = loss_fn(params, x, y)
    loss.backward()  # fills p.grad for every leaf
    OPTIMIZERS[cfg.optimizer.name][1](params, opt_state, cfg.optimizer)
    return loss.detach()


# -- evaluate --
@torch.no_grad()
def evaluate(params: Params, x, y) -> tuple[float, float]:
    logits = apply(params, x)
    return float(loss_fn(params, x, y)), float((logits.argmax(dim=1) == y).double().mean())


@errors.entry_point("python -m oop.level1.mlp")
def main(argv: list[str] | None = None) -> int:
    ds, cfg, config, weights = ladder.parse_ladder("oop.level1.mlp", "level-1 PyTorch", argv)
    params = init(config, seed=cfg.seed)
    if weights is not None:  # --init: copied by canonical name into the leaf tensors
        with torch.no_grad():
            for name, p in named(params):
                p.copy_(torch.from_numpy(weights[name]))
    opt_state = OPTIMIZERS[cfg.optimizer.name][0](params)
    loader = make_loader(
        ds.x_train,
        ds.y_train,
        cfg.batch_size,
        seed=cfg.seed,
        num_steps=cfg.steps,
        dtype=torch.float32,
    )
    for x, y in loader:
        loss = train_step(params, opt_state, x, y, cfg)
    x_test = torch.tensor(ds.x_test, dtype=torch.float32)
    accuracy = evaluate(params, x_test, torch.tensor(ds.y_test))[1]
    ladder.print_ladder("level 1 (PyTorch)", cfg, float(loss), accuracy)
    return 0


if __name__ == "__main__":
    sys.exit(main())
