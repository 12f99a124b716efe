"""Block pruning (Siswanto 2021): remove whole (bh x bw) blocks of each weight's 2-D view, globally.

Each weight is viewed as a matrix (out, in*kh*kw) and tiled with blocks of ``cfg.block_shape``;
blocks on the right and bottom edges may be smaller. A block's score is computed over its real
entries of
|w| * mask (``mean_abs`` by default; ``l2`` is the root mean square, ``max_abs`` the largest |w|).
Blocks are removed lowest score first (ties: layer order, then row-major block order) until at least
the target number of weights is pruned: the fewest whole blocks that reach the target, so the
overshoot is smaller than one block. A 1x1 block is unstructured global magnitude pruning.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from shedding.config import PruneConfig
from shedding.pruning.masks import Masks, target_count
from shedding.pruning.pruners import PRUNERS

BLOCK_SCORES = ("mean_abs", "l2", "max_abs")


def _tiles(x2d: torch.Tensor, bh: int, bw: int) -> torch.Tensor:
    """(rows, cols) -> (n_blocks, bh*bw) in row-major block order, zero-padded at the edges."""
    r, c = x2d.shape
    pr, pc = (-r) % bh, (-c) % bw
    x = F.pad(x2d, (0, pc, 0, pr))
    nr, nc = x.shape[0] // bh, x.shape[1] // bw
    return x.reshape(nr, bh, nc, bw).permute(0, 2, 1, 3).reshape(nr * nc, bh * bw)


def _untile(tiles: torch.Tensor, shape2d: tuple[int, int], bh: int, bw: int) -> torch.Tensor:
    r, c = shape2d
    nr, nc = -(-r // bh), -(-c // bw)
    x = tiles.reshape(nr, nc, bh, bw).permute(0, 2, 1, 3).reshape(nr * bh, nc * bw)
    return x[:r, :c]


def block_scores(
    w: torch.Tensor, mask: torch.Tensor, bh: int, bw: int, score: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-block (score, alive count, real size) of one weight tensor's (out, rest) view."""
    w2 = (w.detach().abs().float() * mask.float()).reshape(w.shape[0], -1)
    m2 = mask.float().reshape(w.shape[0], -1)
    vals = _tiles(w2, bh, bw)
    real = _tiles(torch.ones_like(w2), bh, bw).sum(1)
    alive = _tiles(m2, bh, bw).sum(1)
    if score == "mean_abs":
        s = vals.sum(1) / real
    elif score == "l2":
        s = torch.sqrt((vals**2).sum(1) / real)
    elif score == "max_abs":
        s = vals.max(1).values
    else:
        raise ValueError(f"unknown block score {score!r}; choose one of {', '.join(BLOCK_SCORES)}")
    s = torch.where(alive > 0, s, torch.full_like(s, -1.0))  # fully pruned blocks stay pruned
    return s, alive, real


@PRUNERS.register("block")
def block_pruning(
    weights: dict[str, torch.Tensor],
    masks: Masks,
    sparsity: float,
    cfg: PruneConfig,
    generator: torch.Generator,
) -> Masks:
    """Global block pruning with blocks of ``cfg.block_shape`` scored by ``cfg.block_score``."""
    bh, bw = cfg.block_shape
    names = list(weights)
    per = [block_scores(weights[k], masks[k], bh, bw, cfg.block_score) for k in names]
    scores = torch.cat([p[0] for p in per])
    alive = torch.cat([p[1] for p in per])
    n = sum(w.numel() for w in weights.values())
    already = n - int(alive.sum())
    need = target_count(sparsity, n) - already
    remove = torch.zeros_like(scores, dtype=torch.bool)
    if need > 0:
        order = torch.argsort(scores, stable=True)
        cum = torch.cumsum(alive[order], 0)
        count = (
            int(torch.searchsorted(cum, torch.tensor(float(need), device=cum.device)).item()) + 1
        )
        remove[order[:count]] = True
    out, start = {}, 0
    for k, (s, _, _) in zip(names, per, strict=True):
        nb = s.numel()
        keep_block = (~remove[start : start + nb]).float()
        start += nb
        w2shape = (weights[k].shape[0], weights[k].numel() // weights[k].shape[0])
        keep = _untile(keep_block[:, None].expand(nb, bh * bw), w2shape, bh, bw).reshape(
            weights[k].shape
        )
        out[k] = (keep * masks[k].float()).to(weights[k].dtype)
    return out
