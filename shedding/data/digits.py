"""scikit-learn's bundled 8x8 handwritten digits: the embedded default, no download."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import TensorDataset

from shedding.config import DataConfig
from shedding.data.datasets import DATASETS, DataBundle


@DATASETS.register("digits")
def digits(cfg: DataConfig) -> DataBundle:
    """1,797 grey 8x8 digits scaled to [0, 1] and standardised; a fixed, seeded, stratified
    split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None, :, :]
    y = d.target.astype(np.int64)
    idx_train, idx_test = train_test_split(
        np.arange(len(y)), test_size=cfg.test_fraction, random_state=cfg.split_seed, stratify=y
    )
    mean, std = x[idx_train].mean(), x[idx_train].std()
    x = (x - mean) / std
    train = TensorDataset(torch.from_numpy(x[idx_train]), torch.from_numpy(y[idx_train]))
    test = TensorDataset(torch.from_numpy(x[idx_test]), torch.from_numpy(y[idx_test]))
    return DataBundle("digits", train, test, in_channels=1, num_classes=10, image_size=(8, 8))
