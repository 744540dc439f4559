"""The recurrent twins: `lax.scan` over pure cells against torch's fused `nn.RNN`/`nn.GRU`/
`nn.LSTM`, on the adding problem (regression) and on character windows of pycorpus.

From the same canonical weights the two sides give the same hidden states at every step, the
same outputs and the same gradient for every weight (through time, through stacked layers,
with and without padding); one side's long way agrees with its short way (scan vs a Python
loop, fused vs an `nn.*Cell` loop); and 100 updates stay together.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rounding
import torch
from pairs import F64_TOL, batches_of, initial_weights, max_abs_diff, trainers
from pairs import functional_model as functional_twin
from pairs import oop_model as oop_twin

import functional.convert as fconvert
import functional.models.rnn as frnn
import oop.convert as oconvert
import oop.models.rnn as ornn
from shared import data
from shared.config import RNNConfig, TrainConfig
from shared.optim import OptimizerSpec

# float64 twins agree to rounding (measured: ~1e-15): F64_TOL
CELLS = ("rnn", "gru", "lstm")
TASKS = ("regress", "next-char")
BATCH, STEPS_T, VOCAB = 4, 9, 13
LENGTHS = np.array([9, 5, 1, 7])  # a padded batch: every sequence its own length


def config(cell: str, task: str, layers: int = 2, width: int = 6) -> RNNConfig:
    return RNNConfig(cell=cell, in_features=2 if task == "regress" else VOCAB, width=width,
                     layers=layers, task=task)  # fmt: skip


def weights(cell: str, task: str, layers: int = 2) -> dict[str, np.ndarray]:
    return initial_weights(cell, config(cell, task, layers), key=3)


def batch(task: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    if task == "regress":
        return rng.normal(size=(BATCH, STEPS_T, 2)), rng.normal(size=BATCH)
    return rng.integers(0, VOCAB, (BATCH, STEPS_T)), rng.integers(0, VOCAB, (BATCH, STEPS_T))


def functional_model(cell, task, layers=2):
    return functional_twin(cell, config(cell, task, layers), weights(cell, task, layers))


def oop_model(cell, task, layers=2):
    return oop_twin(cell, config(cell, task, layers), weights(cell, task, layers))


def layer_state(last, k: int):
    """Layer k of torch's final state: `h_n[k]`, or `(h_n[k], c_n[k])` for the LSTM."""
    return tuple(t[k] for t in last) if isinstance(last, tuple) else last[k]


@pytest.mark.proves("rnn", "config")
@pytest.mark.parametrize("cell", CELLS)
def test_names_and_shapes_are_torchs_and_weights_round_trip_exactly(cell):
    for task in TASKS:
        cfg, w = config(cell, task), weights(cell, task)
        torch_model = oop_model(cell, task)
        assert list(torch_model.state_dict()) == list(cfg.weight_shapes())  # names, torch's order
        assert {k: v.shape for k, v in w.items()} == cfg.weight_shapes()
        back = oconvert.to_canonical(torch_model)
        with jax.enable_x64(True):
            again = fconvert.to_canonical(
                fconvert.from_canonical(functional_model(cell, task), back)
            )
        assert all(np.array_equal(w[k], again[k]) for k in w)


@pytest.mark.proves("rnn", "layers", "model", "loss")
@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("cell", CELLS)
def test_states_outputs_and_every_gradient_agree(cell, task):
    """Two layers, a padded batch (one sequence is full length): per-step states of the top
    layer, both layers' final states, outputs, the loss over real steps, every gradient. The
    unpadded path is the one the trajectories below take."""
    x, y, lengths, layers = *batch(task), LENGTHS, 2
    with jax.enable_x64(True):

        @eqx.filter_jit  # one compilation for all of it
        def everything(f):
            hs, finals = jax.vmap(f.states)(x, lengths)  # (batch, T, H); per layer (batch, ...)
            loss, grads = jax.value_and_grad(frnn.loss_fn)(f, x, y, lengths)
            return finals, hs, jax.vmap(f)(x, lengths), loss, grads

        finals, hs, out, loss_f, grads = everything(functional_model(cell, task, layers))
        grads = fconvert.to_canonical(grads)
    o = oop_model(cell, task, layers)
    lt = torch.from_numpy(lengths)
    hs_o, last = o.states(torch.from_numpy(x), lt)
    assert max_abs_diff(hs, hs_o.detach()) <= F64_TOL  # the top layer's h at every step
    for k, carry in enumerate(finals):  # every layer's h (and c) after its last real step
        assert max_abs_diff(carry, layer_state(last, k)) <= F64_TOL
    assert max_abs_diff(out, o(torch.from_numpy(x), lt).detach()) <= F64_TOL
    loss_o = ornn.loss_fn(o, torch.from_numpy(x), torch.from_numpy(y), lt)
    loss_o.backward()
    assert abs(float(loss_f) - loss_o.item()) <= F64_TOL
    for name, p in o.named_parameters():  # through time, through layers
        assert max_abs_diff(grads[name], p.grad) <= F64_TOL, name


