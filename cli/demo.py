"""The demo's three runs: GMP, random and the unpruned control under the same retraining."""

from __future__ import annotations

from shedding.config import RunConfig
from shedding.recipes import RECIPES


def demo_configs(seed: int = 0) -> dict[str, RunConfig]:
    """Configurations of the demo runs, keyed by run name (all from the ``digits`` recipe)."""
    out = {}
    for name, method in (("gmp", "gmp"), ("random", "random"), ("control", "none")):
        cfg = RECIPES.get("digits")()
        cfg.seed = seed
        cfg.prune.method = method
        out[name] = cfg
    return out
