"""Traps: BatchNorm and convolution padding. equinox's `BatchNorm(momentum=m)` keeps `m` of the
old running statistics where torch keeps `1 - m`, stores the biased variance, and in its default
`mode="ema"` normalises training batches with its running statistics; a conv bias before
BatchNorm gets only rounding noise as gradient, which Adam turns into steps; XLA's
`padding="SAME"` at stride 2 on an even size pads only on the right/bottom.

The torch side is the reference; each naive port is the equinox / lax call a reader would write
first, and the fixed one is `functional.layers.BatchNorm2d` or explicit padding. Batches
of 8 x 4-channel 6x6 images, everything in float64.
"""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
import torch.nn.functional as F
from harness import Trap, naive_and_fixed_tests
from pairs import max_abs_diff
from torch import nn

from functional.layers import BatchNorm2d

B, C, HW, K = 8, 4, 6, 5  # batch, channels, image side, batches fed to BatchNorm


@functools.cache
def images(k: int = K, channels: int = C, seed: int = 0) -> list[np.ndarray]:
    """`k` float64 batches (B, channels, HW, HW), channel c centred on c with spread 2."""
    rng = np.random.default_rng(seed)
    shift = np.arange(channels, dtype=np.float64)[None, :, None, None]
    return [shift + 2.0 * rng.standard_normal((B, channels, HW, HW)) for _ in range(k)]


# -- BatchNorm: torch's nn.BatchNorm2d in train() vs a functional layer, batch by batch --
@functools.cache
def torch_bn() -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(output, running_mean, running_var) after each train-mode call of nn.BatchNorm2d(C)."""
    bn, out = nn.BatchNorm2d(C, dtype=torch.float64).train(), []
    for x in images():
        y = bn(torch.from_numpy(x)).detach().numpy()
        out.append((y, bn.running_mean.numpy().copy(), bn.running_var.numpy().copy()))
    return out


def jax_bn(make, read) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The same for the layer `make()` inside a named vmap; `read(layer, state)` -> (mean, var)."""
    with jax.enable_x64(True):
        layer, state = eqx.nn.make_with_state(make)()
        call = jax.jit(
            jax.vmap(
                lambda x, s: layer(x, s, inference=False),
                axis_name="batch",
                in_axes=(0, None),
                out_axes=(0, None),
            )
        )
        out = []
        for x in images():
            y, state = call(jnp.asarray(x), state)
            out.append((np.asarray(y), *(np.asarray(a) for a in read(layer, state))))
    return out


def eqx_bn(momentum: float, mode: str = "batch"):
    def read(layer, state):
        return state.get(layer.batch_state_index if mode == "batch" else layer.ema_state_index)

    make = functools.partial(
        eqx.nn.BatchNorm, C, "batch", momentum=momentum, mode=mode, dtype=jnp.float64
    )
    return jax_bn(make, read)


@functools.cache
def package_bn():
    return jax_bn(
        functools.partial(BatchNorm2d, C, dtype=jnp.float64),
        lambda layer, state: state.get(layer.index)[:2],
    )


def running_gap(ours, i: int) -> np.ndarray:
    """Per step, max over channels of |Δ| in field i (1 = running_mean, 2 = running_var)."""
    return np.array([max_abs_diff(a[i], b[i]) for a, b in zip(torch_bn(), ours, strict=True)])


def output_gap(ours, step: int = 1) -> np.ndarray:
    """|Δ| per output element of the train-mode call number `step + 1`."""
    return np.abs(torch_bn()[step][0] - ours[step][0]).ravel()


# -- a conv bias before BatchNorm, trained with Adam on both sides --
STEPS, LR = 100, 1e-2


class TinyNet(eqx.Module):
    """conv 3x3 -> BatchNorm -> relu -> mean over H, W -> linear, for one (2, 6, 6) example."""

    conv: eqx.nn.Conv2d
    norm: BatchNorm2d
    head: eqx.nn.Linear

    def __init__(self, tnet: nn.Sequential, bias: bool):
        conv, head = tnet[0], tnet[1]
        c = lambda t: jnp.asarray(t.detach().numpy())  # noqa: E731
        self.conv = eqx.nn.Conv2d(2, C, 3, padding=1, use_bias=bias, key=jax.random.key(0))
        self.conv = eqx.tree_at(lambda m: m.weight, self.conv, c(conv.weight))
        if bias:
            self.conv = eqx.tree_at(lambda m: m.bias, self.conv, c(conv.bias)[:, None, None])
        self.norm = BatchNorm2d(C, dtype=jnp.float64)
        self.head = eqx.nn.Linear(C, 3, key=jax.random.key(1))
        self.head = eqx.tree_at(
            lambda m: (m.weight, m.bias), self.head, (c(head.weight), c(head.bias))
        )

    def __call__(self, x, state):
        h, state = self.norm(self.conv(x), state, inference=False)
        return self.head(jax.nn.relu(h).mean(axis=(1, 2))), state