@pytest.mark.proves("rnn", "layers")
@pytest.mark.parametrize("cell", CELLS)
def test_fused_call_equals_the_cell_loop(cell):
    """OOP: one `nn.GRU` call against a Python loop of `nn.GRUCell` on the same weights."""
    for task in TASKS:
        o = oop_model(cell, task)
        x, _ = batch(task)
        for lengths in (None, torch.from_numpy(LENGTHS)):
            hs, last = o.states(torch.from_numpy(x), lengths)
            hs_loop, finals = ornn.cell_loop(o, torch.from_numpy(x), lengths)
            assert max_abs_diff(hs.detach(), hs_loop.detach()) <= F64_TOL
            for k, state in enumerate(finals):  # h, and c for the LSTM
                assert max_abs_diff(state, layer_state(last, k)) <= F64_TOL


@pytest.mark.proves("rnn", "layers")
@pytest.mark.parametrize("length", [STEPS_T, 4], ids=["full", "padded"])
@pytest.mark.parametrize("cell", CELLS)
def test_scan_equals_a_python_loop(cell, length):
    """Functional: `lax.scan` over the cell against the same cell in a Python `for` loop that
    stops at the sequence's length (the masked scan must pass the padding through)."""
    w = weights(cell, "regress", 1)
    x, _ = batch("regress")
    with jax.enable_x64(True):
        layer = {k[len("rnn.") : -len("_l0")]: jnp.asarray(v) for k, v in w.items() if "_l0" in k}
        carry = frnn.zero_carry(cell, 6, jnp.float64)
        mask = jnp.arange(STEPS_T) < length
        hs, final = frnn.scan_layer(cell, layer, jnp.asarray(x[0]), carry, mask)
        state, loop = carry, []
        for t in range(length):
            state = frnn.CELLS[cell](layer, jnp.asarray(x[0, t]), state)
            loop.append(frnn.hidden(state))
    assert (
        max_abs_diff(hs[:length], jnp.stack(loop)) <= F64_TOL
    )  # XLA fuses the scanned body: ~1e-16
    assert (
        max_abs_diff(hs[length:], 0.0) == 0.0 if length < STEPS_T else True
    )  # zeros on the padding
    assert max_abs_diff(final, state) <= F64_TOL  # h, and c for the LSTM


# -- training: 100 steps on both tasks --
def trajectory(cell, task, dtype, steps):
    """Both sides through `rounding.check_trajectories`; returns its verdict."""
    if task == "regress":
        ds = data.load_sequences("adding", seq_len=12)
        cfg = RNNConfig(cell=cell, in_features=2, width=16, layers=1, task=task)
    else:
        ds = data.load_sequences("pycorpus", seq_len=12)
        cfg = RNNConfig(cell=cell, in_features=ds.in_features, width=16, layers=2, task=task)
    batches = batches_of(ds.x_train, ds.y_train, 8, steps, dtype)
    train = TrainConfig(dtype=dtype, optimizer=OptimizerSpec.create("adam", lr=3e-3))
    start = initial_weights(cell, cfg, dtype=dtype)
    return rounding.check_trajectories(*trainers(cell, cfg, train), start, batches, dtype,
                                       what=f"{cell} {task}")  # fmt: skip


@pytest.mark.proves("rnn", "train step")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    "cell, task", [("lstm", "regress"), ("gru", "next-char")], ids=["lstm-adding", "gru-pycorpus"]
)
def test_100_steps(cell, task, dtype):
    """float64 to F64_TOL; float32 against the rounding control (tests/rounding.py)."""
    print(cell, task, trajectory(cell, task, dtype, 100))
