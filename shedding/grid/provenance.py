"""TEMPORARY stand-in: run directories named by the configuration hash."""

from __future__ import annotations

from pathlib import Path

from shedding.config import RunConfig


def run_name(cfg: RunConfig) -> str:
    """A readable name ending in the configuration hash."""
    return (f"{cfg.model.name}-{cfg.data.name}-{cfg.prune.method}{cfg.prune.sparsity:g}-"
            f"{cfg.retrain.technique}-s{cfg.seed}-{cfg.hash()}")


def run_path(cfg: RunConfig, root: str | Path) -> Path:
    """``root/<run_name(cfg)>.zarr``."""
    return Path(root) / f"{run_name(cfg)}.zarr"
