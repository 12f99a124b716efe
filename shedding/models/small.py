"""Small models sized for the embedded digits data: a 4-layer CNN with batch norm and an MLP."""

from __future__ import annotations

import torch
from torch import nn

from shedding.models.factories import MODELS


class SmallCNN(nn.Module):
    """Three 3x3 conv layers with batch norm and ReLU, two max-pools, and a linear classifier."""

    def __init__(
        self, in_channels: int, num_classes: int, image_size: tuple[int, int], width: int = 32
    ):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, 2 * width, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(2 * width)
        self.pool = nn.MaxPool2d(2)
        h, w = image_size[0] // 4, image_size[1] // 4
        if h < 1 or w < 1:
            raise ValueError(f"small_cnn needs images of at least 4x4, got {image_size}")
        self.fc = nn.Linear(2 * width * h * w, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.pool(torch.relu(self.bn2(self.conv2(x))))
        x = self.pool(torch.relu(self.bn3(self.conv3(x))))
        return self.fc(torch.flatten(x, 1))


class MLP(nn.Module):
    """Two hidden ReLU layers of 128 and 64 units (LeNet-300-100 style, sized for 8x8 inputs)."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        image_size: tuple[int, int],
        hidden: tuple[int, ...] = (128, 64),
    ):
        super().__init__()
        sizes = [in_channels * image_size[0] * image_size[1], *hidden]
        self.hidden = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)
        )
        self.fc = nn.Linear(sizes[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(x, 1)
        for layer in self.hidden:
            x = torch.relu(layer(x))
        return self.fc(x)


@MODELS.register("small_cnn")
def small_cnn(in_channels: int, num_classes: int, image_size: tuple[int, int]) -> nn.Module:
    """The digits default: 3 conv layers (32, 32, 64 channels) with batch norm, and a linear
    head."""
    return SmallCNN(in_channels, num_classes, image_size)


@MODELS.register("mlp")
def mlp(in_channels: int, num_classes: int, image_size: tuple[int, int]) -> nn.Module:
    """A 2-hidden-layer MLP (128, 64)."""
    return MLP(in_channels, num_classes, image_size)
