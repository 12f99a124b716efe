"""Run a study grid: each run a task on ``dask.distributed`` (or in this process), retried on
failure.

Runs are named by their configuration's hash (:mod:`shedding.grid.provenance`), so rerunning a grid
skips complete runs and resumes interrupted ones. Runs that share an original training run (same
model, data, train sections and seed) wait for one task that trains it into the cache, instead of
each worker training the same network at once. A ``grid.json`` manifest in the root lists every
run's hash, name, status and error.
"""

from __future__ import annotations

import json
import logging
import os
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

from shedding.config import ConfigError, RunConfig
from shedding.grid.provenance import (
    ACTIONS,
    COMPLETE,
    FAILED,
    SKIPPED,
    RunOutcome,
    execute_plan,
    plan_run,
    run_name,
    run_path,
)
from shedding.storage import as_path, is_local, write_text_atomic
from shedding.validate import validate_run_config

MANIFEST = "grid.json"
SYNC = "sync"
log = logging.getLogger(__name__)


def _error_line(e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}".strip()
    return text.splitlines()[0] if text else type(e).__name__


def _retryable(e: BaseException) -> bool:
    """Configuration and store errors (bad option, foreign store, live writer) come back on every
    attempt."""
    from shedding.recording.store import StoreError

    return not isinstance(e, (ConfigError, StoreError))


def _set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


# ----------------------------------------------------------------------- tasks (run on the workers)


def _run_task(
    cfg: RunConfig, root: str, cache_dir: str | None, threads: int | None
) -> tuple[RunOutcome, bool, str | None]:
    """One attempt at one run: (outcome, whether a failure is worth retrying, traceback of a
    failure)."""
    _set_threads(threads)
    t0 = time.perf_counter()
    path = run_path(root, cfg)
    action = ACTIONS["record"]
    try:
        plan = plan_run(cfg, path)
        action = ACTIONS[plan]
        execute_plan(cfg, path, plan, cache_dir)
    except Exception as e:  # noqa: BLE001 - reported in the outcome, retried by the client
        outcome = RunOutcome(cfg, path, FAILED, action, _error_line(e), 1, time.perf_counter() - t0)
        return outcome, _retryable(e), traceback.format_exc()
    return RunOutcome(cfg, path, COMPLETE, action, None, 1, time.perf_counter() - t0), False, None


def _pretrain_task(cfgs: list[RunConfig], cache_dir: str, threads: int | None) -> str | None:
    """Train the original run shared by ``cfgs`` into the cache, with every checkpoint any of them
    needs.

    Returns None, or a one-line error (the dependent runs then run anyway and train it themselves).
    """
    _set_threads(threads)
    try:
        from shedding.config import parse_step
        from shedding.experiment import prepare, pretrain
        from shedding.retraining import TECHNIQUES

        p = None
        for cfg in cfgs:  # the first configuration that prepares; a bad one fails in its own run
            try:
                p = prepare(cfg)
                break
            except Exception:  # noqa: BLE001
                continue
        if p is None:
            return "no run of the group could be prepared"
        needed: set[int] = set()
        for cfg in cfgs:
            try:
                technique = TECHNIQUES.get(cfg.retrain.technique)
                t = parse_step(cfg.retrain.duration, "--retrain-duration").iterations(p.ipe)
            except Exception:  # noqa: BLE001
                continue
            if 1 <= t and not (technique.needs_t_within_T and t > p.T):
                needed |= technique.checkpoints_needed(p.T, t)
        pretrain(p, Path(cache_dir), needed)
    except Exception as e:  # noqa: BLE001
        return _error_line(e)
    return None


# --------------------------------------------------------------------------- executors


class _SyncExecutor:
    """Runs submitted tasks one at a time in this process, in submission order."""

    def __init__(self) -> None:
        self._queue: deque[tuple[str, Callable[..., Any], tuple[Any, ...]]] = deque()

    def submit(self, key: str, fn: Callable[..., Any], *args: Any) -> None:
        self._queue.append((key, fn, args))

    def results(self) -> Iterator[tuple[str, Any, BaseException | None]]:
        while self._queue:
            key, fn, args = self._queue.popleft()
            try:
                yield key, fn(*args), None
            except Exception as e:  # noqa: BLE001
                yield key, None, e


