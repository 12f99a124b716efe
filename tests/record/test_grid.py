"""Study grids: hash-named runs, skip/resume/record on rerun, a LocalCluster grid with retries and
failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import distributed  # noqa: F401 - before any dask.config.set of its keys
import grid_faults
import numpy as np
import pytest
import torch
import xarray as xr

from shedding.config import NOT_HASHED, ConfigError, RunConfig, flat_fields, from_plain, to_dict
from shedding.experiment import FINAL_MODEL, RESUME_DIR, record
from shedding.grid import RunOutcome, ensure_run, run_grid, run_name, run_path
from shedding.recording.store import StoreError

ROOT = Path(__file__).resolve().parents[2]


def _config(method: str = "gmp", technique: str = "lr_rewind", seed: int = 0) -> RunConfig:
    from conftest import tiny_config

    cfg = tiny_config(method, 0.5, technique)
    cfg.record.every = 2
    cfg.record.hist_every = 0
    cfg.seed = seed
    return cfg


def _attrs(path: Path) -> dict:
    return json.loads((path / "zarr.json").read_text())["attributes"]


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path / FINAL_MODEL, weights_only=True)


def _assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


# --------------------------------------------------------------------------- names


def _perturbed(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    return [*value, value[0] if value else "x"]


def test_run_name_differs_in_every_option_and_is_stable_across_processes(tmp_path):
    base = _config()
    names = {run_name(base)}
    fields = [
        f for f in flat_fields(base) if f.key not in NOT_HASHED
    ]  # where the data lives names nothing
    for f in fields:
        d = to_dict(base)
        section = d[f.section] if f.section else d
        section[f.name] = _perturbed(section[f.name])
        names.add(run_name(from_plain(d)))
    assert len(names) == len(fields) + 1
    assert run_name(base).startswith("gmp-oneshot-lr_rewind-s0-") and run_name(base).endswith(
        base.hash()
    )
    assert run_path(tmp_path, base) == tmp_path / f"{run_name(base)}.zarr"
    code = (
        "import json, sys; from shedding.config import from_plain; "
        "from shedding.grid import run_name; "
        "print(run_name(from_plain(json.load(sys.stdin))))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "123"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(to_dict(base)),
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=True,
    ).stdout.strip()
    assert out == run_name(base)


# --------------------------------------------------------------------------- ensure_run


class _Stop(KeyboardInterrupt):
    pass


def _stop_at(step: int):
    """A progress factory that interrupts the retraining after ``step`` steps (as Ctrl-C would)."""

    def factory(description: str, total: int):
        done = [0]

        def advance(n: int) -> None:
            done[0] += n
            if description == "retraining" and done[0] >= step:
                raise _Stop

        return advance

    return factory


def test_ensure_run_records_skips_resumes_and_rerecords(tmp_path):
    root, cache = tmp_path / "runs", tmp_path / "cache"
    cfg = _config()
    first = ensure_run(cfg, root, cache_dir=cache)
    assert (first.status, first.action, first.attempts, first.error) == (
        "complete",
        "recorded",
        1,
        None,
    )
    assert first.path == run_path(root, cfg) and _attrs(first.path)["status"] == "complete"
    before = {p: p.stat().st_mtime_ns for p in first.path.rglob("*")}
    t0 = time.perf_counter()
    again = ensure_run(cfg, root, cache_dir=cache)
    assert (
        again.action == "skipped" and again.status == "complete" and time.perf_counter() - t0 < 1.0
    )
    assert {p: p.stat().st_mtime_ns for p in first.path.rglob("*")} == before  # nothing written

    # interrupted in its second retraining epoch: resumed from the checkpoint, bitwise as
    # uninterrupted
    cut = _config(seed=1)
    path = run_path(root, cut)
    with pytest.raises(_Stop):
        ensure_run(cut, root, cache_dir=cache, progress=_stop_at(15))
    assert (
        _attrs(path)["status"] == "interrupted" and (path / RESUME_DIR / "checkpoint.pt").exists()
    )
    resumed = ensure_run(cut, root, cache_dir=cache)
    assert (resumed.status, resumed.action) == ("complete", "resumed") and _attrs(path)[
        "status"
    ] == "complete"
    reference = record(
        cut, tmp_path / "reference.zarr", cache_dir=cache
    )  # in this process, uninterrupted
    _assert_same_weights(path, reference)
    ref, got = xr.open_zarr(reference), xr.open_zarr(path)
    np.testing.assert_array_equal(got.magnitude.values, ref.magnitude.values)
    np.testing.assert_array_equal(got.loss.values, ref.loss.values)

    # interrupted before its first checkpoint: recorded again over the old store
    early = _config(seed=2)
    with pytest.raises(_Stop):
        ensure_run(early, root, cache_dir=cache, progress=_stop_at(3))
    assert not (run_path(root, early) / RESUME_DIR / "checkpoint.pt").exists()
    redone = ensure_run(early, root, cache_dir=cache)
    assert (redone.status, redone.action) == ("complete", "recorded")
    assert _attrs(redone.path)["status"] == "complete" and "resumed" not in _attrs(redone.path)

    # a store at the path that holds another configuration is refused, not overwritten or resumed
    other = _config(seed=3)
    foreign = run_path(root, other)
    foreign.mkdir()
    (foreign / "zarr.json").write_text(
        json.dumps({"attributes": {"config": to_dict(_config(seed=4))}})
    )
    with pytest.raises(StoreError, match="another configuration"):
        ensure_run(other, root)


# --------------------------------------------------------------------------- run_grid


def test_run_grid_refuses_bad_configs_and_unreachable_schedulers(tmp_path):
    import dask

    bad = _config()
    bad.prune.sparsity = 1.5
    with pytest.raises(ConfigError, match=r"^run 2 of 2 \(gmp-.*\): --prune-sparsity"):
        run_grid([_config(), bad], tmp_path / "never")
    assert not (tmp_path / "never").exists()
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        with pytest.raises(ConfigError, match="cannot connect to the dask scheduler") as info:
            run_grid([_config()], tmp_path / "root", scheduler="tcp://127.0.0.1:1")
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="missing port"):
        run_grid([_config()], tmp_path / "root", scheduler="nonsense")


def test_run_grid_on_a_scheduler_address(tmp_path):
    from distributed import LocalCluster

    cfg = _config("none", seed=7)
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"
    ) as cluster:
        (outcome,) = run_grid([cfg], tmp_path / "root", scheduler=cluster.scheduler_address)
    assert (outcome.status, outcome.action, outcome.attempts) == ("complete", "recorded", 1)
    assert xr.open_zarr(outcome.path).attrs["status"] == "complete"


GRID_SCRIPT = """
import json, sys
import distributed, dask
from shedding.config import from_plain
from shedding.grid import run_grid


