"""The BatchNorm CNN twins: the functional state (passed in, returned) and torch's buffers
(changed in place in train mode) hold the same running statistics, and the two compute the same
logits in train and eval mode, the same gradients, and the same 100-step trajectory.

Also pinned: what equinox does with a stale state (raises inside one trace, silently accepted
across jitted calls), and the round trip of weights and state through a canonical checkpoint.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rounding
import torch
from corners import check_with_corners
from pairs import (
    F64_TOL,
    batches_of,
    cast,
    functional_model,
    initial_weights,
    max_abs_diff,
    oop_model,
    trainers,
)

import functional.convert as fconvert
import functional.models.cnn_bn as fbn
import oop.convert as oconvert
import oop.models.cnn_bn as obn
from shared import checkpoint, data
from shared.config import CNNBNConfig, TrainConfig
from shared.optim import OptimizerSpec

# float64 twins agree to rounding (measured: 1.5e-14 at most): F64_TOL; float32 against the
# rounding control (tests/rounding.py).
STEPS, BATCH, CHECK_AT = 100, 64, (1, 10, 100)


@pytest.fixture(scope="module")
def setup():
    ds = data.load("digits")
    config = CNNBNConfig.for_data(ds, width=8)
    return ds, config, initial_weights("cnn_bn", config)


@pytest.mark.proves("layers", "batch norm")
def test_state_holds_torchs_buffers(setup):
    _, config, canonical = setup
    assert set(canonical) == set(oop_model("cnn_bn", config, canonical).state_dict())
    assert canonical["norms.0.num_batches_tracked"].dtype == np.int64
    assert canonical["norms.0.num_batches_tracked"].shape == ()


@pytest.mark.proves("layers", "batch norm")
@pytest.mark.proves("cnn_bn", "model", "loss", "evaluate")
def test_forward_in_train_and_eval_mode_and_the_gradients(setup):
    ds, config, canonical = setup
    x, y = ds.x_train[:BATCH], ds.y_train[:BATCH]
    with jax.enable_x64(True):
        model, state = functional_model("cnn_bn", config, canonical, "float64")
        train_logits, state = eqx.filter_jit(fbn.batched(model, inference=False))(x, state)
        (_, _), grads = eqx.filter_jit(eqx.filter_value_and_grad(fbn.loss_fn, has_aux=True))(
            model, functional_model("cnn_bn", config, canonical, "float64")[1], x, y
        )
        eval_logits, _ = eqx.filter_jit(fbn.batched(model, inference=True))(x, state)
        after = fconvert.model_state_to_canonical(model, state)
    torch_model = oop_model("cnn_bn", config, canonical)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    torch_model.train()
    train_torch = torch_model(xt)
    buffers = {k: v.numpy().copy() for k, v in torch_model.state_dict().items() if k in after}
    torch_model.eval()
    eval_torch = torch_model(xt).detach().numpy()
    assert max_abs_diff(train_logits, train_torch) <= F64_TOL
    assert max_abs_diff(eval_logits, eval_torch) <= F64_TOL
    for name, value in after.items():  # the statistics moved the same way
        assert max_abs_diff(value, buffers[name]) <= F64_TOL, name
    torch_model = oop_model("cnn_bn", config, canonical)
    obn.loss_fn(torch_model.train(), xt, yt).backward()
    grads = fconvert.to_canonical(grads)
    for name, p in torch_model.named_parameters():
        assert max_abs_diff(grads[name], p.grad) <= F64_TOL, name


SGD, ADAM = (
    OptimizerSpec.create("sgd", lr=0.05, momentum=0.9),
    OptimizerSpec.create("adam", lr=1e-3),
)


# One optimizer per dtype: the optimizers are the model-independent code that
# tests/test_optimizers.py proves for every optimizer and schedule. float64 under SGD with
# momentum; float32 under Adam. Under SGD at lr 0.05 the float32 twins meet one near-tie (a
# max-pool winner or a ReLU's sign) at the same update on every machine tried, and end 2.5e-5
# apart; whether a control meets one too is chance (1.0x to 20x the largest control), and a
# ratio decided by chance is no test. Under Adam no such event was seen: twins/control 0.62
# with full kernels, 0.00 capped to SSE4.2 (where a control did meet one), at one thread and
# at two.
@pytest.mark.proves("cnn_bn", "train step")
@pytest.mark.parametrize(
    "dtype, opt", [("float64", SGD), ("float32", ADAM)], ids=["float64-sgd", "float32-adam"]
)
def test_100_step_trajectory_and_running_statistics(setup, dtype, opt):
    """Weights and running statistics: float64 to F64_TOL at updates 1, 10 and 100; float32
    against the rounding control (tests/rounding.py), the batch statistics amplifying rounding
    by an amount the trajectory decides."""
    ds, config, canonical = setup
    batches = batches_of(ds.x_train, ds.y_train, BATCH, STEPS, dtype)
    cfg = TrainConfig(dtype=dtype, optimizer=opt)
    native, start = trainers("cnn_bn", config, cfg, at=CHECK_AT), cast(canonical, dtype)
    if dtype == "float32":  # and the grid's other corners (docs/paradigms.md)
        verdict = check_with_corners("cnn_bn", config, cfg, native, start, batches, "cnn_bn")
    else:
        verdict = rounding.check_trajectories(*native, start, batches, dtype,
                                              what=f"cnn_bn {opt.name}")  # fmt: skip
    print("cnn_bn", opt.name, verdict)
    seen_f, seen_o = verdict.a.at, verdict.b.at  # the twins' runs, not the controls'
    for k in CHECK_AT:
        assert seen_f[k].keys() == seen_o[k].keys()
        assert (
            seen_f[k]["norms.1.num_batches_tracked"]
            == k
            == seen_o[k]["norms.1.num_batches_tracked"]
        )
        if dtype == "float64":
            for name in seen_f[k]:
                gap = max_abs_diff(seen_f[k][name], seen_o[k][name])
                assert gap <= F64_TOL, (k, name, gap)


def test_a_stale_state_raises_inside_one_trace_but_not_across_jitted_calls(setup):
    """equinox marks a state stale once `set` has produced a newer one, but only within one
    trace (or eagerly): a jitted step receives a fresh copy of its input, so calling it twice
    with the same old state is accepted without a word, and the second call redoes the first
    update instead of continuing from it. Threading the returned state is the caller's job."""
    ds, config, canonical = setup
    x = ds.x_train[:4].astype(np.float32)
    model, state = functional_model("cnn_bn", config, canonical, "float32")
    train = fbn.batched(model, inference=False)

    def twice_from_the_same_state(x, state):  # one example, inside the named vmap
        _, newer = model(x, state)
        return model(x, state)  # bug: state instead of newer

    with pytest.raises(ValueError, match="Attempted to use old state"):  # raised while tracing
        eqx.filter_jit(jax.vmap(
            twice_from_the_same_state, axis_name="batch", in_axes=(0, None), out_axes=(0, None)
        ))(x, state)  # fmt: skip
    step = eqx.filter_jit(train)
    _, first = step(x, state)
    _, again = step(x, state)  # the same stale input, silently accepted
    count = fconvert.model_state_to_canonical(model, again)["norms.0.num_batches_tracked"]
    assert count == 1  # not 2: the second call did not continue from the first
    assert jnp.array_equal(first.get(model.norms[0].index)[0], again.get(model.norms[0].index)[0])


