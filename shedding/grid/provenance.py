"""Run provenance: a run's store is named by a hash of its configuration (as OpenLTH names runs).

Rerunning a study therefore finds each run's store by its configuration alone: :func:`ensure_run`
skips a complete store, resumes an interrupted one from its checkpoint and records a missing one.
Importing this module imports no torch; :func:`ensure_run` imports the experiment lazily.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shedding.config import RunConfig, from_plain
from shedding.storage import as_path

if TYPE_CHECKING:
    from shedding.experiment import ProgressFactory

COMPLETE, FAILED = "complete", "failed"
SKIPPED, RECORDED, RESUMED = "skipped", "recorded", "resumed"


def run_name(cfg: RunConfig) -> str:
    """A readable, filesystem-safe name ending in the configuration's hash, stable across processes.

    ``{method}-{schedule}-{technique}-s{seed}-{hash}``; every option enters the hash, so two
    configurations that differ in any option get different names.
    """
    parts = [
        cfg.prune.method,
        cfg.prune.schedule,
        cfg.retrain.technique,
        f"s{cfg.seed}",
        cfg.hash(),
    ]
    return "-".join(re.sub(r"[^A-Za-z0-9_.+]", "_", str(p)) for p in parts)


def run_path(root: str | Path, cfg: RunConfig) -> Path:
    """The run's store: ``root / (run_name(cfg) + ".zarr")`` (``root`` a folder or an fsspec
    URL)."""
    return as_path(root) / f"{run_name(cfg)}.zarr"


@dataclass
class RunOutcome:
    """What became of one run of a grid."""

    config: RunConfig
    path: Path
    status: str  # "complete" or "failed"
    action: str  # "skipped" (already complete), "recorded" or "resumed" (the last attempt's)
    error: str | None  # one line, for failed runs
    attempts: int  # how many times the grid ran it (1 + retries used)
    seconds: float  # wall time over all attempts


def _store_attrs(path: Path) -> dict | None:
    """Root attributes of the Zarr store at ``path``; None when there is no readable store
    metadata."""
    try:
        return json.loads((path / "zarr.json").read_text()).get("attributes", {})
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def plan_run(cfg: RunConfig, path: Path) -> str:
    """What :func:`ensure_run` would do at ``path``: ``skip``, ``resume``, ``record`` or
    ``overwrite``.

    Raises ``StoreError`` (one line) when the store there holds another configuration or is being
    written by a live process.
    """
    from shedding.recording.store import StoreError, held_error, read_lock, run_status

    path = as_path(path)
    if not path.exists():
        return "record"
    attrs = _store_attrs(path)
    if attrs is None or "config" not in attrs:
        return (
            "overwrite"  # died while the store was being created (record refuses a foreign folder)
        )
    if from_plain(attrs["config"]).hash() != cfg.hash():
        raise StoreError(
            f"{path} holds a run of another configuration (hash "
            f"{from_plain(attrs['config']).hash()}, expected {cfg.hash()}); move it away"
        )
    status = run_status(path, attrs)
    if status == COMPLETE:
        return "skip"
    if status == "running":
        raise held_error(path, read_lock(path))
    from shedding.experiment import RESUME_DIR

    return "resume" if (path / RESUME_DIR / "checkpoint.pt").exists() else "overwrite"


ACTIONS = {"skip": SKIPPED, "resume": RESUMED, "record": RECORDED, "overwrite": RECORDED}


def execute_plan(
    cfg: RunConfig,
    path: Path,
    plan: str,
    cache_dir: str | Path | None = None,
    progress: ProgressFactory | None = None,
) -> None:
    """Carry out :func:`plan_run`'s ``plan`` for ``cfg`` at ``path`` (exceptions propagate)."""
    from shedding.experiment import record, resume

    if plan == "resume":
        resume(path, progress=progress)
    elif plan in ("record", "overwrite"):
        record(cfg, path, cache_dir=cache_dir, overwrite=plan == "overwrite", progress=progress)
    elif plan != "skip":
        raise ValueError(f"unknown plan {plan!r}")


def ensure_run(
    cfg: RunConfig,
    root: str | Path,
    *,
    cache_dir: str | Path | None = None,
    progress: ProgressFactory | None = None,
) -> RunOutcome:
    """Make sure ``cfg``'s store at :func:`run_path` is complete, doing only the work that is
    missing.

    A complete store is ``skipped`` (nothing is trained or written); an interrupted, failed or
    crashed store with a resume checkpoint is ``resumed`` (bitwise as if it had never stopped, on
    CPU); a store that died before its first checkpoint is recorded again over the old one, and a
    missing one is ``recorded``.
    ``cache_dir`` shares the original (pre-pruning) training between runs; ``progress`` is the
    experiment's progress factory. Exceptions propagate (the grid catches and retries them).
    """
    t0 = time.perf_counter()
    path = run_path(root, cfg)
    plan = plan_run(cfg, path)
    execute_plan(cfg, path, plan, cache_dir, progress)
    return RunOutcome(cfg, path, COMPLETE, ACTIONS[plan], None, 1, time.perf_counter() - t0)