class _DaskExecutor:
    """Submits tasks to a dask.distributed client and yields them as they complete."""

    def __init__(self, client: Any) -> None:
        from distributed import as_completed

        self.client = client
        self._done = as_completed()

    def submit(self, key: str, fn: Callable[..., Any], *args: Any) -> None:
        self._done.add(self.client.submit(fn, *args, key=key, pure=False))

    def results(self) -> Iterator[tuple[str, Any, BaseException | None]]:
        for future in self._done:
            key = future.key
            try:
                result, error = future.result(), None
            except Exception as e:  # noqa: BLE001 - a lost worker, an unpicklable result, ...
                result, error = None, e
            future.release()
            yield key, result, error


def _local_workers(workers: int | None, configs: list[RunConfig]) -> int:
    """``workers``, or one per CPU up to the number of runs; one when the runs would share a CUDA
    device."""
    if workers is not None:
        return workers
    if any(cfg.device != "cpu" for cfg in configs):
        import torch

        if torch.cuda.is_available():
            return 1  # every process would train on the same GPU ("auto" and "cuda" mean cuda:0)
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, len(configs)))


def _reachable(address: str) -> None:
    """Raise OSError/ValueError unless a TCP connection to the scheduler ``address`` opens (connect
    timeout)."""
    import socket

    import dask
    from dask.utils import parse_timedelta
    from distributed.comm import parse_address
    from distributed.comm.addressing import parse_host_port

    protocol, location = parse_address(address)
    if protocol not in ("tcp", "tls"):
        return  # other transports (inproc, ucx): let the Client try
    host, port = parse_host_port(location)
    timeout = parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), default="s")
    with socket.create_connection((host, port), timeout=timeout):
        pass


def _open_executor(
    stack: ExitStack, scheduler: str | None, workers: int | None, runs: list[RunConfig]
) -> tuple[_SyncExecutor | _DaskExecutor, int | None]:
    """The executor and the torch thread count its tasks should set (None: leave the workers'
    own)."""
    if scheduler == SYNC:
        return _SyncExecutor(), None
    import dask
    from distributed import Client, LocalCluster

    if scheduler is None:
        # non-daemonic workers, so that runs with DataLoader worker processes can start them
        stack.enter_context(dask.config.set({"distributed.worker.daemon": False}))
        try:
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=_local_workers(workers, runs),
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=":0",
                    memory_limit=0,
                    silence_logs=logging.ERROR,
                )
            )
        except Exception as e:  # noqa: BLE001
            raise RuntimeError(
                f"cannot start a local dask cluster ({_error_line(e)}; the log above says why); "
                'note that a script must call run_grid under `if __name__ == "__main__":`'
            ) from e
        client = stack.enter_context(Client(cluster))
        return _DaskExecutor(client), 1
    try:
        # check before any Client exists: a half-built one that fails is collected later, and its
        # __del__ can then deadlock a LocalCluster starting at that moment
        _reachable(scheduler)
        client = Client(scheduler)
    except (OSError, TimeoutError, ValueError) as e:
        import gc

        gc.collect()  # collect a half-built Client now, while no event loop is starting
        raise ConfigError(
            f"--scheduler: cannot connect to the dask scheduler at {scheduler!r} ({_error_line(e)})"
        ) from None
    stack.enter_context(client)
    return _DaskExecutor(client), None


# --------------------------------------------------------------------------- manifest


