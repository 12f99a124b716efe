"""Deterministic, epoch-indexed batching: the order of epoch ``e`` depends only on (seed, e).

That makes a run's data order reproducible across processes (and resumable mid-run). Tensor datasets
are batched straight from memory on the training device; others go through a ``DataLoader``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset


def _generator(seed: int, epoch: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed((seed * 1_000_003 + epoch * 7919 + 17) % (2**63 - 1))
    return g


class BatchLoader:
    """Yields ``(x, y)`` batches of one epoch on ``device``; ``len()`` is the number of batches."""

    def __init__(self, dataset: Dataset, batch_size: int, shuffle: bool, seed: int,
                 device: torch.device, num_workers: int = 0) -> None:
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.device = device
        self.num_workers = num_workers
        self._tensors: tuple[torch.Tensor, torch.Tensor] | None = None
        if isinstance(dataset, TensorDataset):
            x, y = dataset.tensors
            self._tensors = (x.to(device), y.to(device))

    def __len__(self) -> int:
        return math.ceil(len(self.dataset) / self.batch_size)  # type: ignore[arg-type]

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of epoch ``epoch`` (0-based), in an order fixed by (seed, epoch)."""
        n = len(self.dataset)  # type: ignore[arg-type]
        gen = _generator(self.seed, epoch)
        if self._tensors is not None:
            order = torch.randperm(n, generator=gen) if self.shuffle else torch.arange(n)
            order = order.to(self.device)
            x, y = self._tensors
            for i in range(0, n, self.batch_size):
                idx = order[i : i + self.batch_size]
                yield x[idx], y[idx]
            return
        loader = DataLoader(self.dataset, batch_size=self.batch_size, shuffle=self.shuffle,
                            generator=gen, num_workers=self.num_workers,
                            pin_memory=self.device.type == "cuda")
        for x, y in loader:
            yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
