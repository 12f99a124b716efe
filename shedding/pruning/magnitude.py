"""Magnitude pruning: global (GMP) and layerwise. Remove the smallest |w| until the sparsity is
reached."""

from __future__ import annotations

import torch

from shedding.config import PruneConfig
from shedding.pruning.masks import Masks, prune_lowest
from shedding.pruning.pruners import PRUNERS


def magnitude_scores(weights: dict[str, torch.Tensor], masks: Masks) -> dict[str, torch.Tensor]:
    """|w| for live weights; -1 for pruned ones, so they stay pruned and count first."""
    return {
        k: torch.where(
            masks[k] > 0, w.detach().abs().float(), torch.full_like(w, -1.0, dtype=torch.float32)
        )
        for k, w in weights.items()
    }


@PRUNERS.register("gmp")
def global_magnitude(
    weights: dict[str, torch.Tensor],
    masks: Masks,
    sparsity: float,
    cfg: PruneConfig,
    generator: torch.Generator,
) -> Masks:
    """Global magnitude pruning: rank |w| over all prunable tensors together."""
    return prune_lowest(magnitude_scores(weights, masks), masks, sparsity, per_layer=False)


@PRUNERS.register("layerwise")
def layerwise_magnitude(
    weights: dict[str, torch.Tensor],
    masks: Masks,
    sparsity: float,
    cfg: PruneConfig,
    generator: torch.Generator,
) -> Masks:
    """Layerwise magnitude pruning: each tensor pruned to the same sparsity by its own |w|
    ranking."""
    return prune_lowest(magnitude_scores(weights, masks), masks, sparsity, per_layer=True)
