"""Architecture variants sized for the embedded 8x8 digits, for ``shedding study map``.

Beside the small CNN and the MLP of :mod:`shedding.models.small`: the same CNN narrower (8, 8, 16
channels) and wider (64, 64, 128), the same CNN without batch norm (its convolutions get biases),
a residual network (three stages of one basic block, 16/32/64 channels, 1x1 projection shortcuts)
and a MobileNet-like network of depthwise-separable blocks (MobileNetV1-style: a 3x3 depthwise
convolution, then a 1x1 pointwise one, each with batch norm and ReLU). Every Conv and Linear weight
is prunable, the depthwise ones included.
"""

from __future__ import annotations

import torch
from torch import nn

from shedding.models.factories import MODELS
from shedding.models.small import SmallCNN


class PlainCNN(SmallCNN):
    """:class:`SmallCNN` without batch norm: each convolution has a bias instead."""

    def __init__(
        self, in_channels: int, num_classes: int, image_size: tuple[int, int], width: int = 32
    ):
        super().__init__(in_channels, num_classes, image_size, width)
        self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.conv3 = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.bn1, self.bn2, self.bn3 = nn.Identity(), nn.Identity(), nn.Identity()


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """Convolution (no bias, 'same' padding) and batch norm."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
    )


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and an identity (or 1x1 projection) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.a = _conv_bn(c_in, c_out, 3, stride)
        self.b = _conv_bn(c_out, c_out, 3)
        self.shortcut = (
            _conv_bn(c_in, c_out, 1, stride) if stride != 1 or c_in != c_out else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.b(torch.relu(self.a(x))) + self.shortcut(x))


class DigitsResNet(nn.Module):
    """A 3x3 stem, three basic blocks (16, 32, 64 channels; stride 1, 2, 2), global average pooling
    and a linear head: 7 convolutions, 8x8 inputs end at 2x2."""

    def __init__(self, in_channels: int, num_classes: int, widths: tuple[int, ...] = (16, 32, 64)):
        super().__init__()
        self.stem = _conv_bn(in_channels, widths[0], 3)
        blocks, c = [], widths[0]
        for i, w in enumerate(widths):
            blocks.append(BasicBlock(c, w, 1 if i == 0 else 2))
            c = w
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(torch.relu(self.stem(x)))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class SeparableBlock(nn.Module):
    """Depthwise 3x3 convolution then pointwise 1x1 convolution, each with batch norm and ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.depthwise = _conv_bn(c_in, c_in, 3, stride, groups=c_in)
        self.pointwise = _conv_bn(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.pointwise(torch.relu(self.depthwise(x))))


class DigitsMobileNet(nn.Module):
    """A 3x3 stem (16 channels), four depthwise-separable blocks (32, 64, 64, 128 channels; stride
    1, 2, 1, 2), global average pooling and a linear head."""

    PLAN = ((32, 1), (64, 2), (64, 1), (128, 2))

    def __init__(self, in_channels: int, num_classes: int, stem: int = 16) -> None:
        super().__init__()
        self.stem = _conv_bn(in_channels, stem, 3)
        blocks, c = [], stem
        for w, stride in self.PLAN:
            blocks.append(SeparableBlock(c, w, stride))
            c = w
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(torch.relu(self.stem(x)))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


@MODELS.register("digits_cnn_narrow")
def digits_cnn_narrow(in_channels: int, num_classes: int, image_size: tuple[int, int]) -> nn.Module:
    """The small CNN at a quarter of its width: 8, 8, 16 channels, batch norm."""
    return SmallCNN(in_channels, num_classes, image_size, width=8)


@MODELS.register("digits_cnn_wide")
def digits_cnn_wide(in_channels: int, num_classes: int, image_size: tuple[int, int]) -> nn.Module:
    """The small CNN at twice its width: 64, 64, 128 channels, batch norm."""
    return SmallCNN(in_channels, num_classes, image_size, width=64)


@MODELS.register("digits_cnn_nobn")
def digits_cnn_nobn(in_channels: int, num_classes: int, image_size: tuple[int, int]) -> nn.Module:
    """The small CNN (32, 32, 64 channels) without batch norm, its convolutions with biases."""
    return PlainCNN(in_channels, num_classes, image_size)


@MODELS.register("digits_resnet")
def digits_resnet(in_channels: int, num_classes: int, image_size: tuple[int, int]) -> nn.Module:
    """A residual network for 8x8 inputs: stem and three basic blocks (16, 32, 64 channels)."""
    return DigitsResNet(in_channels, num_classes)


@MODELS.register("digits_mobilenet")
def digits_mobilenet(in_channels: int, num_classes: int, image_size: tuple[int, int]) -> nn.Module:
    """A MobileNet-like network of depthwise-separable blocks for 8x8 inputs."""
    return DigitsMobileNet(in_channels, num_classes)
