"""The dataset registry and the bundle a dataset builder returns (see :mod:`shedding.data`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch.utils.data import Dataset

from shedding.config import DataConfig
from shedding.registry import Registry


@dataclass
class DataBundle:
    """Train and test splits plus the shape facts a model factory needs.

    ``train``/``test`` are map-style datasets yielding ``(image tensor C x H x W, int label)``.
    When both are :class:`torch.utils.data.TensorDataset` (no per-sample transforms) the loader
    batches them directly from memory, which is much faster for tiny data.
    """

    name: str
    train: Dataset
    test: Dataset
    in_channels: int
    num_classes: int
    image_size: tuple[int, int]


DataBuilder = Callable[[DataConfig], DataBundle]
DATASETS: Registry[DataBuilder] = Registry("dataset")


def build_data(cfg: DataConfig) -> DataBundle:
    """Build the registered dataset named ``cfg.name``."""
    return DATASETS.get(cfg.name)(cfg)
