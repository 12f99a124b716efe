"""Random pruning: remove a uniformly random subset of the surviving weights, globally or per layer."""

from __future__ import annotations

import torch

from shedding.config import PruneConfig
from shedding.pruning import PRUNERS
from shedding.pruning.masks import Masks, flat, smallest_k_mask, target_count, unflat


def _random_scores(masks: dict[str, torch.Tensor], generator: torch.Generator) -> dict[str, torch.Tensor]:
    # Live weights get a uniform score in [0, 1); pruned ones -1 so they stay pruned.
    out = {}
    for k, m in masks.items():
        u = torch.rand(m.shape, generator=generator).to(m.device)
        out[k] = torch.where(m > 0, u, torch.full_like(u, -1.0))
    return out


@PRUNERS.register("random")
def random_global(weights: dict[str, torch.Tensor], masks: Masks, sparsity: float,
                  cfg: PruneConfig, generator: torch.Generator) -> Masks:
    """Uniformly random subset over all prunable tensors together."""
    scores = flat(_random_scores(masks, generator))
    keep = smallest_k_mask(scores, target_count(sparsity, scores.numel()))
    return {k: (m * (masks[k] > 0)).to(weights[k].dtype) for k, m in unflat(keep, weights).items()}


@PRUNERS.register("random_layerwise")
def random_layerwise(weights: dict[str, torch.Tensor], masks: Masks, sparsity: float,
                     cfg: PruneConfig, generator: torch.Generator) -> Masks:
    """Uniformly random subset of each tensor, every tensor at the same sparsity."""
    out = {}
    for k, s in _random_scores(masks, generator).items():
        keep = smallest_k_mask(s.reshape(-1), target_count(sparsity, s.numel()))
        out[k] = (keep.reshape(s.shape) * (masks[k] > 0)).to(weights[k].dtype)
    return out
