"""Model registry. A new model is one module here plus its import line below.

A model factory takes ``(in_channels, num_classes, image_size)`` and returns an ``nn.Module``.
Prunable tensors are the weights of Conv and Linear layers (see :mod:`shedding.models.prunable`);
a model class may list ``default_dense_layers`` (parameter names) to leave dense.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from shedding.registry import Registry

ModelFactory = Callable[[int, int, tuple[int, int]], nn.Module]
MODELS: Registry[ModelFactory] = Registry("model")


def build_model(name: str, in_channels: int, num_classes: int, image_size: tuple[int, int]) -> nn.Module:
    """Instantiate a registered model for inputs of ``in_channels`` x ``image_size`` and ``num_classes``."""
    return MODELS.get(name)(in_channels, num_classes, image_size)


# Registration happens on import; one line per model module.
from shedding.models import cifar_resnet
from shedding.models import cifar_vgg
from shedding.models import small
from shedding.models import torchvision_models