def main():
    spec = json.load(open(sys.argv[1]))
    sys.path.insert(0, spec["preload"].rsplit("/", 1)[0])
    import grid_faults  # the test-only techniques, here for validation; the workers preload them
    finished = []
    with dask.config.set({"distributed.worker.preload": [spec["preload"]]}):
        outcomes = run_grid([from_plain(d) for d in spec["configs"]], spec["root"],
                            cache_dir=spec["cache"], workers=2, retries=1,
                            progress=lambda o: finished.append(o.config.hash()))
    json.dump({"outcomes": [{"hash": o.config.hash(), "path": str(o.path), "status": o.status,
                             "action": o.action, "error": o.error, "attempts": o.attempts,
                             "seconds": o.seconds} for o in outcomes],
               "finished": finished}, open(spec["result"], "w"))


if __name__ == "__main__":
    main()
"""


@pytest.fixture(scope="module")
def cluster_grid(tmp_path_factory):
    """A grid run on a 2-worker LocalCluster from a fresh process that imports shedding via
    PYTHONPATH."""
    tmp = tmp_path_factory.mktemp("grid")
    configs = {
        "gmp": _config("gmp"),
        "control": _config("none"),
        "weight_rewind": _config("gmp", "weight_rewind"),
        "flaky": _config("gmp", "grid_test_flaky"),
        "broken": _config("gmp", "grid_test_broken"),
    }
    order = ["gmp", "control", "weight_rewind", "flaky", "broken", "gmp"]  # with a duplicate
    spec = {
        "configs": [to_dict(configs[k]) for k in order],
        "root": str(tmp / "root"),
        "cache": str(tmp / "cache"),
        "preload": grid_faults.__file__,
        "result": str(tmp / "result.json"),
    }
    (tmp / "spec.json").write_text(json.dumps(spec))
    (tmp / "grid.py").write_text(GRID_SCRIPT)
    faults = tmp / "faults"
    faults.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SHEDDING_GRID_FAULTS": str(faults),
        "OMP_NUM_THREADS": "1",
    }
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "grid.py", "spec.json"],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp / "result.json").read_text())
    result["seconds"] = time.perf_counter() - t0
    return {"tmp": tmp, "configs": configs, "order": order, "faults": faults, **result}


def test_cluster_grid_runs_every_run_in_order(cluster_grid):
    g = cluster_grid
    outcomes, configs = g["outcomes"], g["configs"]
    assert [o["hash"] for o in outcomes] == [configs[k].hash() for k in g["order"]]
    by = dict(zip(g["order"], outcomes, strict=True))
    for name in ("gmp", "control", "weight_rewind"):
        o = by[name]
        assert (o["status"], o["action"], o["attempts"], o["error"]) == (
            "complete",
            "recorded",
            1,
            None,
        ), name
        assert Path(o["path"]) == run_path(g["tmp"] / "root", configs[name])
        ds = xr.open_zarr(o["path"])
        assert ds.attrs["status"] == "complete" and ds.attrs["config"] == to_dict(configs[name])
        assert int(np.isnan(ds.magnitude.values).sum()) == 0
    assert outcomes[0] == outcomes[-1]  # the duplicate ran once
    assert sorted(g["finished"]) == sorted(
        c.hash() for c in configs.values()
    )  # progress once per run
    # one original training run, shared: its cache holds the checkpoints of both techniques
    (folder,) = (g["tmp"] / "cache").iterdir()
    assert {p.name for p in folder.glob("step_*.pt")} == {"step_12.pt", "step_36.pt"}
    manifest = json.loads((g["tmp"] / "root" / "grid.json").read_text())
    assert set(manifest["runs"]) == {c.hash() for c in configs.values()}
    assert manifest["counts"] == {"complete": 4, "failed": 1}
    assert manifest["runs"][configs["gmp"].hash()]["name"] == run_name(configs["gmp"])


def test_cluster_grid_reports_failures_and_retries_flaky_runs(cluster_grid):
    g = cluster_grid
    by = dict(zip(g["order"], g["outcomes"], strict=True))
    broken = by["broken"]
    assert (broken["status"], broken["attempts"]) == ("failed", 2)
    assert broken["error"] == "RuntimeError: injected failure" and broken["action"] == "recorded"
    assert _attrs(Path(broken["path"]))["status"] == "failed"
    entry = json.loads((g["tmp"] / "root" / "grid.json").read_text())["runs"][
        g["configs"]["broken"].hash()
    ]
    assert entry["error"] == broken["error"] and "injected failure" in entry["traceback"]
    flaky = by["flaky"]
    assert (flaky["status"], flaky["action"], flaky["attempts"], flaky["error"]) == (
        "complete",
        "resumed",
        2,
        None,
    )
    assert (g["faults"] / "flaky-failed-once").exists()
    assert "resumed" in _attrs(Path(flaky["path"]))


def test_cluster_grid_matches_in_process_runs(cluster_grid, tmp_path, monkeypatch):
    g = cluster_grid
    monkeypatch.setenv(
        "SHEDDING_GRID_FAULTS", str(g["faults"])
    )  # the marker exists: flaky runs through
    by = dict(zip(g["order"], g["outcomes"], strict=True))
    for name in ("gmp", "weight_rewind", "flaky"):
        reference = record(
            g["configs"][name], tmp_path / f"{name}.zarr", cache_dir=tmp_path / "cache"
        )
        _assert_same_weights(Path(by[name]["path"]), reference)


def test_rerunning_the_grid_skips_complete_runs(cluster_grid, monkeypatch):
    g = cluster_grid
    monkeypatch.setenv("SHEDDING_GRID_FAULTS", str(g["faults"]))
    configs = [g["configs"][k] for k in g["order"]]
    seen: list[RunOutcome] = []
    t0 = time.perf_counter()
    again = run_grid(
        configs,
        g["tmp"] / "root",
        cache_dir=g["tmp"] / "cache",
        scheduler="sync",
        retries=2,
        progress=seen.append,
    )
    assert time.perf_counter() - t0 < 20
    assert [o.config for o in again] == configs
    for name, o in zip(g["order"], again, strict=True):
        if name == "broken":  # failed runs are tried again, and fail again, retried in this process
            assert (o.status, o.attempts, o.error) == (
                "failed",
                3,
                "RuntimeError: injected failure",
            )
        else:
            assert (o.status, o.action, o.attempts) == ("complete", "skipped", 1), name
    assert len(seen) == 5
    manifest = json.loads((g["tmp"] / "root" / "grid.json").read_text())
    assert manifest["counts"] == {"complete": 4, "failed": 1}


def test_sync_grid_trains_a_shared_original_run_once(tmp_path, monkeypatch):
    import shedding.experiment

    phases: list[str] = []
    train = shedding.experiment.train

    def counting_train(*args, **kw):
        phases.append(kw["phase"])
        return train(*args, **kw)

    monkeypatch.setattr(shedding.experiment, "train", counting_train)
    shared = [
        _config("gmp", seed=6),
        _config("random", seed=6),
        _config("gmp", "weight_rewind", seed=6),
    ]
    outcomes = run_grid(shared, tmp_path / "root", cache_dir=tmp_path / "cache", scheduler="sync")
    assert [(o.status, o.action, o.attempts) for o in outcomes] == [("complete", "recorded", 1)] * 3
    assert all(o.config is c for o, c in zip(outcomes, shared, strict=True))
    assert (
        phases.count("pretrain") == 1
    )  # one original run for the three, with both techniques' checkpoints
    assert phases.count("retrain") == 3


def test_grid_does_not_retry_configuration_errors(tmp_path):
    missing = _config()
    missing.data.name, missing.data.root = "cifar10", str(tmp_path / "no-cifar")
    (outcome,) = run_grid([missing], tmp_path / "root", scheduler="sync", retries=3)
    assert (outcome.status, outcome.attempts, outcome.action) == ("failed", 1, "recorded")
    assert (
        outcome.error.startswith("ConfigError: ")
        and "no-cifar" in outcome.error
        and "\n" not in outcome.error
    )
    assert not outcome.path.exists()
