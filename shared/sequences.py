"""The sequence data sets: the adding problem (regression) and pycorpus (next character).

`shared.data.load` gives them by name, beside the tables, and batches them in the same shared
order; each is a `SequenceDataset`.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class SequenceDataset:
    """A sequence task as NumPy arrays, batched in the same shared order as a `Dataset`.

    `adding` (regression): x `(N, T, 2)` float64 (value, marker) pairs, y `(N,)` float64.
    `pycorpus` (next character): x `(N, T)` int64 character ids, y `(N, T)` int64, x shifted
    left by one; `vocab[i]` is character i and `sha256` identifies the text it was cut from.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray  # the adding problem's test split; pycorpus's validation windows
    y_test: np.ndarray
    vocab: str | None = None  # characters by id; None for a regression task
    sha256: str | None = None  # of the source text

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if len(x) != len(y) or x.ndim < 2:
                raise ValueError(f"dataset {self.name!r}: x_{split} {x.shape}, y_{split} {y.shape}")
            if x.dtype.kind == "f" and not np.isfinite(x).all():
                raise ValueError(f"dataset {self.name!r}: x_{split} has non-finite values")

    image_shape = None

    @property
    def seq_len(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def task(self) -> str:
        return "regress" if self.vocab is None else "next-char"

    @property
    def num_classes(self) -> int:
        """Outputs per prediction: 1 for the adding problem, the vocabulary for characters."""
        return 1 if self.vocab is None else len(self.vocab)

    @property
    def in_features(self) -> int:
        """Floats per time step, or the vocabulary size of a character task."""
        return len(self.vocab) if self.vocab is not None else int(self.x_train.shape[2])


def adding(seq_len: int = 50, n_train: int = 10_000, n_test: int = 2_000, seed: int = 0):
    """The adding problem (Hochreiter & Schmidhuber, 1997), in the form of Le et al. (2015):
    `seq_len` pairs (value ~ U(0, 1), marker); exactly two markers are 1, one in each half of
    the sequence, and the target is the sum of the two marked values. Predicting 1.0 always
    scores an MSE of 1/6 (the variance of a sum of two uniforms)."""
    if seq_len < 2:
        raise ValueError(f"the adding problem needs --seq-len >= 2, got {seq_len}")
    rng = np.random.default_rng([seed, seq_len])
    n = n_train + n_test
    values = rng.uniform(0.0, 1.0, (n, seq_len))
    half = seq_len // 2
    first = rng.integers(0, half, n)
    second = rng.integers(half, seq_len, n)
    markers = np.zeros((n, seq_len))
    markers[np.arange(n), first] = markers[np.arange(n), second] = 1.0
    x = np.stack([values, markers], axis=-1)  # (N, T, 2)
    y = values[np.arange(n), first] + values[np.arange(n), second]
    return SequenceDataset("adding", x[:n_train], y[:n_train], x[n_train:], y[n_train:])


VALID_FRACTION = 0.1  # pycorpus: the last 10% of the text


@functools.cache
def pycorpus_text() -> str:
    """The Python documentation's topic texts that ship with CPython (`pydoc_data.topics`,
    about 465 KB), joined in sorted key order. It changes with the Python patch release; the
    data set records its SHA-256."""
    from pydoc_data.topics import topics  # part of the standard library, read offline

    return "\n".join(topics[k] for k in sorted(topics))


def pycorpus(seq_len: int = 128) -> SequenceDataset:
    """Character windows of `pycorpus_text()`: the first 90% of the text for training, the
    rest for validation, each cut into consecutive windows of `seq_len + 1` characters, where
    each window's last character is the next one's first (x is a window's first `seq_len`, y
    its last `seq_len`)."""
    text = pycorpus_text()
    vocab = "".join(sorted(set(text)))
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)  # one per character
    vocab_codes = np.frombuffer(vocab.encode("utf-32-le"), dtype=np.uint32)  # sorted
    ids = np.searchsorted(vocab_codes, codes).astype(np.int64)
    cut = int(round(len(ids) * (1 - VALID_FRACTION)))
    longest = len(ids) - cut - 1  # one window of the validation text
    if seq_len > longest:
        raise ValueError(f"--seq-len {seq_len} is too long for pycorpus; use at most {longest}")

    def windows(part: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = (len(part) - 1) // seq_len
        starts = np.arange(n)[:, None] * seq_len + np.arange(seq_len + 1)
        w = part[starts]  # (n, seq_len + 1)
        return w[:, :-1], w[:, 1:]

    (xt, yt), (xv, yv) = windows(ids[:cut]), windows(ids[cut:])
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return SequenceDataset("pycorpus", xt, yt, xv, yv, vocab=vocab, sha256=sha)


SEQUENCE_DATASETS = {"adding": adding, "pycorpus": pycorpus}


def load_sequences(name: str, seq_len: int | None = None) -> SequenceDataset:
    """A sequence data set; `seq_len` None takes its default (adding 50, pycorpus 128)."""
    if name not in SEQUENCE_DATASETS:
        raise ValueError(f"unknown sequence dataset {name!r}; available: adding, pycorpus")
    if seq_len is not None and seq_len < 1:
        raise ValueError(f"--seq-len must be >= 1, got {seq_len}")
    loader = SEQUENCE_DATASETS[name]
    return loader() if seq_len is None else loader(seq_len)