class _Manifest:
    """``grid.json``: every run of the root by configuration hash; entries of other grids are
    kept."""

    def __init__(self, root: Path) -> None:
        self.path = root / MANIFEST
        try:
            self.runs: dict[str, dict[str, Any]] = json.loads(self.path.read_text()).get("runs", {})
        except (FileNotFoundError, json.JSONDecodeError, AttributeError):
            self.runs = {}

    def pending(self, cfg: RunConfig) -> None:
        self.runs[cfg.hash()] = {
            "name": run_name(cfg),
            "path": run_path("", cfg).name,
            "status": "pending",
            "action": None,
            "error": None,
            "attempts": 0,
            "seconds": 0.0,
        }

    def finish(self, outcome: RunOutcome, tb: str | None = None) -> None:
        entry = {
            "name": run_name(outcome.config),
            "path": outcome.path.name,
            "status": outcome.status,
            "action": outcome.action,
            "error": outcome.error,
            "attempts": outcome.attempts,
            "seconds": round(outcome.seconds, 3),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        if tb:
            entry["traceback"] = tb
        self.runs[outcome.config.hash()] = entry

    def write(self) -> None:
        statuses = [r["status"] for r in self.runs.values()]
        data = {
            "format": "shedding-grid",
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "counts": {s: statuses.count(s) for s in sorted(set(statuses))},
            "runs": self.runs,
        }
        write_text_atomic(self.path, json.dumps(data, indent=1))


# --------------------------------------------------------------------------- the grid


def check_grid_options(workers: int | None, retries: int | None) -> None:
    """Raise :class:`ConfigError` unless ``workers`` (None: the default) is at least 1 and
    ``retries`` is not negative: the one check of both, for :func:`run_grid` and the CLI."""
    from shedding.config import AT_LEAST_1, NON_NEGATIVE
    from shedding.validate import check_number

    for value, option, within in (
        (workers, "--workers", AT_LEAST_1),
        (retries, "--retries", NON_NEGATIVE),
    ):
        if value is not None:
            check_number(value, option, within)


def _validate_all(configs: list[RunConfig]) -> None:
    """Validate every configuration; a :class:`ConfigError` names the first bad run."""
    for i, cfg in enumerate(configs):
        try:
            validate_run_config(cfg)
        except ConfigError as e:
            raise ConfigError(f"run {i + 1} of {len(configs)} ({run_name(cfg)}): {e}") from None


class _Grid:
    """One :func:`run_grid` call's distinct runs, their plans, the manifest and the outcomes."""

    def __init__(
        self,
        unique: dict[str, RunConfig],
        root: Path,
        cache: Path | None,
        progress: Callable[[RunOutcome], None] | None,
    ) -> None:
        self.unique = unique
        self.root = root
        self.cache = cache
        self.progress = progress
        self.manifest = _Manifest(root)
        self.outcomes: dict[str, RunOutcome] = {}
        self.plans: dict[str, str] = {}

    def finish(self, outcome: RunOutcome, tb: str | None = None) -> None:
        """Record a run's final outcome (manifest written at once) and report it."""
        self.outcomes[outcome.config.hash()] = outcome
        self.manifest.finish(outcome, tb)
        self.manifest.write()
        if self.progress is not None:
            self.progress(outcome)

    def plan(self) -> list[str]:
        """Plan every run, list it as pending, finish the complete ones; return the others'
        hashes."""
        for h, cfg in self.unique.items():
            try:
                self.plans[h] = plan_run(cfg, run_path(self.root, cfg))
            except Exception:  # noqa: BLE001 - the run's own task raises it again and reports it
                self.plans[h] = "record"
            self.manifest.pending(cfg)
        self.manifest.write()
        for h, cfg in self.unique.items():
            if self.plans[h] == "skip":
                path = run_path(self.root, cfg)
                self.finish(RunOutcome(cfg, path, COMPLETE, SKIPPED, None, 1, 0.0))
        return [h for h in self.unique if h not in self.outcomes]

    def pretrain_groups(self, todo: list[str]) -> dict[str, list[str]]:
        """Runs to record that share an original training run, by its cache folder (groups of two
        or more): one task trains it first, then they start."""
        from shedding.experiment import pretrain_dir

        if self.cache is None:
            return {}
        groups: dict[str, list[str]] = {}
        for h in todo:
            cfg = self.unique[h]
            if self.plans[h] != "resume" and not cfg.record.record_pretrain:
                groups.setdefault(str(pretrain_dir(self.cache, cfg)), []).append(h)
        return {k: hs for k, hs in groups.items() if len(hs) > 1}

    def ordered(self, configs: list[RunConfig]) -> list[RunOutcome]:
        """The outcomes in the order of ``configs``."""
        return [self.outcomes[cfg.hash()] for cfg in configs]


class _Dispatch:
    """Submits a grid's tasks to an executor and handles each as it comes back: a finished
    original training starts its runs, a failed run is retried, a final outcome is finished."""

    def __init__(
        self,
        grid: _Grid,
        executor: _SyncExecutor | _DaskExecutor,
        threads: int | None,
        retries: int,
        todo: list[str],
    ) -> None:
        self.grid = grid
        self.executor = executor
        self.threads = threads
        self.retries = retries
        self.token = uuid.uuid4().hex[:8]
        self.tasks: dict[str, tuple[str, str]] = {}
        self.attempts = dict.fromkeys(todo, 0)
        self.seconds = dict.fromkeys(todo, 0.0)

    def submit_run(self, h: str) -> None:
        """Submit one attempt at run ``h``."""
        grid = self.grid
        self.attempts[h] += 1
        key = f"shedding-run-{run_name(grid.unique[h])}-{self.attempts[h]}-{self.token}"
        self.tasks[key] = ("run", h)
        cache = str(grid.cache) if grid.cache else None
        self.executor.submit(key, _run_task, grid.unique[h], str(grid.root), cache, self.threads)

    def run(self, todo: list[str], groups: dict[str, list[str]]) -> None:
        """Submit the original trainings and the runs not waiting on one; handle every result."""
        for i, (group, hs) in enumerate(groups.items()):
            key = f"shedding-pretrain-{i}-{self.token}"
            self.tasks[key] = ("pretrain", group)
            cfgs = [self.grid.unique[h] for h in hs]
            self.executor.submit(key, _pretrain_task, cfgs, str(self.grid.cache), self.threads)
        waiting = {h for hs in groups.values() for h in hs}
        for h in todo:
            if h not in waiting:
                self.submit_run(h)
        for key, result, error in self.executor.results():
            kind, ident = self.tasks.pop(key)
            if kind == "pretrain":
                problem = error and _error_line(error) or result
                if problem:
                    log.warning(
                        "original training for %s failed (%s); its runs train it themselves",
                        ident,
                        problem,
                    )
                for h in groups[ident]:
                    self.submit_run(h)
            else:
                self.run_done(ident, result, error)

    def run_done(self, h: str, result: Any, error: BaseException | None) -> None:
        """Handle an attempt at run ``h`` that came back: retry it or finish it."""
        tb = None
        cfg = self.grid.unique[h]
        if error is not None:  # the task itself did not come back (a lost worker, say)
            action = ACTIONS[self.grid.plans[h]]
            path = run_path(self.grid.root, cfg)
            outcome = RunOutcome(cfg, path, FAILED, action, _error_line(error), 1, 0.0)
            retry = True
        else:
            outcome, retry, tb = result
        self.seconds[h] += outcome.seconds
        if outcome.status == FAILED and retry and self.attempts[h] <= self.retries:
            log.warning("run %s failed (%s); retrying", run_name(cfg), outcome.error)
            self.submit_run(h)
            return
        final = replace(outcome, config=cfg, attempts=self.attempts[h], seconds=self.seconds[h])
        self.grid.finish(final, tb)


def run_grid(
    configs: Sequence[RunConfig],
    root: str | Path,
    *,
    cache_dir: str | Path | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    retries: int = 1,
    progress: Callable[[RunOutcome], None] | None = None,
) -> list[RunOutcome]:
    """Bring every run of ``configs`` to a complete store under ``root``; return outcomes in their
    order.

    Each run's store is ``run_path(root, cfg)``: complete runs are skipped, interrupted ones
    resumed, missing ones recorded (:func:`shedding.grid.provenance.ensure_run`). Configurations
    with the same hash run once.

    ``scheduler`` None starts a ``dask.distributed`` LocalCluster of ``workers`` processes (at
    least 1) with one thread each (default: min(CPUs, runs to do), or 1 where the runs would train
    on this machine's GPU); ``"tcp://host:port"`` uses that cluster (its workers must import
    ``shedding`` and see ``root`` and ``cache_dir`` at the same paths); ``"sync"`` runs everything
    in this process.

    A run that raises is retried up to ``retries`` times (resuming from its checkpoint when it has
    one; configuration and store errors are not retried) and is then reported with status ``failed``
    and a one-line error; no run is dropped. With ``cache_dir``, runs that share an original
    training run wait for one task that trains it into the cache. ``progress`` is called with each
    run's final outcome as it finishes. ``root/grid.json`` lists every run's hash, name, status and
    error (and a failed run's traceback). Every configuration is validated first (a
    :class:`ConfigError` naming the run); an unreachable scheduler is a one-line
    :class:`ConfigError`.
    """
    configs = list(configs)
    check_grid_options(workers, retries)
    _validate_all(configs)
    root = as_path(root)
    root = root.absolute() if is_local(root) else root
    cache = Path(cache_dir).absolute() if cache_dir is not None else None
    root.mkdir(parents=True, exist_ok=True)
    unique: dict[str, RunConfig] = {}
    for cfg in configs:
        unique.setdefault(cfg.hash(), cfg)
    grid = _Grid(unique, root, cache, progress)
    todo = grid.plan()
    if not todo:
        return grid.ordered(configs)
    groups = grid.pretrain_groups(todo)
    with ExitStack() as stack:
        executor, threads = _open_executor(stack, scheduler, workers, [unique[h] for h in todo])
        _Dispatch(grid, executor, threads, retries, todo).run(todo, groups)
    return grid.ordered(configs)
