"""Hyperparameter presets (recipes). A recipe is a function returning a full :class:`RunConfig`."""

from __future__ import annotations

from collections.abc import Callable

from shedding.config import RunConfig
from shedding.registry import Registry

RECIPES: Registry[Callable[[], RunConfig]] = Registry("recipe")


@RECIPES.register("digits")
def digits() -> RunConfig:
    """The embedded demo: small CNN on digits; SGD 0.9, constant LR 0.1, wd 5e-4; 50% pruned; LR
    rewinding."""
    cfg = RunConfig()
    cfg.model.name = "small_cnn"
    cfg.data.name = "digits"
    cfg.data.batch_size = 128
    cfg.train.duration = "40ep"
    cfg.train.lr = 0.1
    cfg.train.momentum = 0.9
    cfg.train.weight_decay = 5e-4
    cfg.train.schedule = "constant"
    cfg.prune.method = "gmp"
    cfg.prune.sparsity = 0.5
    cfg.retrain.technique = "lr_rewind"
    cfg.retrain.duration = "40ep"
    cfg.record.every = 1
    cfg.record.dtype = "float16"
    return cfg


def _renda_cifar(model: str) -> RunConfig:
    cfg = RunConfig()
    cfg.model.name = model
    cfg.data.name = "cifar10"
    cfg.data.batch_size = 128
    cfg.train.duration = "182ep"
    cfg.train.lr = 0.1
    cfg.train.momentum = 0.9
    cfg.train.weight_decay = 2e-4
    cfg.train.schedule = "multistep"
    cfg.train.milestones = ["91ep", "136ep"]
    cfg.train.gamma = 0.1
    cfg.prune.method = "gmp"
    cfg.prune.sparsity = 0.2
    cfg.retrain.technique = "lr_rewind"
    cfg.retrain.duration = "182ep"
    cfg.record.every = 100
    return cfg


@RECIPES.register("cifar10_resnet20")
def cifar10_resnet20() -> RunConfig:
    """Renda et al.'s CIFAR-10 ResNet-20: batch 128, SGD 0.9, LR 0.1 x0.1 at 91/136 ep, 182 ep, wd
    2e-4."""
    return _renda_cifar("resnet20")


@RECIPES.register("cifar10_resnet56")
def cifar10_resnet56() -> RunConfig:
    """Renda et al.'s CIFAR-10 ResNet-56 (same recipe as ResNet-20)."""
    return _renda_cifar("resnet56")


@RECIPES.register("cifar10_resnet110")
def cifar10_resnet110() -> RunConfig:
    """Renda et al.'s CIFAR-10 ResNet-110 (same recipe as ResNet-20)."""
    return _renda_cifar("resnet110")


@RECIPES.register("imagenet_resnet50")
def imagenet_resnet50() -> RunConfig:
    """Renda et al.'s ImageNet ResNet-50: batch 1024, LR 0.4, 5-ep warm-up, x0.1 at 30/60/80, 90 ep,
    wd 1e-4."""
    cfg = RunConfig()
    cfg.model.name = "resnet50"
    cfg.data.name = "imagefolder"
    cfg.data.batch_size = 1024
    cfg.data.num_workers = 8
    cfg.train.duration = "90ep"
    cfg.train.lr = 0.4
    cfg.train.momentum = 0.9
    cfg.train.weight_decay = 1e-4
    cfg.train.schedule = "multistep"
    cfg.train.milestones = ["30ep", "60ep", "80ep"]
    cfg.train.warmup = "5ep"
    cfg.train.mixed_precision = True
    cfg.prune.method = "gmp"
    cfg.prune.sparsity = 0.2
    cfg.retrain.technique = "lr_rewind"
    cfg.retrain.duration = "90ep"
    cfg.record.every = 100
    cfg.record.dtype = "float16"
    return cfg
