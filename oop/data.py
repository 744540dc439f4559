"""The shared batch order, fed the way PyTorch users expect: a `Dataset` and a `Sampler`.

`SharedOrderSampler` yields whole batches of indices in `shared.data`'s order, and the
`DataLoader` runs with `batch_size=None`, so `TensorDataset[indices]` gathers each batch in one
indexing call instead of collating examples one by one.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler, TensorDataset

from shared import data


class SharedOrderSampler(Sampler[np.ndarray]):
    """`num_steps` batches of indices, starting after update `start_step`, in the shared order."""

    def __init__(
        self, n: int, batch_size: int, *, seed: int, num_steps: int, start_step: int = 0,
        reverse: bool = False,
    ):  # fmt: skip
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.num_steps, self.start_step, self.reverse = num_steps, start_step, reverse

    def __iter__(self) -> Iterator[np.ndarray]:
        stream = data.index_stream(
            self.n, self.batch_size, seed=self.seed, start_step=self.start_step,
            reverse=self.reverse,
        )  # fmt: skip
        return itertools.islice(stream, self.num_steps)

    def __len__(self) -> int:
        return self.num_steps


def make_loader(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    *,
    seed: int,
    num_steps: int,
    dtype: torch.dtype,
    start_step: int = 0,
    reverse: bool = False,
) -> DataLoader:
    """A DataLoader over `(x, y)` that yields batches of both as tensors: floats (features,
    regression targets) in `dtype`, integers (labels, character ids) as int64."""

    def tensor(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, dtype=torch.int64 if a.dtype.kind in "iu" else dtype)

    dataset = TensorDataset(tensor(x), tensor(y))
    sampler = SharedOrderSampler(
        len(x), batch_size, seed=seed, num_steps=num_steps, start_step=start_step, reverse=reverse
    )
    # The order is shared.data's, so the loader needs no randomness; its own generator keeps it
    # from drawing a seed from the global one when iteration starts, which would shift
    # Dropout's masks (and break a bit-identical resume).
    private = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, sampler=sampler, batch_size=None, generator=private)
