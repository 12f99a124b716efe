"""VGG-16 with batch norm for CIFAR, as OpenLTH's ``cifar_vgg_16`` (Renda et al. 2020's VGG-16).

Thirteen 3x3 conv (with bias) + BN + ReLU modules in the plan below, four 2x2 max-pools, global
average pooling and ``Linear(512, num_classes)`` named ``fc``: 14,728,266 parameters for 10 classes.
OpenLTH pools with a fixed 2x2 average, which equals global pooling on 32x32 inputs; global pooling
also accepts any input of at least 16x16. Initialisation is OpenLTH's (Kaiming normal, uniform BN
scales).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from shedding.models.cifar_resnet import openlth_init
from shedding.models.factories import MODELS

VGG16_PLAN: list[int | str] = [
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
]


class ConvModule(nn.Module):
    """One VGG layer: a 3x3 conv (with bias), batch norm and ReLU."""

    def __init__(self, in_filters: int, out_filters: int):
        super().__init__()
        self.conv = nn.Conv2d(in_filters, out_filters, 3, padding=1)
        self.bn = nn.BatchNorm2d(out_filters)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class CifarVGG(nn.Module):
    """A VGG network built from ``plan`` (ints are conv widths, ``'M'`` a 2x2 max-pool)."""

    def __init__(
        self, plan: list[int | str], in_channels: int, num_classes: int, image_size: tuple[int, int]
    ):
        super().__init__()
        pools = sum(1 for spec in plan if spec == "M")
        if min(image_size) < 2**pools:
            raise ValueError(
                f"this VGG needs images of at least {2**pools}x{2**pools}, got {image_size}"
            )
        layers: list[nn.Module] = []
        filters = in_channels
        for spec in plan:
            if spec == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers.append(ConvModule(filters, int(spec)))
                filters = int(spec)
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(filters, num_classes)
        self.apply(openlth_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.adaptive_avg_pool2d(self.layers(x), 1)
        return self.fc(torch.flatten(x, 1))


@MODELS.register("vgg16_bn")
def vgg16_bn(in_channels: int, num_classes: int, image_size: tuple[int, int]) -> nn.Module:
    """VGG-16 with batch norm for CIFAR (14.7M parameters); images of at least 16x16."""
    return CifarVGG(VGG16_PLAN, in_channels, num_classes, image_size)
