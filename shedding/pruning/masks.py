"""Mask helpers: flatten, count, apply, and the global-magnitude cut value tau used as the shed
line."""

from __future__ import annotations

import torch

Masks = dict[str, torch.Tensor]


def ones_like(weights: dict[str, torch.Tensor]) -> Masks:
    """All-ones masks (nothing pruned) with the weights' shapes, dtype and device."""
    return {k: torch.ones_like(w) for k, w in weights.items()}


def flat(tensors: dict[str, torch.Tensor]) -> torch.Tensor:
    """Concatenate tensors into one flat vector, in dict order (the store's ``weight`` order)."""
    return torch.cat([t.detach().reshape(-1) for t in tensors.values()])


def unflat(vector: torch.Tensor, like: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Split a flat vector back into tensors shaped like ``like``."""
    out, start = {}, 0
    for k, t in like.items():
        n = t.numel()
        out[k] = vector[start : start + n].reshape(t.shape).to(t.dtype)
        start += n
    return out


def target_count(sparsity: float, n: int) -> int:
    """Number of weights to prune out of ``n`` for ``sparsity`` (rounded to nearest)."""
    return int(round(sparsity * n))


def smallest_k_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    """A 0/1 float vector keeping all but the ``k`` lowest scores (ties broken by position)."""
    keep = torch.ones_like(scores, dtype=torch.float32)
    if k > 0:
        order = torch.argsort(scores, stable=True)
        keep[order[:k]] = 0.0
    return keep


def prune_lowest(
    scores: dict[str, torch.Tensor], masks: Masks, sparsity: float, per_layer: bool
) -> Masks:
    """Masks removing the lowest scores until ``sparsity``, over all tensors together or per tensor.

    Already-pruned weights must score below every live one (the callers give them -1), so they are
    removed first and count towards the target; they are never revived, even when the target is
    below the current sparsity. Ties are broken by position. Returned masks have the dtype of
    ``masks``.
    """
    if per_layer:
        keep = {
            k: smallest_k_mask(s.reshape(-1), target_count(sparsity, s.numel())).reshape(s.shape)
            for k, s in scores.items()
        }
    else:
        flat_scores = flat(scores)
        keep = unflat(
            smallest_k_mask(flat_scores, target_count(sparsity, flat_scores.numel())), scores
        )
    return {k: (keep[k] * (masks[k] > 0)).to(masks[k].dtype) for k in scores}


@torch.no_grad()
def apply_masks(params: dict[str, torch.nn.Parameter], masks: Masks) -> None:
    """Zero the pruned weights in place."""
    for k, p in params.items():
        p.mul_(masks[k].to(p.dtype))


def sparsity_of(masks: Masks) -> float:
    """Overall fraction of zeros in the masks."""
    total = sum(m.numel() for m in masks.values())
    zeros = sum(int((m == 0).sum()) for m in masks.values())
    return zeros / total


@torch.no_grad()
def gmp_threshold(weights: dict[str, torch.Tensor], masks: Masks, sparsity: float) -> float:
    """The global-magnitude cut value tau at ``sparsity``: the shed line's reference
    (docs/science.md#shedding).

    Scores are |w| * mask over all prunable tensors (already-pruned weights score 0, as in Renda's
    code).
    With k = round(sparsity * n) weights removed, tau is the midpoint between the largest removed
    score and the smallest kept score, so every GMP survivor is above tau and every removed weight
    below it.
    """
    scores = flat({k: w.abs() * masks[k] for k, w in weights.items()}).double()
    n = scores.numel()
    k = target_count(sparsity, n)
    if k <= 0:
        return float(scores.min()) / 2.0
    if k >= n:
        return float(scores.max())
    s = torch.sort(scores).values
    return float((s[k - 1] + s[k]) / 2.0)
