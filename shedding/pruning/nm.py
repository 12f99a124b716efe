"""N:M semi-structured pruning (the 2:4 pattern of Ampere sparse tensor cores): in every group of M
consecutive weights along a row, keep the N largest |w|.

Each weight is viewed as the matrix (out, in*kh*kw), the same view block pruning and the
semi-structured analysis use (for a Linear weight, its rows; for a Conv weight, each output
channel's weights flattened in PyTorch's (in, kh, kw) order, i.e. the reduction dimension of the
convolution lowered to a matrix product). Within a group the M - N lowest scores are removed,
ties broken by position (the earlier weight goes first). Already-pruned weights score below every
live one, so they are removed first and stay pruned; a group that had fewer than N live weights
keeps fewer than N.

Every prunable tensor's row length must be divisible by M (otherwise the method refuses with one
line naming the layer: leave it dense with ``--model-dense-layers``), so a fresh network ends at
exactly 1 - N/M sparsity in every layer and overall. The method's sparsity is that pattern's, not
the event's target (validation requires ``--prune-sparsity`` to equal 1 - N/M, so the shed line is
the GMP cut at the same sparsity).
"""

from __future__ import annotations

import torch

from shedding.config import ConfigError, PruneConfig
from shedding.pruning.masks import Masks
from shedding.pruning.pruners import PRUNERS


def parse_nm(text: str) -> tuple[int, int]:
    """``"N:M"`` as (N, M) with 0 < N < M; ValueError (one line) otherwise."""
    try:
        n_text, m_text = str(text).split(":")
        n, m = int(n_text), int(m_text)
    except ValueError:
        raise ValueError(f"expected N:M with integers 0 < N < M, e.g. 2:4, got {text!r}") from None
    if not 0 < n < m:
        raise ValueError(f"expected N:M with integers 0 < N < M, e.g. 2:4, got {text!r}")
    return n, m


def nm_layer_problem(name: str, shape: tuple[int, ...], m: int) -> str | None:
    """Why N:M groups of ``m`` do not tile a tensor's (out, in*kh*kw) rows, or None when they do."""
    if len(shape) < 2:
        return f"{name} has shape {tuple(shape)}, not a Linear or Conv weight"
    row = 1
    for d in shape[1:]:
        row *= int(d)
    if row % m:
        return (
            f"{name} has rows of {row} weights (in*kh*kw of shape {'x'.join(map(str, shape))}), "
            f"not divisible by M={m}; leave it dense with --model-dense-layers {name}"
        )
    return None


def nm_keep(w: torch.Tensor, mask: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """The 0/1 float keep-mask of one tensor: the N highest |w| * alive of each group of M."""
    scores = torch.where(
        mask > 0, w.detach().abs().float(), torch.full_like(w, -1.0, dtype=torch.float32)
    )
    groups = scores.reshape(-1, m)
    order = torch.argsort(groups, dim=1, stable=True)  # ascending; ties: earlier position first
    keep = torch.ones_like(groups)
    keep.scatter_(1, order[:, : m - n], 0.0)
    return keep.reshape(w.shape) * (mask > 0).float()


@PRUNERS.register("nm")
def nm_pruning(
    weights: dict[str, torch.Tensor],
    masks: Masks,
    sparsity: float,
    cfg: PruneConfig,
    generator: torch.Generator,
) -> Masks:
    """N:M pruning with N:M from ``cfg.nm``; ``sparsity`` is not used (it is 1 - N/M)."""
    try:
        n, m = parse_nm(cfg.nm)
    except ValueError as e:
        raise ConfigError(f"--prune-nm: {e}") from None
    for k, w in weights.items():
        problem = nm_layer_problem(k, tuple(w.shape), m)
        if problem is not None:
            raise ConfigError(f"--prune-nm: {cfg.nm}: {problem}")
    return {k: nm_keep(w, masks[k], n, m).to(masks[k].dtype) for k, w in weights.items()}
