"""Magnitude pruning: global (GMP) and layerwise. Remove the smallest |w| until the sparsity is reached."""

from __future__ import annotations

import torch

from shedding.config import PruneConfig
from shedding.pruning import PRUNERS
from shedding.pruning.masks import Masks, flat, smallest_k_mask, target_count, unflat


def _scores(weights: dict[str, torch.Tensor], masks: Masks) -> dict[str, torch.Tensor]:
    # Already-pruned weights score -1, below every live |w|, so they stay pruned and count first.
    return {k: torch.where(masks[k] > 0, w.detach().abs().float(), torch.full_like(w, -1.0, dtype=torch.float32))
            for k, w in weights.items()}


@PRUNERS.register("gmp")
def global_magnitude(weights: dict[str, torch.Tensor], masks: Masks, sparsity: float,
                     cfg: PruneConfig, generator: torch.Generator) -> Masks:
    """Global magnitude pruning: rank |w| over all prunable tensors together."""
    scores = flat(_scores(weights, masks))
    keep = smallest_k_mask(scores, target_count(sparsity, scores.numel()))
    return {k: (m * (masks[k] > 0)).to(weights[k].dtype) for k, m in unflat(keep, weights).items()}


@PRUNERS.register("layerwise")
def layerwise_magnitude(weights: dict[str, torch.Tensor], masks: Masks, sparsity: float,
                        cfg: PruneConfig, generator: torch.Generator) -> Masks:
    """Layerwise magnitude pruning: each tensor pruned to the same sparsity by its own |w| ranking."""
    out = {}
    for k, s in _scores(weights, masks).items():
        keep = smallest_k_mask(s.reshape(-1), target_count(sparsity, s.numel()))
        out[k] = (keep.reshape(s.shape) * (masks[k] > 0)).to(weights[k].dtype)
    return out
