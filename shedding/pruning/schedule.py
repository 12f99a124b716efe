"""Pruning schedules: the overall sparsity targeted at each prune event.

One-shot prunes to the target at once. Iterative removes ``fraction_per_round`` of the *remaining*
weights per round (densities 0.8, 0.64, 0.512, ... for 20%), the last round stopping at the target.
"""

from __future__ import annotations

import math

from shedding.config import PruneConfig

SCHEDULES = ("oneshot", "iterative")


def sparsity_targets(cfg: PruneConfig) -> list[float]:
    """Overall sparsity after each round, ending exactly at ``cfg.sparsity``."""
    if cfg.schedule == "oneshot" or cfg.method == "none":
        return [cfg.sparsity]
    if cfg.schedule == "iterative":
        f = cfg.fraction_per_round
        target_density = 1.0 - cfg.sparsity
        rounds = max(1, math.ceil(math.log(target_density) / math.log(1.0 - f) - 1e-9))
        targets = [min(1.0 - (1.0 - f) ** (r + 1), cfg.sparsity) for r in range(rounds)]
        targets[-1] = cfg.sparsity  # exactly the target, not 1 - 0.8**r's rounding of it
        return targets
    raise ValueError(f"unknown pruning schedule {cfg.schedule!r}")
