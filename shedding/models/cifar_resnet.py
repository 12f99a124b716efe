"""CIFAR ResNets (He et al. 2016, section 4.2) as in OpenLTH's ``cifar_resnet_N`` and Renda et al.
2020.

Three stages of 16/32/64 channels with ``(depth - 2) / 6`` BasicBlocks each, a 3x3 conv stem, batch
norm, a 1x1-conv + BN shortcut where the shape changes, global average pooling and a linear head
``fc``. Conv and Linear weights are Kaiming-normal and BN scales uniform in [0, 1) with zero shifts,
OpenLTH's defaults for these models (``model_init='kaiming_normal'``, ``batchnorm_init='uniform'``).
ResNet-20 has 272,474 parameters, ResNet-56 855,770 and ResNet-110 1,730,714 (10 classes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from shedding.models.factories import MODELS


def openlth_init(module: nn.Module) -> None:
    """OpenLTH's ``kaiming_normal`` + ``uniform`` batch-norm initialisers, for use with
    ``Module.apply``."""
    if isinstance(module, (nn.Linear, nn.Conv2d)):
        nn.init.kaiming_normal_(module.weight)
    elif isinstance(module, nn.BatchNorm2d):
        with torch.no_grad():
            module.weight.copy_(torch.rand(module.weight.shape))
            module.bias.zero_()


class BasicBlock(nn.Module):
    """Two 3x3 conv + BN layers around a residual connection (1x1 conv + BN when the shape
    changes)."""

    def __init__(self, f_in: int, f_out: int, downsample: bool = False):
        super().__init__()
        stride = 2 if downsample else 1
        self.conv1 = nn.Conv2d(f_in, f_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(f_out)
        self.conv2 = nn.Conv2d(f_out, f_out, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(f_out)
        if downsample or f_in != f_out:
            self.shortcut: nn.Module = nn.Sequential(
                nn.Conv2d(f_in, f_out, 1, stride=stride, bias=False), nn.BatchNorm2d(f_out)
            )
        else:
            self.shortcut = nn.Sequential()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """A CIFAR ResNet of ``depth = 6 * blocks_per_stage + 2`` layers, stage widths ``width * (1, 2,
    4)``."""

    def __init__(self, depth: int, in_channels: int, num_classes: int, width: int = 16):
        super().__init__()
        if depth < 8 or (depth - 2) % 6 != 0:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2 with n >= 1, got {depth}")
        n = (depth - 2) // 6
        self.conv = nn.Conv2d(in_channels, width, 3, stride=1, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        blocks: list[nn.Module] = []
        current = width
        for stage, filters in enumerate((width, 2 * width, 4 * width)):
            for index in range(n):
                blocks.append(BasicBlock(current, filters, downsample=stage > 0 and index == 0))
                current = filters
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(current, num_classes)
        self.apply(openlth_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn(self.conv(x)))
        out = self.blocks(out)
        out = F.adaptive_avg_pool2d(out, 1)
        return self.fc(torch.flatten(out, 1))


@MODELS.register("resnet20")
def resnet20(in_channels: int, num_classes: int, image_size: tuple[int, int]) -> nn.Module:
    """ResNet-20 for CIFAR (3 blocks per stage, 0.27M parameters); any image size (global
    pooling)."""
    return CifarResNet(20, in_channels, num_classes)


@MODELS.register("resnet56")
def resnet56(in_channels: int, num_classes: int, image_size: tuple[int, int]) -> nn.Module:
    """ResNet-56 for CIFAR (9 blocks per stage, 0.86M parameters)."""
    return CifarResNet(56, in_channels, num_classes)


@MODELS.register("resnet110")
def resnet110(in_channels: int, num_classes: int, image_size: tuple[int, int]) -> nn.Module:
    """ResNet-110 for CIFAR (18 blocks per stage, 1.7M parameters)."""
    return CifarResNet(110, in_channels, num_classes)
