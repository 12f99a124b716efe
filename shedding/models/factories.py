"""The model registry and the factory signature (see :mod:`shedding.models`)."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from shedding.config import ConfigError
from shedding.registry import FactoryError, Registry, call_factory

ModelFactory = Callable[[int, int, tuple[int, int]], nn.Module]
MODELS: Registry[ModelFactory] = Registry("model", import_paths=True)


def build_model(
    name: str, in_channels: int, num_classes: int, image_size: tuple[int, int]
) -> nn.Module:
    """Instantiate the model ``name`` for inputs of ``in_channels`` x ``image_size`` and
    ``num_classes``.

    ``name`` is a registered name or an import path ``package.module:factory``. Registered
    factories get the three arguments positionally; a factory from elsewhere may take fewer of
    them, by name, or none (:func:`shedding.registry.call_factory`). A factory that cannot be
    called so, or returns no ``nn.Module``, is a :class:`ConfigError` naming ``--model-name``.
    """
    shape = {"in_channels": in_channels, "num_classes": num_classes, "image_size": image_size}
    try:
        model = call_factory(MODELS.get(name), shape, f"model {name!r}")
    except FactoryError as e:
        raise ConfigError(f"--model-name: {e}") from None
    if not isinstance(model, nn.Module):
        raise ConfigError(
            f"--model-name: model {name!r}: the factory returned a {type(model).__name__}, not a "
            "torch.nn.Module"
        )
    return model
