"""CIFAR-10 and CIFAR-100 through torchvision, read from ``cfg.root`` (downloaded only with
``cfg.download``).

Images are normalised per channel with the training set's mean and standard deviation; with
``cfg.augment`` the training split is also randomly cropped (32, padding 4) and flipped
horizontally.
"""

from __future__ import annotations

import os

import torchvision
from torchvision import transforms

from shedding.config import DataConfig
from shedding.data.datasets import DATASETS, DataBundle

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)


def cifar_transforms(
    mean: tuple[float, ...], std: tuple[float, ...], augment: bool
) -> tuple[transforms.Compose, transforms.Compose]:
    """Train and test transforms: ToTensor + Normalize, with crop + flip before them when
    ``augment``."""
    base = [transforms.ToTensor(), transforms.Normalize(mean, std)]
    extra = (
        [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip()] if augment else []
    )
    return transforms.Compose(extra + base), transforms.Compose(base)


def _load(
    name: str,
    cls: type[torchvision.datasets.CIFAR10],
    num_classes: int,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    cfg: DataConfig,
) -> DataBundle:
    if not cfg.root:
        raise FileNotFoundError(
            f"{name}: no data folder given; pass --data-root DIR (and --data-download to fetch it "
            "there)"
        )
    train_tf, test_tf = cifar_transforms(mean, std, cfg.augment)
    try:
        train = cls(root=cfg.root, train=True, transform=train_tf, download=cfg.download)
        test = cls(root=cfg.root, train=False, transform=test_tf, download=cfg.download)
    except RuntimeError as e:
        if "not found or corrupted" not in str(e):
            raise
        where = os.path.join(os.path.abspath(cfg.root), cls.base_folder)
        raise FileNotFoundError(
            f"{name}: dataset files not found or corrupted in {where}; pass --data-download to "
            "fetch them"
        ) from None
    return DataBundle(
        name, train, test, in_channels=3, num_classes=num_classes, image_size=(32, 32)
    )


@DATASETS.register("cifar10")
def cifar10(cfg: DataConfig) -> DataBundle:
    """CIFAR-10: 50,000 training and 10,000 test 32x32 colour images in 10 classes."""
    return _load("cifar10", torchvision.datasets.CIFAR10, 10, CIFAR10_MEAN, CIFAR10_STD, cfg)


@DATASETS.register("cifar100")
def cifar100(cfg: DataConfig) -> DataBundle:
    """CIFAR-100: 50,000 training and 10,000 test 32x32 colour images in 100 (fine) classes."""
    return _load("cifar100", torchvision.datasets.CIFAR100, 100, CIFAR100_MEAN, CIFAR100_STD, cfg)
