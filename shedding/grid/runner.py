"""TEMPORARY stand-in: runs the grid on a dask LocalCluster (one thread per worker), an existing scheduler, or in
this process (``scheduler="sync"``).

Complete stores are skipped, unfinished ones resumed (or recorded again when they have nothing to resume from).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from shedding.config import RunConfig
from shedding.grid.provenance import run_path


@dataclass
class RunOutcome:
    """What happened to one configuration of the grid."""

    config: RunConfig
    path: Path
    status: str  # complete or failed
    action: str  # skipped, recorded or resumed
    error: str | None = None
    attempts: int = 0
    seconds: float = 0.0


def _status(path: Path) -> str | None:
    if not (path / "zarr.json").exists():
        return None
    import xarray as xr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return str(xr.open_zarr(path).attrs.get("status"))


def _one(cfg: RunConfig, root: Path, cache_dir: Path | None, retries: int) -> RunOutcome:
    from shedding.experiment import record, resume

    path = run_path(cfg, root)
    if _status(path) == "complete":
        return RunOutcome(cfg, path, "complete", "skipped")
    started = time.time()
    action, error, attempts = "recorded", None, 0
    for _ in range(1 + max(0, retries)):
        attempts += 1
        try:
            status = _status(path)
            if status is not None and (path / "_resume" / "checkpoint.pt").exists():
                action = "resumed"
                resume(path)
            else:
                action = "recorded"
                record(cfg, path, cache_dir=cache_dir, overwrite=True)
            return RunOutcome(cfg, path, "complete", action, None, attempts, time.time() - started)
        except Exception as e:  # a failed run is reported, the grid goes on
            error = f"{type(e).__name__}: {e}".splitlines()[0]
    return RunOutcome(cfg, path, "failed", action, error, attempts, time.time() - started)


def run_grid(configs: list[RunConfig], root: str | Path, *, cache_dir: str | Path | None = None,
             scheduler: str | None = None, workers: int | None = None, retries: int = 1,
             progress: Callable[[RunOutcome], None] | None = None) -> list[RunOutcome]:
    """Run every configuration into ``root/<run_name(cfg)>.zarr``; outcomes in the order of ``configs``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    cache = Path(cache_dir) if cache_dir is not None else None
    if scheduler == "sync":
        outcomes = []
        for cfg in configs:
            outcome = _one(cfg, root, cache, retries)
            if progress is not None:
                progress(outcome)
            outcomes.append(outcome)
        return outcomes
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=workers or 2, threads_per_worker=1, processes=True,
                               dashboard_address=None)
    client = Client(cluster if cluster is not None else scheduler)
    try:
        futures = [client.submit(_one, cfg, root, cache, retries, pure=False) for cfg in configs]
        index = {f.key: i for i, f in enumerate(futures)}
        results: list[RunOutcome | None] = [None] * len(configs)
        for fut in as_completed(futures):
            outcome = fut.result()
            results[index[fut.key]] = outcome
            if progress is not None:
                progress(outcome)
        return [r for r in results if r is not None]
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
