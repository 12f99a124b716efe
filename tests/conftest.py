"""Shared fixtures: a few tiny recorded runs on digits (seconds each), reused across test modules."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from shedding.config import RunConfig

torch.set_num_threads(1)


def tiny_config(method: str = "gmp", sparsity: float = 0.5, technique: str = "lr_rewind", **kw) -> RunConfig:
    """A few-step digits run with every snapshot recorded (float32)."""
    cfg = RunConfig()
    cfg.train.duration = "3ep"
    cfg.train.milestones = ["2ep"]
    cfg.train.weight_decay = 5e-3
    cfg.retrain.duration = "2ep"
    cfg.retrain.technique = technique
    cfg.prune.method = method
    cfg.prune.sparsity = sparsity
    cfg.record.every = 1
    cfg.record.hist_every = 1
    cfg.record.chunk_steps = 8
    for key, value in kw.items():
        section, name = key.split("__")
        setattr(getattr(cfg, section), name, value)
    return cfg


@pytest.fixture(scope="session")
def recorded(tmp_path_factory) -> dict[str, Path]:
    """Stores of a GMP, a random and a control run sharing one cached original training run."""
    from shedding.experiment import record

    root = tmp_path_factory.mktemp("runs")
    cache = root / "cache"
    out = {}
    for name, method in (("gmp", "gmp"), ("random", "random"), ("control", "none")):
        out[name] = record(tiny_config(method), root / f"{name}.zarr", cache_dir=cache)
    return out


@pytest.fixture(scope="session")
def recorded_seeds(tmp_path_factory) -> dict[str, Path]:
    """GMP, random and control runs for seeds 0 and 1 (names like 'gmp-s1'): conditions with two seeds."""
    from shedding.experiment import record

    root = tmp_path_factory.mktemp("seeds")
    out = {}
    for seed in (0, 1):
        for name, method in (("gmp", "gmp"), ("random", "random"), ("control", "none")):
            cfg = tiny_config(method)
            cfg.seed = seed
            out[f"{name}-s{seed}"] = record(cfg, root / f"{name}-s{seed}.zarr", cache_dir=root / "cache")
    return out
