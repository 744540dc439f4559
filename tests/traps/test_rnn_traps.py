"""Traps of recurrent layers: how torch stacks and biases its gates, which axis is time, and what
padding does to a scan.

- `gate-order`: torch stacks an LSTM's four gates i, f, g, o in `weight_ih`/`weight_hh`; a cell
  that splits them in another order (ONNX's i, o, f, c here) reads the wrong rows and runs.
- `lstm-summed-bias`: `eqx.nn.LSTMCell` has one bias. Loading torch's `bias_ih + bias_hh` into
  it gives torch's forward pass exactly, but torch trains both biases, each with the same
  gradient, so under SGD the effective bias moves twice as fast as equinox's.
- `gru-b-hn`: torch's GRU keeps the new gate's hidden bias inside the reset product, `r * (W_hn h
  + b_hn)`; summing the GRU's two biases as for an LSTM moves it outside.
- `batch-first`: `nn.GRU` defaults to `batch_first=False`; a `(batch, time, features)` tensor
  fed to it runs, returns the expected shape, and scans over the batch.
- `forgotten-mask`: a scan over a padded batch without a mask keeps updating the state on the
  padding; `pack_padded_sequence` stops each sequence at its length.

torch (fused `nn.LSTM`/`nn.GRU`, float64) is the reference; JAX scans a cell, vmapped.
"""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import torch
import torch.nn.functional as F
from harness import Trap, naive_and_fixed_tests
from pairs import max_abs_diff
from quick import QUICK  # quicker compiles
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

import functional.models.rnn as frnn

B, T, D, H = 4, 12, 3, 5  # batch, time, input features, hidden units
LENGTHS = np.array([12, 7, 3, 9])  # a padded batch for `forgotten-mask`
NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


