"""Deterministic, epoch-indexed batching: the order of epoch ``e`` depends only on (seed, e).

That makes a run's data order reproducible across processes (and resumable mid-run). Tensor datasets
are batched straight from memory on the training device; others go through a ``DataLoader``.

Under torchrun (``world_size`` > 1) ``batch_size`` is the global batch: every rank walks the same
(seed, epoch)-ordered batches and takes its contiguous shard of each (``torch.tensor_split``: sizes
differ by at most one, in rank order), so the shards of all ranks put together are exactly the
single-process batch.
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
    """Yields ``(x, y)`` batches of one epoch on ``device``; ``len()`` is the number of batches.

    With ``world_size`` > 1 it yields rank ``rank``'s shard of each global batch of ``batch_size``.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        shuffle: bool,
        seed: int,
        device: torch.device,
        num_workers: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.device = device
        self.num_workers = num_workers
        self.rank = rank
        self.world_size = world_size
        self._tensors: tuple[torch.Tensor, torch.Tensor] | None = None
        if isinstance(dataset, TensorDataset):
            x, y = dataset.tensors
            self._tensors = (x.to(device), y.to(device))

    def __len__(self) -> int:
        return math.ceil(len(self.dataset) / self.batch_size)  # type: ignore[arg-type]

    def global_batch_size(self, index: int) -> int:
        """Examples in global batch ``index`` of an epoch (``batch_size``, or fewer for the
        last)."""
        return min(self.batch_size, len(self.dataset) - index * self.batch_size)  # type: ignore[arg-type]

    def shard(self, batch: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous part of one global batch's indices."""
        return (
            torch.tensor_split(batch, self.world_size)[self.rank] if self.world_size > 1 else batch
        )

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of epoch ``epoch`` (0-based), in an order fixed by (seed, epoch)."""
        n = len(self.dataset)  # type: ignore[arg-type]
        gen = _generator(self.seed, epoch)
        if self._tensors is not None:
            order = torch.randperm(n, generator=gen) if self.shuffle else torch.arange(n)
            order = order.to(self.device)
            x, y = self._tensors
            for i in range(0, n, self.batch_size):
                idx = self.shard(order[i : i + self.batch_size])
                yield x[idx], y[idx]
            return
        if self.world_size > 1:
            yield from self._sharded_epoch(gen)
            return
        loader = DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            shuffle=self.shuffle,
            generator=gen,
            num_workers=self.num_workers,
            pin_memory=self.device.type == "cuda",
        )
        for x, y in loader:
            yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)

    def _sharded_epoch(self, gen: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Rank ``rank``'s shards of the batches the single-process ``DataLoader`` above yields for
        ``gen``.

        That DataLoader first draws its workers' base seed from ``gen`` and then (shuffling) a
        ``randperm`` of the dataset; the same draws give the same order here (a unit test compares
        the two). Each rank's workers get their own seed, so random augmentation differs per rank.
        """
        n = len(self.dataset)  # type: ignore[arg-type]
        base_seed = int(torch.empty((), dtype=torch.int64).random_(generator=gen).item())
        order = torch.randperm(n, generator=gen) if self.shuffle else torch.arange(n)
        shards = [
            self.shard(order[i : i + self.batch_size]).tolist()
            for i in range(0, n, self.batch_size)
        ]
        workers = torch.Generator().manual_seed((base_seed + 7919 * self.rank) % (2**63 - 1))
        loader = DataLoader(
            self.dataset,
            batch_sampler=shards,
            num_workers=self.num_workers,
            generator=workers,
            pin_memory=self.device.type == "cuda",
        )
        for x, y in loader:
            yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
