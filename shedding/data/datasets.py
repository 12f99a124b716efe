"""The dataset registry and the bundle a dataset builder returns (see :mod:`shedding.data`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch.utils.data import Dataset

from shedding.config import ConfigError, DataConfig
from shedding.registry import FactoryError, Registry, call_factory


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
DATASETS: Registry[DataBuilder] = Registry("dataset", import_paths=True)


def build_data(cfg: DataConfig) -> DataBundle:
    """Build the dataset ``cfg.name``: a registered name or an import path
    ``package.module:builder``.

    Registered builders get ``cfg``; a builder from elsewhere may also take no argument at all
    (:func:`shedding.registry.call_factory`). A builder that cannot be called so, or returns no
    :class:`DataBundle`, is a :class:`ConfigError` naming ``--data-name``.
    """
    try:
        bundle = call_factory(DATASETS.get(cfg.name), {"cfg": cfg}, f"dataset {cfg.name!r}")
    except FactoryError as e:
        raise ConfigError(f"--data-name: {e}") from None
    if not isinstance(bundle, DataBundle):
        raise ConfigError(
            f"--data-name: dataset {cfg.name!r}: the builder returned a {type(bundle).__name__}, "
            "not a shedding.data.DataBundle"
        )
    return bundle
