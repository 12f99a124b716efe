"""The pruning-method registry and the signature of a method (see :mod:`shedding.pruning`)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from shedding.config import PruneConfig
from shedding.registry import Registry

Masks = dict[str, torch.Tensor]
PruneFn = Callable[[dict[str, torch.Tensor], Masks, float, PruneConfig, torch.Generator], Masks]
PRUNERS: Registry[PruneFn] = Registry("pruning method")
