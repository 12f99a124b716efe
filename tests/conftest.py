"""Shared fixtures: a few tiny recorded runs on digits (seconds each), reused across test
modules."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from shedding.config import RunConfig

torch.set_num_threads(1)


def tiny_config(
    method: str = "gmp", sparsity: float = 0.5, technique: str = "lr_rewind", **kw
) -> RunConfig:
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
    """GMP, random and control runs for seeds 0 and 1 (names like 'gmp-s1'): conditions with two
    seeds."""
    from shedding.experiment import record

    root = tmp_path_factory.mktemp("seeds")
    out = {}
    for seed in (0, 1):
        for name, method in (("gmp", "gmp"), ("random", "random"), ("control", "none")):
            cfg = tiny_config(method)
            cfg.seed = seed
            out[f"{name}-s{seed}"] = record(
                cfg, root / f"{name}-s{seed}.zarr", cache_dir=root / "cache"
            )
    return out


# tiny study grids through the same code path as --quick (the CLI), in-process, with very short
# trainings
STUDY_OVERRIDES = {
    "rewinding": {"train.duration": "2ep"},
    "blocks": {"train.duration": "2ep"},
    "cascade": {"train.duration": "2ep", "retrain.duration": "2ep"},
    "map": {"train.duration": "2ep"},
}


def study_args(name: str) -> list[str]:
    """STUDY_OVERRIDES of a study as command-line options."""
    return [
        a
        for k, v in STUDY_OVERRIDES[name].items()
        for a in ("--" + k.replace(".", "-").replace("_", "-"), v)
    ]


def run_study_cli(name: str, out: Path, *extra: str):
    """``shedding study NAME --size tiny`` in this process (scheduler sync); returns the CliRunner
    result."""
    from typer.testing import CliRunner

    from shedding.cli.main import app

    args = [
        "study",
        name,
        "--size",
        "tiny",
        "--scheduler",
        "sync",
        "--out",
        str(out),
        *study_args(name),
        *extra,
    ]
    return CliRunner().invoke(app, args)


@pytest.fixture(scope="session")
def studies(tmp_path_factory) -> dict[str, Path]:
    """The three studies run on their tiny grids: name -> output folder (report.html, runs/,
    pretrain/)."""
    root = tmp_path_factory.mktemp("studies")
    out = {}
    for name in STUDY_OVERRIDES:
        res = run_study_cli(name, root / name)
        assert res.exit_code == 0, res.output
        out[name] = root / name
    return out


def assert_counts_match_recount(path: Path) -> None:
    """The store's device-counted eligible set and per-step shed counts equal numpy on its stored
    float32 magnitudes, mask and line (docs/science.md#shedding); the recount is
    benchmarks.gpu_check's, which the GPU check's verify step uses too."""
    import numpy as np
    import zarr

    from benchmarks.gpu_check import numpy_recount

    g = zarr.open_group(str(path), mode="r")
    for var, expect in numpy_recount(g).items():
        got = g[var][0] if var.startswith("event_") else g[var][: len(expect)]
        np.testing.assert_array_equal(expect, got, err_msg=var)
