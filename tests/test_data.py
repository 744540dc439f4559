"""Data sets and the one batch order both sides follow."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from oop.data import make_loader
from shared import data, sequences


def test_digits_is_the_bundled_set_scaled_and_split(digits):
    assert len(digits.x_train) + len(digits.x_test) == 1797
    assert digits.x_train.shape[1] == 64 and digits.num_classes == 10
    assert 0.0 <= digits.x_train.min() and digits.x_train.max() == 1.0
    assert set(np.unique(digits.y_test)) == set(range(10))


@pytest.mark.parametrize("name", sorted(data.DATASETS))
def test_every_data_set_is_deterministic(name):
    a, b = data.load(name), data.load(name)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert a.x_train.dtype == np.float64 and a.y_train.dtype == np.int64


def test_unknown_name_lists_the_available_ones():
    with pytest.raises(
        ValueError, match="unknown dataset 'mnist'; available: digits, mnist5k, moons, spirals"
    ):
        data.load("mnist")


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 300),
    batch=st.integers(1, 64),
    seed=st.integers(0, 2**31),
    epoch=st.integers(0, 5),
)
def test_an_epoch_is_a_permutation_without_the_partial_batch(n, batch, seed, epoch):
    if batch > n:
        with pytest.raises(ValueError, match="exceeds"):
            data.batch_indices(n, batch, seed=seed, epoch=epoch)
        return
    idx = data.batch_indices(n, batch, seed=seed, epoch=epoch)
    assert idx.shape == (n // batch, batch)
    assert len(np.unique(idx)) == idx.size  # no example twice in an epoch
    np.testing.assert_array_equal(idx, data.batch_indices(n, batch, seed=seed, epoch=epoch))


def test_a_stream_started_later_continues_the_same_order():
    full = list(itertools.islice(data.index_stream(100, 16, seed=3), 20))
    later = list(itertools.islice(data.index_stream(100, 16, seed=3, start_step=13), 7))
    for a, b in zip(full[13:], later, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(full[0], full[6])  # epoch 1 is shuffled anew


def test_the_torch_dataloader_yields_the_shared_batches(digits):
    loader = make_loader(
        digits.x_train, digits.y_train, 128, seed=0, num_steps=25, dtype=torch.float64
    )
    shared = data.batches(digits.x_train, digits.y_train, 128, seed=0)
    assert len(loader) == 25
    for x, y in loader:
        xs, ys = next(shared)
        assert x.shape == (128, 64) and x.dtype == torch.float64 and y.dtype == torch.int64
        np.testing.assert_array_equal(x.numpy(), xs)
        np.testing.assert_array_equal(y.numpy(), ys)


def test_mnist5k_ships_offline_with_500_images_per_class():
    ds = data.load("mnist5k")
    assert ds.image_shape == (1, 28, 28) and ds.in_features == 784
    assert (len(ds.x_train), len(ds.x_test)) == (4000, 1000)
    counts = np.bincount(np.concatenate([ds.y_train, ds.y_test]))
    assert counts.tolist() == [500] * 10
    assert 0.0 == ds.x_train.min() and ds.x_train.max() == 1.0
    again = data.load("mnist5k")
    assert np.array_equal(ds.x_test, again.x_test)  # the split is fixed


def test_an_image_shape_must_hold_the_features():
    x, y = np.zeros((4, 10)), np.zeros(4, np.int64)
    with pytest.raises(ValueError, match=r"image shape \(1, 3, 3\) does not hold 10 features"):
        data.Dataset("bad", x, y, x, y, 2, (1, 3, 3))


def test_adding_problem_targets_are_the_two_marked_values():
    ds = data.load_sequences("adding", seq_len=20)
    x, y = ds.x_train, ds.y_train
    assert x.shape == (10_000, 20, 2) and y.shape == (10_000,) and ds.in_features == 2
    assert np.all(x[:, :, 1].sum(axis=1) == 2)
    assert np.all(x[:, :10, 1].sum(axis=1) == 1)  # one marker in each half
    assert np.allclose((x[:, :, 0] * x[:, :, 1]).sum(axis=1), y, rtol=0, atol=1e-15)
    baseline = float(np.mean((ds.y_test - 1.0) ** 2))  # always predicting 1.0
    assert abs(baseline - 1 / 6) < 0.01
    again = data.load_sequences("adding", seq_len=20)
    assert np.array_equal(again.x_test, ds.x_test)


def test_pycorpus_windows_are_the_text_shifted_by_one():
    ds = data.load_sequences("pycorpus", seq_len=64)
    assert ds.x_train.shape[1] == 64 and ds.x_train.dtype == np.int64
    assert np.array_equal(ds.x_train[:, 1:], ds.y_train[:, :-1])
    assert np.array_equal(ds.y_train[:-1, -1], ds.x_train[1:, 0])  # windows overlap by one
    text = sequences.pycorpus_text()
    assert "".join(ds.vocab[i] for i in ds.x_train[0]) == text[:64]
    assert len(ds.sha256) == 64 and ds.in_features == len(ds.vocab) == len(set(text))
    n_valid = len(ds.x_test) * 64
    assert abs(n_valid / len(text) - sequences.VALID_FRACTION) < 0.01


def test_an_unknown_sequence_set_or_length_is_refused():
    with pytest.raises(ValueError, match="available: adding, pycorpus"):
        data.load_sequences("imdb")
    with pytest.raises(ValueError, match="--seq-len >= 2"):
        data.load_sequences("adding", seq_len=1)


def test_the_control_order_reverses_each_batch_and_keeps_the_batches():
    """`--control`'s order: the same examples in every batch, each batch reversed."""
    plain = list(itertools.islice(data.index_stream(100, 16, seed=3), 9))
    control = list(itertools.islice(data.index_stream(100, 16, seed=3, reverse=True), 9))
    assert all(np.array_equal(a[::-1], b) for a, b in zip(plain, control, strict=True))


def test_the_control_inputs_are_one_ulp_away_where_not_zero(digits):
    """`--control`'s inputs: every nonzero float at most one ulp up, about half of them moved,
    the zeros exact, integer inputs (character ids) untouched, the same draw for the same seed."""
    x = digits.x_train.astype(np.float32)
    moved = data.jitter_inputs(x, 0)
    up = np.nextafter(x, np.float32(np.inf))
    assert moved.dtype == np.float32 and np.all((moved == x) | (moved == up))
    assert np.all(moved[x == 0] == 0)
    assert 0.45 < np.mean(moved[x != 0] != x[x != 0]) < 0.55
    assert np.array_equal(data.jitter_inputs(x, 0), moved)
    ids = np.arange(12).reshape(3, 4)
    assert data.jitter_inputs(ids, 0) is ids
