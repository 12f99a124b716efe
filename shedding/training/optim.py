"""Optimizer construction from :class:`shedding.config.TrainConfig`."""

from __future__ import annotations

from collections.abc import Iterable

import torch

OPTIMIZERS = ("sgd", "adam", "adamw")


def build_optimizer(params: Iterable[torch.nn.Parameter], cfg) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov, L2 weight decay), Adam (L2 weight decay, added to the gradient) or
    AdamW (decoupled weight decay: each step multiplies a weight by 1 - lr * weight_decay). The LR
    is set per step later.

    Pruned weights stay zero under all three: their gradient is masked, so Adam's moments stay
    zero, and AdamW's decay of a zero weight is zero.
    """
    params = list(params)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=cfg.lr,
            momentum=cfg.momentum,
            nesterov=cfg.nesterov,
            weight_decay=cfg.weight_decay,
        )
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")
