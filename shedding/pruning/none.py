"""The control: prune nothing. Its run still records against the GMP line of the configured
sparsity."""

from __future__ import annotations

import torch

from shedding.config import PruneConfig
from shedding.pruning.masks import Masks
from shedding.pruning.pruners import PRUNERS


@PRUNERS.register("none")
def no_pruning(
    weights: dict[str, torch.Tensor],
    masks: Masks,
    sparsity: float,
    cfg: PruneConfig,
    generator: torch.Generator,
) -> Masks:
    """Return the masks unchanged (the unpruned control run)."""
    return {k: m.clone() for k, m in masks.items()}
