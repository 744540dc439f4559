"""The Dropout CNN twins. Random streams cannot match across frameworks, so three things are
checked: inference is the same function on both sides; with the same masks fed to both (the
layers' test-only `mask`), 100 training steps agree to rounding; and each side's own draws
keep values with probability 1 - p and scale them by 1 / (1 - p).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from pairs import F64_TOL, batches_of, initial_weights, max_abs_diff, pair, trainers

import functional.layers as flayers
import functional.models.cnn_dropout as fdrop
import oop.layers as olayers
import oop.models.cnn_dropout as odrop
from shared import data
from shared.config import CNNDropoutConfig, TrainConfig
from shared.optim import OptimizerSpec

P, STEPS, BATCH = 0.5, 100, 32
DRAWS = 200_000  # values per statistical check: the keep rate's std is 1.1e-3 at p = 0.5
SIGMAS = 5  # a fair draw lands this far from 1 - p with probability < 1e-6


@pytest.fixture(scope="module")
def setup():
    ds = data.load("digits")
    config = CNNDropoutConfig.for_data(ds, width=4, dropout=P)
    return ds, config, initial_weights("cnn_dropout", config)


@pytest.mark.proves("cnn_dropout", "model", "evaluate")
def test_inference_is_the_same_function_and_needs_no_key(setup):
    ds, config, weights = setup
    f, o = pair("cnn_dropout", config, weights)
    with jax.enable_x64(True):
        lf, af = fdrop.evaluate(f, ds.x_test, ds.y_test)
    lo, ao = odrop.evaluate(o, torch.from_numpy(ds.x_test), torch.from_numpy(ds.y_test))
    assert abs(float(lf) - float(lo)) <= F64_TOL
    assert abs(float(af) - float(ao)) <= F64_TOL  # float64 on both sides (traps.md: mean-of-bool)


@pytest.mark.proves("layers", "dropout")
@pytest.mark.proves("cnn_dropout", "model", "loss", "train step")
def test_same_masks_give_the_same_100_step_trajectory(setup):
    """float64, under Adam (one optimizer: tests/test_optimizers.py proves every optimizer)."""
    cfg = TrainConfig(dtype="float64", optimizer=OptimizerSpec.create("adam", lr=1e-3))
    ds, config, weights = setup
    rng = np.random.default_rng(0)
    batches = batches_of(ds.x_train, ds.y_train, BATCH, STEPS, "float64")
    masks = [rng.random((BATCH, config.head_features)) >= P for _ in range(STEPS)]  # keep
    batches = [(x, y, m) for (x, y), m in zip(batches, masks, strict=True)]  # fed to both sides
    f, o = (train(weights, batches) for train in trainers("cnn_dropout", config, cfg))
    assert max_abs_diff(f.losses, o.losses) <= F64_TOL
    assert max_abs_diff(f.weights, o.weights) <= F64_TOL
    assert len(set(np.round(f.losses, 6))) > 1  # the masks do change the training


def kept_and_scale(values: np.ndarray) -> tuple[float, np.ndarray]:
    kept = values != 0
    return float(kept.mean()), np.unique(values[kept])


@pytest.mark.proves("layers", "dropout")
@pytest.mark.parametrize("p", [0.1, 0.5])
def test_each_side_keeps_1_minus_p_and_scales_by_its_inverse(p):
    ones = np.ones(DRAWS)
    with jax.enable_x64(True):
        layer = flayers.Dropout(p)
        f = np.asarray(layer(jnp.asarray(ones), key=jax.random.PRNGKey(0), inference=False))
        again = np.asarray(layer(jnp.asarray(ones), key=jax.random.PRNGKey(0), inference=False))
        other = np.asarray(layer(jnp.asarray(ones), key=jax.random.PRNGKey(1), inference=False))
    torch.manual_seed(0)
    o = olayers.Dropout(p).train()(torch.from_numpy(ones)).numpy()
    std = (p * (1 - p) / DRAWS) ** 0.5
    for values in (f, o):
        rate, scales = kept_and_scale(values)
        assert abs(rate - (1 - p)) <= SIGMAS * std, rate
        np.testing.assert_allclose(scales, [1 / (1 - p)], rtol=1e-15)  # one value: 1/(1-p)
    assert np.array_equal(f, again) and not np.array_equal(f, other)  # the key decides
    assert np.array_equal(olayers.Dropout(p).eval()(torch.from_numpy(ones)).numpy(), ones)