@functools.cache
def inputs(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((B, T, D))


def torch_rnn(kind: type[nn.Module], seed: int = 0, **kwargs) -> nn.Module:
    torch.manual_seed(seed)
    return kind(D, H, batch_first=True, dtype=torch.float64, **kwargs)


def weights_of(module: nn.Module) -> dict[str, np.ndarray]:
    """Layer 0's four arrays under the cell's names, in torch's layouts."""
    return {n: getattr(module, f"{n}_l0").detach().numpy().copy() for n in NAMES}


def scan(cell, w: dict, x: np.ndarray, lengths=None, *, lstm=False) -> tuple[np.ndarray, ...]:
    """`cell(w, x_t, carry)` scanned over each sequence of `x` (batch, time, in): (hidden state
    per step (batch, time, H), final hidden state (batch, H)); the carry is `(h, c)` if `lstm`.
    Steps from `lengths` on are masked as in `frnn.scan_layer`: the carry passes through."""
    with jax.enable_x64(True):
        full = np.full(B, T) if lengths is None else lengths
        hs, final = compiled_scan(cell, lstm)(w, jnp.asarray(x), jnp.asarray(full))
        return np.asarray(hs), np.asarray(final)


@functools.cache
def compiled_scan(cell, lstm: bool):
    """One `lax.scan` over time of the cell vmapped over the batch (quicker to compile than a
    vmap of per-sequence scans; the same numbers)."""
    batched = jax.vmap(cell, in_axes=(None, 0, 0))

    def run(w, x, lengths):
        zeros = jnp.zeros((x.shape[0], H))
        carry = (zeros, zeros) if lstm else zeros

        def step(carry, inputs):
            x_t, keep = inputs  # (batch, in), (batch, 1)
            new = batched(w, x_t, carry)
            carry = jax.tree.map(lambda n, o: jnp.where(keep, n, o), new, carry)
            return carry, frnn.hidden(carry)

        keep = (jnp.arange(T)[:, None] < lengths[None, :])[..., None]  # (time, batch, 1)
        carry, hs = jax.lax.scan(step, carry, (jnp.swapaxes(x, 0, 1), keep))
        return jnp.swapaxes(hs, 0, 1), frnn.hidden(carry)

    return jax.jit(run, compiler_options=QUICK)


def per_step(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per time step, max |a - b| over batch and hidden units; a, b are (batch, time, H)."""
    return np.max(np.abs(a - b), axis=(0, 2))


# -- gate-order: torch's i, f, g, o read as ONNX's i, o, f, c --
def onnx_order_lstm_cell(w: dict, x, hc):
    """An LSTM cell written from the ONNX spec, whose stacked weights are `W[iofc]`."""
    h, c = hc
    gates = w["weight_ih"] @ x + w["bias_ih"] + w["weight_hh"] @ h + w["bias_hh"]
    i, o, f, g = jnp.split(gates, 4)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    return jax.nn.sigmoid(o) * jnp.tanh(c), c


@functools.cache
def torch_lstm_states() -> tuple[dict, np.ndarray]:
    lstm = torch_rnn(nn.LSTM)
    with torch.no_grad():
        out, _ = lstm(torch.from_numpy(inputs()))
    return weights_of(lstm), out.numpy()


def gate_order_gap(cell) -> np.ndarray:
    w, ref = torch_lstm_states()
    return per_step(scan(cell, w, inputs(), lstm=True)[0], ref)


# -- gru-b-hn: where the new gate's hidden bias goes --
def summed_bias_gru_cell(w: dict, x, h):
    """A GRU with one bias `b_ih + b_hh`, as for an LSTM: `n = tanh(W_in x + b_in + b_hn + r *
    (W_hn h))`, i.e. `b_hn` outside the reset product."""
    gi = w["weight_ih"] @ x + w["bias_ih"] + w["bias_hh"]
    i_r, i_z, i_n = jnp.split(gi, 3)
    h_r, h_z, h_n = jnp.split(w["weight_hh"] @ h, 3)
    r, z = jax.nn.sigmoid(i_r + h_r), jax.nn.sigmoid(i_z + h_z)
    n = jnp.tanh(i_n + r * h_n)
    return (1 - z) * n + z * h


@functools.cache
def torch_gru_states() -> tuple[dict, np.ndarray]:
    gru = torch_rnn(nn.GRU)
    with torch.no_grad():
        out, _ = gru(torch.from_numpy(inputs()))
    return weights_of(gru), out.numpy()


def gru_bias_gap(cell) -> np.ndarray:
    w, ref = torch_gru_states()
    return per_step(scan(cell, w, inputs())[0], ref)


# -- batch-first: nn.GRU's default layout is (time, batch, features) --
def batch_first_gap(batch_first: bool) -> np.ndarray:
    """Per example, max |Δh| over steps and units: torch's nn.GRU fed (batch, time, features)
    vs the functional scan over each example's time axis."""
    w, _ = torch_gru_states()
    gru = nn.GRU(D, H, batch_first=batch_first, dtype=torch.float64)
    with torch.no_grad():
        for n, v in w.items():
            getattr(gru, f"{n}_l0").copy_(torch.from_numpy(v))
        out, _ = gru(torch.from_numpy(inputs()))  # the same (B, T, H) shape either way
    ref, _ = scan(frnn.gru_cell, w, inputs())
    return np.max(np.abs(out.numpy() - ref), axis=(1, 2))


# -- forgotten-mask: a padded batch, scanned with or without the mask --
def padded() -> np.ndarray:
    x = inputs().copy()
    x[np.arange(T)[None, :] >= LENGTHS[:, None]] = 0.0  # zero padding after each length
    return x


def mask_gap(masked: bool) -> np.ndarray:
    """Per example, max |Δ| of the final hidden state: torch on a packed batch vs the scan."""
    w, _ = torch_gru_states()
    gru = torch_rnn(nn.GRU)
    packed = pack_padded_sequence(
        torch.from_numpy(padded()), torch.from_numpy(LENGTHS), batch_first=True,
        enforce_sorted=False,
    )  # fmt: skip
    with torch.no_grad():
        _, h_n = gru(packed)
    _, final = scan(frnn.gru_cell, w, padded(), LENGTHS if masked else None)
    return np.max(np.abs(final - h_n[0].numpy()), axis=1)


# -- lstm-summed-bias: SGD on torch's two biases vs equinox's one --
SGD_STEPS, LR = 10, 0.2


def call_module(module, x, carry):
    """An equinox cell as a `(weights, x_t, carry) -> carry` function of the module."""
    return module(x, carry)


@functools.cache
def regression_batch() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    return rng.standard_normal((8, T, D)), rng.standard_normal(8)


@functools.cache
def torch_sgd() -> tuple[dict, np.ndarray, np.ndarray, np.ndarray]:
    """Full-batch SGD on nn.LSTM + nn.Linear, MSE on the last hidden state: (initial LSTM
    weights, initial head weight and bias, loss per step before its update)."""
    lstm = torch_rnn(nn.LSTM)
    head = nn.Linear(H, 1, dtype=torch.float64)
    start = (weights_of(lstm), *(p.detach().numpy().copy() for p in head.parameters()))
    params = [*lstm.parameters(), *head.parameters()]
    x, y = map(torch.from_numpy, regression_batch())
    losses = []
    for _ in range(SGD_STEPS):
        for p in params:
            p.grad = None
        _, (h_n, _) = lstm(x)
        loss = F.mse_loss(head(h_n[0])[:, 0], y)
        loss.backward()
        with torch.no_grad():  # torch.optim.SGD(lr=LR) with its defaults, without its import
            for p in params:
                p -= LR * p.grad
        losses.append(loss.item())
    return (*start, np.array(losses))


def equinox_lstm(w: dict) -> eqx.nn.LSTMCell:
    """torch's weights in `eqx.nn.LSTMCell`: the same layouts and gate order, one bias. (Built
    with `filter_eval_shape`: no random initial weights to compile and draw.)"""
    with jax.enable_x64(True):
        cell = eqx.filter_eval_shape(
            lambda: eqx.nn.LSTMCell(D, H, dtype=jnp.float64, key=jax.random.key(0))
        )
        return eqx.tree_at(
            lambda c: (c.weight_ih, c.weight_hh, c.bias),
            cell,
            tuple(jnp.asarray(a) for a in (w["weight_ih"], w["weight_hh"],
                  w["bias_ih"] + w["bias_hh"])),
        )  # fmt: skip


def sgd_gap(use_equinox: bool) -> np.ndarray:
    """Per SGD step, |Δloss| against torch (the loss before that step's update)."""
    w, hw, hb, ref = torch_sgd()
    x, y = regression_batch()
    with jax.enable_x64(True):
        call = call_module if use_equinox else frnn.lstm_cell
        cell = equinox_lstm(w) if use_equinox else {k: jnp.asarray(v) for k, v in w.items()}
        params = (cell, jnp.asarray(hw), jnp.asarray(hb))

        def loss_fn(params, x, y):  # x: (time, batch, in)
            cell, hw, hb = params
            batched = jax.vmap(call, in_axes=(None, 0, 0))
            step = lambda carry, x_t: (batched(cell, x_t, carry), None)
            zeros = jnp.zeros((x.shape[1], H))
            (h, _), _ = jax.lax.scan(step, (zeros, zeros), x)
            return jnp.mean((h @ hw[0] + hb[0] - y) ** 2)

        @functools.partial(jax.jit, compiler_options=QUICK)
        def step(params, x, y):
            loss, g = jax.value_and_grad(loss_fn)(params, x, y)
            return jax.tree.map(lambda p, d: p - LR * d, params, g), loss

        x, y, losses = jnp.asarray(np.swapaxes(x, 0, 1)), jnp.asarray(y), []
        for _ in range(SGD_STEPS):
            params, loss = step(params, x, y)
            losses.append(float(loss))
    return np.abs(np.array(losses) - ref)


TRAPS = [
    Trap(
        name="gate-order",
        title="LSTM gates: torch stacks i, f, g, o (ONNX i, o, f, c)",
        quantity="max |Δh| per step",
        naive=lambda: gate_order_gap(onnx_order_lstm_cell),
        fixed=lambda: gate_order_gap(frnn.lstm_cell),
        naive_at_least=5e-2,  # measured 0.59 (12 steps)
    ),
    Trap(
        name="lstm-summed-bias",
        title="eqx LSTMCell's one bias: torch trains two",
        quantity="|Δloss| per SGD step",
        naive=lambda: sgd_gap(use_equinox=True),
        fixed=lambda: sgd_gap(use_equinox=False),
        naive_at_least=1e-3,  # measured 9.5e-3 over 10 steps (8.3e-3 after one; lr 0.01: 5.8e-4)
    ),
    Trap(
        name="gru-b-hn",
        title="GRU: b_hn goes inside the reset product",
        quantity="max |Δh| per step",
        naive=lambda: gru_bias_gap(summed_bias_gru_cell),
        fixed=lambda: gru_bias_gap(frnn.gru_cell),
        naive_at_least=2e-2,  # measured 0.24 (0.08 at the first step)
    ),
    Trap(
        name="batch-first",
        title="nn.GRU defaults to (time, batch, features)",
        quantity="max |Δh| per example",
        naive=lambda: batch_first_gap(batch_first=False),
        fixed=lambda: batch_first_gap(batch_first=True),
        naive_at_least=5e-2,  # measured 0.52
    ),
    Trap(
        name="forgotten-mask",
        title="A scan without a mask runs on through the padding",
        quantity="max |Δh_final| per example",
        naive=lambda: mask_gap(masked=False),
        fixed=lambda: mask_gap(masked=True),
        naive_at_least=5e-2,  # measured 0.56 (1e-16 for the full-length sequence)
    ),
]

test_naive_port_diverges, test_fixed_port_matches = naive_and_fixed_tests(TRAPS)


def one_step(kind: type[nn.Module], w: dict, module) -> float:
    """One step from a random state: max |Δ| between torch's `kind` cell (nn.LSTMCell or
    nn.GRUCell) holding the weights `w` and the equinox cell `module`, over the batch."""
    rng = np.random.default_rng(2)
    x, h, c = rng.standard_normal((B, D)), rng.standard_normal((B, H)), rng.standard_normal((B, H))
    cell = kind(D, H, dtype=torch.float64)
    with torch.no_grad():
        for n, v in w.items():
            getattr(cell, n).copy_(torch.from_numpy(v))
        lstm = kind is nn.LSTMCell
        state = (torch.from_numpy(h), torch.from_numpy(c)) if lstm else torch.from_numpy(h)
        ref = cell(torch.from_numpy(x), state)
    with jax.enable_x64(True):
        out = jax.jit(jax.vmap(call_module, in_axes=(None, 0, 0)), compiler_options=QUICK)(
            module, jnp.asarray(x), (jnp.asarray(h), jnp.asarray(c)) if lstm else jnp.asarray(h)
        )
    return max_abs_diff(out, ref)  # (h, c) entry by entry for the LSTM


def test_equinox_lstm_cell_has_one_bias_and_torchs_gate_order():
    """The forward half of `lstm-summed-bias`: with `bias = b_ih + b_hh`, equinox is torch."""
    w, _ = torch_lstm_states()
    cell = equinox_lstm(w)
    assert {f for f in ("bias", "bias_ih", "bias_hh") if hasattr(cell, f)} == {"bias"}
    assert one_step(nn.LSTMCell, w, cell) <= 1e-10


def test_equinox_gru_cell_is_torchs_with_b_hn_as_bias_n():
    """`eqx.nn.GRUCell` keeps `bias_n` inside the reset product: torch's GRU with `bias = b_ih +
    (b_hr, b_hz, 0)` and `bias_n = b_hn`."""
    w, _ = torch_gru_states()
    b_hr, b_hz, b_hn = np.split(w["bias_hh"], 3)
    bias = w["bias_ih"] + np.concatenate([b_hr, b_hz, np.zeros(H)])
    with jax.enable_x64(True):
        cell = eqx.filter_eval_shape(
            lambda: eqx.nn.GRUCell(D, H, dtype=jnp.float64, key=jax.random.key(0))
        )
        cell = eqx.tree_at(
            lambda c: (c.weight_ih, c.weight_hh, c.bias, c.bias_n),
            cell,
            tuple(jnp.asarray(a) for a in (w["weight_ih"], w["weight_hh"], bias, b_hn)),
        )
    assert one_step(nn.GRUCell, w, cell) <= 1e-10