def adam_gap(bias: bool) -> np.ndarray:
    """Per Adam step, max |Δparam| over every parameter, torch vs the JAX twin (float64)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: torch's thread pool only slows 100 steps down
    try:
        return trajectories(bias)
    finally:
        torch.set_num_threads(threads)


def trajectories(bias: bool) -> np.ndarray:
    torch.manual_seed(0)
    conv = nn.Conv2d(2, C, 3, padding=1, bias=bias, dtype=torch.float64)
    bn, head = nn.BatchNorm2d(C, dtype=torch.float64), nn.Linear(C, 3, dtype=torch.float64)
    xs = images(4, channels=2, seed=1)
    ys = np.random.default_rng(2).integers(0, 3, (len(xs), B))
    opt = torch.optim.Adam([*conv.parameters(), *bn.parameters(), *head.parameters()], lr=LR)
    with jax.enable_x64(True):
        net = TinyNet(nn.Sequential(conv, head), bias)
        state = eqx.nn.State(net)
        params, static = eqx.partition(net, eqx.is_inexact_array)
        tx = optax.adam(LR)
        opt_state = tx.init(params)

        def loss_of(p, s, x, y):
            net = eqx.combine(p, static)
            batched = jax.vmap(net, axis_name="batch", in_axes=(0, None), out_axes=(0, None))
            logits, s = batched(x, s)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), s

        @jax.jit
        def step(p, s, o, x, y):
            (_, s), g = jax.value_and_grad(loss_of, has_aux=True)(p, s, x, y)
            u, o = tx.update(g, o, p)
            return optax.apply_updates(p, u), s, o

        gaps = []
        for t in range(STEPS):
            x, y = xs[t % len(xs)], ys[t % len(xs)]
            opt.zero_grad()
            logits = head(F.relu(bn(conv(torch.from_numpy(x)))).mean(dim=(2, 3)))
            F.cross_entropy(logits, torch.from_numpy(y)).backward()
            opt.step()
            params, state, opt_state = step(params, state, opt_state, jnp.asarray(x), y)
            pairs = [(conv.weight, params.conv.weight), (head.weight, params.head.weight)]
            pairs += [(head.bias, params.head.bias), (bn.weight, params.norm.weight)]
            pairs += [(bn.bias, params.norm.bias)]
            if bias:
                pairs.append((conv.bias, params.conv.bias[:, 0, 0]))
            gaps.append(max(max_abs_diff(a, b) for a, b in pairs))
    return np.array(gaps)


# -- padding="SAME" at stride 2 --
def conv_gap(padding) -> np.ndarray:
    """|Δ| per output element: lax 3x3 stride-2 conv on 8x8 with `padding` vs torch padding=1."""
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 3, 8, 8)), rng.standard_normal((4, 3, 3, 3))
    ref = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), stride=2, padding=1).numpy()
    with jax.enable_x64(True):
        y = jax.lax.conv_general_dilated(jnp.asarray(x), jnp.asarray(w), (2, 2), padding)
        assert y.shape == ref.shape == (2, 4, 4, 4)  # same shape: only the values give it away
        return np.abs(np.asarray(y) - ref).ravel()


def test_torch_refuses_same_padding_with_stride() -> None:
    with pytest.raises(ValueError, match="not supported for strided"):
        nn.Conv2d(3, 4, 3, stride=2, padding="same")


TRAPS = [
    Trap(
        name="batchnorm-momentum",
        title="BatchNorm momentum: torch's 0.1 is equinox's 0.9",
        quantity="|Δrunning_mean| per step",
        # naive: the same number in equinox, mode="batch" (zero-initialised like torch)
        naive=lambda: running_gap(eqx_bn(0.1), 1),
        fixed=lambda: running_gap(package_bn(), 1),
        naive_at_least=0.1,  # measured 2.4 (5 batches)
    ),
    Trap(
        name="batchnorm-unbiased-running-var",
        title="BatchNorm running_var: torch unbiased, equinox biased",
        quantity="|Δrunning_var| per step",
        # naive: equinox with the momentum already translated (0.9): only the variance differs
        naive=lambda: running_gap(eqx_bn(0.9), 2),
        fixed=lambda: running_gap(package_bn(), 2),
        naive_at_least=5e-4,  # measured 5.8e-3 (5 batches)
    ),
    Trap(
        name="equinox-batchnorm-ema-mode",
        title='eqx BatchNorm mode="ema" trains on running statistics',
        quantity="|Δ| per output",
        # naive: equinox's default mode ("ema", momentum 0.99); the 2nd call (the 1st matches)
        naive=lambda: output_gap(eqx_bn(0.99, mode="ema")),
        fixed=lambda: output_gap(package_bn()),
        naive_at_least=5e-2,  # measured 0.49
    ),
    Trap(
        name="bias-before-batchnorm-adam",
        title="Conv bias before BatchNorm: Adam amplifies rounding",
        quantity="max |Δparam| per step",
        naive=lambda: adam_gap(bias=True),
        fixed=lambda: adam_gap(bias=False),
        naive_at_least=1e-10,  # measured 1.2e-9 after 100 steps (SGD: 5.6e-17)
    ),
    Trap(
        name="same-padding-stride-2",
        title='padding="SAME" at stride 2: XLA pads right only',
        quantity="|Δ| per output",
        naive=lambda: conv_gap("SAME"),
        fixed=lambda: conv_gap(((1, 1), (1, 1))),
        naive_at_least=1.0,  # measured 17
    ),
]


test_naive_port_diverges, test_fixed_port_matches = naive_and_fixed_tests(TRAPS)
