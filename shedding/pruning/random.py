"""Random pruning: remove a uniformly random subset of the surviving weights, globally or per
layer."""

from __future__ import annotations

import torch

from shedding.config import PruneConfig
from shedding.pruning.masks import Masks, prune_lowest
from shedding.pruning.pruners import PRUNERS


def random_scores(masks: Masks, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """A uniform score in [0, 1) for live weights (drawn on the CPU from ``generator``); -1 for
    pruned ones."""
    out = {}
    for k, m in masks.items():
        u = torch.rand(m.shape, generator=generator).to(m.device)
        out[k] = torch.where(m > 0, u, torch.full_like(u, -1.0))
    return out


@PRUNERS.register("random")
def random_global(
    weights: dict[str, torch.Tensor],
    masks: Masks,
    sparsity: float,
    cfg: PruneConfig,
    generator: torch.Generator,
) -> Masks:
    """Uniformly random subset over all prunable tensors together."""
    return prune_lowest(random_scores(masks, generator), masks, sparsity, per_layer=False)


@PRUNERS.register("random_layerwise")
def random_layerwise(
    weights: dict[str, torch.Tensor],
    masks: Masks,
    sparsity: float,
    cfg: PruneConfig,
    generator: torch.Generator,
) -> Masks:
    """Uniformly random subset of each tensor, every tensor at the same sparsity."""
    return prune_lowest(random_scores(masks, generator), masks, sparsity, per_layer=True)
