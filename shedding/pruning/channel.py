"""Channel (filter) pruning: remove whole output channels, the rows of dim 0, layer by layer.

A row's score is its L1 norm over the live weights, sum |w| * mask (a row with no live weight
scores -1, so it counts first and stays pruned). Each tensor loses its round(sparsity * rows)
lowest-scoring rows (ties broken by row order), so every layer reaches the target fraction of its
channels and, on a fresh network, the overall sparsity is the target up to that per-layer rounding.
Already-pruned weights stay pruned (a partly pruned row that is kept keeps its zeros).

For a Linear classifier the rows are its classes: leave it dense (``--model-dense-layers fc``)
unless removing whole classes is what is wanted.
"""

from __future__ import annotations

import torch

from shedding.config import PruneConfig
from shedding.pruning.masks import Masks, smallest_k_mask, target_count
from shedding.pruning.pruners import PRUNERS


def channel_scores(w: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per output channel: the L1 norm of its live weights, or -1 when none is live."""
    alive = (mask > 0).reshape(w.shape[0], -1)
    l1 = (w.detach().abs().float().reshape(w.shape[0], -1) * alive).sum(1)
    return torch.where(alive.any(1), l1, torch.full_like(l1, -1.0))


@PRUNERS.register("channel")
def channel_pruning(
    weights: dict[str, torch.Tensor],
    masks: Masks,
    sparsity: float,
    cfg: PruneConfig,
    generator: torch.Generator,
) -> Masks:
    """Remove the lowest-L1 output channels of each tensor, round(sparsity * rows) per tensor."""
    out = {}
    for k, w in weights.items():
        scores = channel_scores(w, masks[k])
        keep_rows = smallest_k_mask(scores, target_count(sparsity, scores.numel()))
        keep = keep_rows.reshape(-1, *([1] * (w.dim() - 1))).expand(w.shape)
        out[k] = (keep * (masks[k] > 0)).to(masks[k].dtype)
    return out