def test_weights_and_state_round_trip_through_a_checkpoint(setup, tmp_path):
    """functional -> file -> torch -> file -> functional, after some training: bit-exact,
    running statistics and num_batches_tracked included."""
    ds, config, canonical = setup
    with jax.enable_x64(True):  # one training-mode batch moves the statistics off 0 and 1
        model, state = functional_model("cnn_bn", config, canonical, "float64")
        _, state = eqx.filter_jit(fbn.loss_fn)(model, state, ds.x_train[:BATCH], ds.y_train[:BATCH])
        trained = fconvert.to_canonical_with_state(model, state)
    assert trained["norms.0.num_batches_tracked"] == 1
    meta = dict(model="cnn_bn", model_config={}, train_config={}, step=100)
    checkpoint.save(tmp_path / "a.safetensors", trained, side="functional", **meta)
    torch_model = oop_model("cnn_bn", config, checkpoint.read(tmp_path / "a.safetensors").tensors)
    checkpoint.save(
        tmp_path / "b.safetensors", oconvert.to_canonical(torch_model), side="oop", **meta
    )
    back = checkpoint.read(tmp_path / "b.safetensors").tensors
    with jax.enable_x64(True):
        model, state = functional_model("cnn_bn", config, back, "float64")
        again = fconvert.to_canonical_with_state(model, state)
    assert again.keys() == trained.keys()
    for name in trained:
        assert again[name].dtype == trained[name].dtype and np.array_equal(
            again[name], trained[name]
        )
