"""Random images with learnable labels, for benchmarks and tests: no files, fully determined by the
seed.

Images are standard normal noise of shape ``cfg.image_shape``. The label of an image is the argmax
of a fixed random linear projection of the image average-pooled to a coarse (at most 4x4) grid, so
a linear classifier (and any CNN) can learn it, while no two seeds give the same task.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from shedding.config import DataConfig
from shedding.data.datasets import DATASETS, DataBundle


@DATASETS.register("synthetic")
def synthetic(cfg: DataConfig) -> DataBundle:
    """``cfg.train_size`` + ``cfg.test_size`` random ``cfg.image_shape`` images in
    ``cfg.num_classes`` classes, generated from ``cfg.split_seed``."""
    if len(cfg.image_shape) != 3 or min(cfg.image_shape) < 1:
        raise ValueError(
            f"synthetic: image_shape must be three positive sizes C,H,W, got {cfg.image_shape}"
        )
    if cfg.num_classes < 2 or cfg.train_size < 1 or cfg.test_size < 1:
        raise ValueError("synthetic: need num_classes >= 2 and train_size, test_size >= 1")
    c, h, w = (int(s) for s in cfg.image_shape)
    gen = torch.Generator().manual_seed(cfg.split_seed)
    n = cfg.train_size + cfg.test_size
    x = torch.randn(n, c, h, w, generator=gen)
    coarse = F.adaptive_avg_pool2d(x, (min(h, 4), min(w, 4))).flatten(1)
    projection = torch.randn(coarse.shape[1], cfg.num_classes, generator=gen)
    y = (coarse @ projection).argmax(dim=1)
    train = TensorDataset(x[: cfg.train_size], y[: cfg.train_size])
    test = TensorDataset(x[cfg.train_size :], y[cfg.train_size :])
    return DataBundle(
        "synthetic", train, test, in_channels=c, num_classes=cfg.num_classes, image_size=(h, w)
    )
