"""torchvision's ImageNet architectures, randomly initialised (``weights=None``: nothing is
downloaded).

``num_classes`` goes to the torchvision constructor; for ``in_channels != 3`` the first convolution
is replaced by one of the same shape that accepts ``in_channels``. The networks pool globally, so
any image size large enough for their downsampling works (ImageNet's 224x224 is the intended one).
"""

from __future__ import annotations

from collections.abc import Callable

import torchvision
from torch import nn

from shedding.models.factories import MODELS

TORCHVISION_NAMES = ("resnet18", "resnet34", "resnet50", "mobilenet_v3_small", "mobilenet_v3_large")


def replace_first_conv(model: nn.Module, in_channels: int) -> nn.Module:
    """Swap the model's first ``Conv2d`` for an identical one taking ``in_channels`` inputs (in
    place)."""
    first = next(((n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)), None)
    if first is None:
        raise ValueError(
            f"{type(model).__name__} has no Conv2d to adapt to {in_channels} input channels"
        )
    name, module = first
    if module.in_channels == in_channels:
        return model
    new = nn.Conv2d(
        in_channels,
        module.out_channels,
        module.kernel_size,
        stride=module.stride,
        padding=module.padding,
        dilation=module.dilation,
        groups=module.groups,
        bias=module.bias is not None,
        padding_mode=module.padding_mode,
    )
    # torchvision initialises these stems with Kaiming normal (fan_out) and zero bias.
    nn.init.kaiming_normal_(new.weight, mode="fan_out", nonlinearity="relu")
    if new.bias is not None:
        nn.init.zeros_(new.bias)
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, attr, new)
    return model


def _register(name: str) -> None:
    constructor: Callable[..., nn.Module] = getattr(torchvision.models, name)

    def factory(in_channels: int, num_classes: int, image_size: tuple[int, int]) -> nn.Module:
        model = constructor(weights=None, num_classes=num_classes)
        return replace_first_conv(model, in_channels) if in_channels != 3 else model

    factory.__name__ = name
    factory.__doc__ = f"torchvision's {name}, randomly initialised (no pretrained weights)."
    MODELS.register(name)(factory)


for _name in TORCHVISION_NAMES:
    _register(_name)
