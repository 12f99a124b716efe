"""Any image classification data in torchvision's ImageFolder layout, e.g. ImageNet.

``cfg.root`` holds ``train/`` and ``val/`` (or ``test/``), each with one sub-folder of images per
class; both splits must have the same class folders. ImageNet-style transforms and normalisation.
"""

from __future__ import annotations

from pathlib import Path

from torchvision import datasets, transforms

from shedding.config import DataConfig
from shedding.data.datasets import DATASETS, DataBundle

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def imagenet_transforms(augment: bool) -> tuple[transforms.Compose, transforms.Compose]:
    """Train and test transforms: RandomResizedCrop(224) + flip when ``augment``, else (and for
    test)
    Resize(256) + CenterCrop(224); then ToTensor + Normalize with the ImageNet mean and std."""
    norm = [transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    center = [transforms.Resize(256), transforms.CenterCrop(224)]
    train = (
        [transforms.RandomResizedCrop(224), transforms.RandomHorizontalFlip()]
        if augment
        else center
    )
    return transforms.Compose(train + norm), transforms.Compose(center + norm)


@DATASETS.register("imagefolder")
def imagefolder(cfg: DataConfig) -> DataBundle:
    """``cfg.root/train`` and ``cfg.root/val`` (or ``test``) class folders; 224x224 RGB crops."""
    if not cfg.root:
        raise FileNotFoundError(
            "imagefolder: no data folder given; pass --data-root DIR holding train/ and val/"
        )
    root = Path(cfg.root)
    train_dir = root / "train"
    test_dir = next((root / s for s in ("val", "test") if (root / s).is_dir()), None)
    if not train_dir.is_dir() or test_dir is None:
        wanted = (("train/", train_dir.is_dir()), ("val/ (or test/)", test_dir is not None))
        missing = " and ".join(s for s, ok in wanted if not ok)
        raise FileNotFoundError(f"imagefolder: no {missing} folder in {root.resolve()}")
    train_tf, test_tf = imagenet_transforms(cfg.augment)
    train = datasets.ImageFolder(str(train_dir), transform=train_tf)
    test = datasets.ImageFolder(str(test_dir), transform=test_tf)
    if test.classes != train.classes:
        raise ValueError(
            f"imagefolder: class folders differ between {train_dir} ({len(train.classes)}) "
            f"and {test_dir} ({len(test.classes)})"
        )
    return DataBundle(
        "imagefolder",
        train,
        test,
        in_channels=3,
        num_classes=len(train.classes),
        image_size=(224, 224),
    )
