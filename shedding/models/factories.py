"""The model registry and the factory signature (see :mod:`shedding.models`)."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from shedding.registry import Registry

ModelFactory = Callable[[int, int, tuple[int, int]], nn.Module]
MODELS: Registry[ModelFactory] = Registry("model")


def build_model(
    name: str, in_channels: int, num_classes: int, image_size: tuple[int, int]
) -> nn.Module:
    """Instantiate a registered model for inputs of ``in_channels`` x ``image_size`` and
    ``num_classes``."""
    return MODELS.get(name)(in_channels, num_classes, image_size)
