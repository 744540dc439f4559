"""The written model interface: every registered model is a `Model` on both sides, the twins
declare the same `HAS_STATE` and `STOCHASTIC`, the declarations say what the models do, and
the functional adapter gives each of the four combinations its state and its key (one model
below has both, which no registered model has yet)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from pairs import F64_TOL

import functional.interface as finterface
import oop.interface as ointerface
from functional.convert import skeleton
from functional.layers import BatchNorm2d, Dropout
from functional.models import MODELS as FMODELS
from oop.models import MODELS as OMODELS
from shared import data, registry

CHAR_MODELS = [e for e in registry.ENTRIES if e.name in ("rnn", "gru", "lstm", "gpt")]


@pytest.mark.parametrize("name", registry.NAMES)
def test_every_registered_model_is_a_model_and_twins_declare_alike(name):
    f, o = FMODELS[name], OMODELS[name]
    assert isinstance(f, finterface.Model), f"functional.models.{name} lacks part of the interface"
    assert isinstance(o, ointerface.Model), f"oop.models.{name} lacks part of the interface"
    assert (f.HAS_STATE, f.STOCHASTIC) == (o.HAS_STATE, o.STOCHASTIC)
    assert isinstance(f.HAS_STATE, bool) and isinstance(f.STOCHASTIC, bool)


@pytest.mark.parametrize("entry", registry.ENTRIES, ids=lambda e: e.name)
def test_has_state_says_what_init_model_returns(entry):
    """Functional: a `(model, state)` pair exactly when HAS_STATE. OOP: buffers in the
    state_dict beside the parameters exactly when HAS_STATE."""
    config = entry.config.for_data(data.load(entry.bench_data))
    f, o = FMODELS[entry.name], OMODELS[entry.name]
    made = skeleton(f.init_model, config)
    assert isinstance(made, tuple) == f.HAS_STATE
    model = o.init_model(config, seed=0)
    buffers = set(model.state_dict()) - {n for n, _ in model.named_parameters()}
    assert bool(buffers) == o.HAS_STATE, sorted(buffers)


@pytest.mark.parametrize("entry", CHAR_MODELS, ids=lambda e: e.name)
def test_character_models_are_decoders_on_both_sides(entry):
    config = entry.config.for_data(data.load("pycorpus", 16))
    model, _ = finterface.template(FMODELS[entry.name], config, dtype="float32")
    assert isinstance(model, finterface.Decoder)
    assert isinstance(OMODELS[entry.name].init_model(config, seed=0), ointerface.Decoder)


# -- a model with both BatchNorm and Dropout, through the adapter --
C, P = 3, 0.5


class NormDrop(eqx.Module):
    """BatchNorm2d over C channels of one 1x1 "image", Dropout, a linear head to 2 classes."""

    norm: BatchNorm2d
    drop: Dropout
    head: eqx.nn.Linear

    def __init__(self, *, key):
        self.norm = BatchNorm2d(C, dtype=jnp.float64)
        self.drop = Dropout(P)
        self.head = eqx.nn.Linear(C, 2, key=key, dtype=jnp.float64)

    def __call__(self, x, state, *, key=None, inference=False):
        h, state = self.norm(x.reshape(C, 1, 1), state, inference=inference)
        return self.head(self.drop(h.reshape(C), key=key, inference=inference)), state


class NormDropModule:
    """A model file in all but name: HAS_STATE and STOCHASTIC both."""

    HAS_STATE, STOCHASTIC = True, True
    DTYPES = {"float64": jnp.float64}

    @staticmethod
    def init_model(config, *, key, dtype="float64"):
        return eqx.nn.make_with_state(NormDrop)(key=key)

    @staticmethod
    def loss_fn(model, state, x, y, key):
        def one(x, k):
            return model(x, state, key=k)

        batched = jax.vmap(one, axis_name="batch", in_axes=(0, 0), out_axes=(0, None))
        logits, state = batched(x, jax.random.split(key, len(x)))
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), state

    @staticmethod
    def make_step(optimizer, static):
        def step(params, state, opt_state, x, y, key):
            def loss_of(p):
                return NormDropModule.loss_fn(eqx.combine(p, static), state, x, y, key)

            (loss, state_), grads = jax.value_and_grad(loss_of, has_aux=True)(params)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), state_, opt_state, loss

        return step

    @staticmethod
    def evaluate(model, state, x, y):
        logits, _ = jax.vmap(
            lambda e: model(e, state, inference=True), axis_name="batch", out_axes=(0, None)
        )(x)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        return loss, (jnp.argmax(logits, -1) == y).mean()


def test_a_model_with_state_and_dropout_gets_both_from_the_adapter():
    """The adapter must thread the state *and* give update k the key fold_in(dropout_key, k):
    the bug it replaces returned for a model with state before it read STOCHASTIC."""
    module, seed = NormDropModule, 7
    assert isinstance(module, finterface.Model)
    with jax.enable_x64(True):
        model, state = finterface.init(module, None, key=jax.random.PRNGKey(0), dtype="float64")
        params, static = eqx.partition(model, eqx.is_array)
        tx = optax.sgd(0.1)
        opt = tx.init(params)
        x = jnp.asarray(np.random.default_rng(0).normal(size=(8, C)))
        y = jnp.asarray(np.arange(8) % 2)
        step = jax.jit(finterface.uniform_step(module, tx, static, seed))

        p1, s1, _, loss1 = step(params, state, opt, x, y, 1)
        key1 = jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(seed), 1), 1)
        by_hand = jax.jit(module.make_step(tx, static))(params, state, opt, x, y, key1)
        gaps = jax.tree.leaves(
            jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), p1, by_hand[0])
        )
        assert abs(float(loss1) - float(by_hand[3])) <= F64_TOL  # the masks of update 1's key
        assert max(gaps) <= F64_TOL
        # the state moved: one training call of the norm, and its mean left zero
        mean, _, count = s1.get(model.norm.index)
        assert int(count) == 1 and float(jnp.abs(mean).max()) > 0
        # update 2 draws other masks from the same batch and weights; update 1 again the same
        _, _, _, loss2 = step(params, state, opt, x, y, 2)
        _, _, _, again = step(params, state, opt, x, y, 1)
        assert float(loss2) != float(loss1) and float(again) == float(loss1)
        loss, accuracy = finterface.evaluate(module, eqx.combine(p1, static), s1, x, y)
        assert np.isfinite(loss) and 0 <= accuracy <= 1


@pytest.mark.parametrize("has_state", [False, True])
@pytest.mark.parametrize("stochastic", [False, True])
def test_the_adapter_covers_the_four_combinations(has_state, stochastic):
    """What the adapter hands each kind of step: the state only with HAS_STATE (and None back
    without), a key only with STOCHASTIC, the loss last."""
    seen = {}

    class Fake:
        HAS_STATE, STOCHASTIC, DTYPES = has_state, stochastic, {}
        init_model = loss_fn = evaluate = staticmethod(lambda *a, **k: None)

        @staticmethod
        def make_step(optimizer, static):
            def step(*args):
                seen["args"] = args
                if has_state:
                    params, state, opt_state = args[:3]
                    return params, state + 1, opt_state, 0.5
                return args[0], args[1], 0.5

            return step

    uniform = finterface.uniform_step(Fake, None, None, seed=3)
    out = uniform("params", 10 if has_state else None, "opt", "x", "y", 4)
    assert out == ("params", 11 if has_state else None, "opt", 0.5)
    args = seen["args"]
    assert len(args) == 4 + has_state + stochastic
    assert ("x", "y") == args[2 + has_state : 4 + has_state]
    if stochastic:
        want = jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(3), 1), 4)
        assert bool(jnp.array_equal(args[-1], want))


def test_the_oop_adapter_steps_in_place():
    """One step for every combination: the module and the optimizer move, the loss comes back
    on the device."""
    entry = registry.entry("cnn_bn")
    config = entry.config.for_data(data.load("digits"), width=2)
    module = OMODELS["cnn_bn"]
    model = ointerface.init(module, config, seed=0, dtype="float64")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ds = data.load("digits")
    x, y = torch.as_tensor(ds.x_train[:16]), torch.as_tensor(ds.y_train[:16])
    loss = ointerface.uniform_step(module, model, optimizer, None)(x, y)
    assert isinstance(loss, torch.Tensor) and loss.ndim == 0
    after = model.state_dict()
    assert not torch.equal(before["norms.0.running_mean"], after["norms.0.running_mean"])
    assert not torch.equal(before["head.weight"], after["head.weight"])
