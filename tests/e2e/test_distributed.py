"""torchrun + DistributedDataParallel: batch sharding, the batch-size check, and a real two-process
run on CPU (gloo) against a single-process run of the same configuration."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from torch.utils.data import Dataset, TensorDataset

from shedding.config import ConfigError
from shedding.data.loader import BatchLoader

ROOT = Path(__file__).resolve().parents[2]


class _Indexed(Dataset):
    """A map-style dataset that is not a TensorDataset (so the loader takes its DataLoader path)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return torch.tensor([float(i)]), i


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("tensors", [True, False])
def test_the_shards_of_all_ranks_are_the_global_batch_in_order(world: int, tensors: bool) -> None:
    n, batch = 103, 12  # the last batch (7) splits unevenly
    data = (
        TensorDataset(torch.arange(n).float()[:, None], torch.arange(n)) if tensors else _Indexed(n)
    )
    single = BatchLoader(data, batch, True, 5, torch.device("cpu"))
    ranks = [
        BatchLoader(data, batch, True, 5, torch.device("cpu"), rank=r, world_size=world)
        for r in range(world)
    ]
    assert all(len(r) == len(single) == 9 for r in ranks)
    for epoch in (0, 3):
        whole = [y for _, y in single.epoch(epoch)]
        shards = [[y for _, y in r.epoch(epoch)] for r in ranks]
        assert len(whole) == 9 and all(len(s) == 9 for s in shards)
        for i, y in enumerate(whole):
            assert torch.equal(
                torch.cat([s[i] for s in shards]), y
            )  # rank order = batch order, nothing twice
            assert len(y) == single.global_batch_size(i) == ranks[0].global_batch_size(i)
            assert max(len(s[i]) for s in shards) - min(len(s[i]) for s in shards) <= 1
        assert sorted(torch.cat(whole).tolist()) == list(range(n))


def test_the_global_batch_must_split_over_the_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    from conftest import tiny_config

    from shedding.experiment import prepare

    monkeypatch.setenv(
        "WORLD_SIZE", "2"
    )  # as torchrun sets it; the check comes before joining a process group
    with pytest.raises(
        ConfigError, match="^--data-batch-size: 127 is the global batch.*divisible by 2"
    ):
        prepare(tiny_config(data__batch_size=127))
    # digits has 1437 training examples: with batches of 1436 the last batch has 1 example for 2
    # processes
    with pytest.raises(ConfigError, match=r"last batch \(1 examples\) at least 2"):
        prepare(tiny_config(data__batch_size=1436))


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


# lr 0.05: at 0.1 this MLP has a ReLU pre-activation 1.5e-8 from zero at step 9, on one side of it
# with the global batch in one piece and on the other with it summed from two shards; that first
# 1e-8 difference then grows to 4e-3 in the weights by step 36. At 0.05 the two runs stay within
# about 1e-7 of each other.
OPTIONS = {
    "model-name": "mlp",
    "data-batch-size": "128",
    "train-lr": "0.05",
    "train-duration": "3ep",
    "train-milestones": "2ep",
    "retrain-duration": "2ep",
    "prune-sparsity": "0.5",
    "prune-schedule": "iterative",
    "prune-fraction-per-round": "0.3",
    "record-every": "1",
    "record-hist-every": "1",
    "record-chunk-steps": "8",
    "device": "cpu",
}


def _torchrun(work: Path, logs: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "--log-dir",
        str(logs),
        "--redirects",
        "3",
        str(ROOT / "tests" / "guarded_cli.py"),
        "record",
        *[a for k, v in OPTIONS.items() for a in (f"--{k}", v)],
        "--out",
        "ddp.zarr",
        "--cache",
        "cache",
        *extra,
    ]
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "OMP_NUM_THREADS": "1",
        "SHEDDING_GUARD": str(work),
        "CUDA_VISIBLE_DEVICES": "",
    }
    return subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=300)


def _rank_logs(logs: Path, rank: int) -> str:
    return "".join(p.read_text() for p in sorted(logs.rglob(f"{rank}/std*.log")))


@pytest.mark.slow
def test_torchrun_two_processes_match_one_process(tmp_path: Path) -> None:
    from shedding.config import RunConfig, apply_overrides, flat_fields
    from shedding.experiment import FINAL_MODEL, record

    work, logs = tmp_path / "work", tmp_path / "logs"
    work.mkdir()
    res = _torchrun(work, logs / "first")
    assert res.returncode == 0, (
        res.stderr[-3000:] + _rank_logs(logs, 0)[-3000:] + _rank_logs(logs, 1)[-3000:]
    )
    assert "recorded: ddp.zarr" in _rank_logs(logs / "first", 0)
    assert _rank_logs(logs / "first", 1) == ""  # rank 1 is quiet (and the guard never fired)

    cfg = apply_overrides(
        RunConfig(),
        {f.key: OPTIONS[f.cli_name[2:]] for f in flat_fields() if f.cli_name[2:] in OPTIONS},
    )
    single = record(cfg, tmp_path / "single" / "ddp.zarr", cache_dir=tmp_path / "single" / "cache")

    # exactly the files a single-process run writes: one store, one cached original run, nothing
    # else
    assert _files(work) == _files(tmp_path / "single")
    assert not [f for f in _files(work) if f.endswith(".tmp") or "/." in f]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a, b = xr.open_zarr(work / "ddp.zarr"), xr.open_zarr(single)
    assert (
        a.attrs["status"] == "complete"
        and a.attrs["world_size"] == 2
        and b.attrs["world_size"] == 1
    )
    assert a.attrs["config"] == b.attrs["config"] and a.attrs["rounds"] == 2
    wa = torch.load(work / "ddp.zarr" / FINAL_MODEL, weights_only=True)
    wb = torch.load(single / FINAL_MODEL, weights_only=True)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.allclose(wa[k], wb[k], rtol=1e-4, atol=1e-6), k
    assert np.array_equal(a.mask.values, b.mask.values)
    np.testing.assert_allclose(a.magnitude.values, b.magnitude.values, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(
        a.pre_prune_magnitude.values, b.pre_prune_magnitude.values, rtol=1e-4, atol=1e-6
    )
    np.testing.assert_allclose(a.event_tau.values, b.event_tau.values, rtol=1e-4)
    np.testing.assert_allclose(
        a.loss.values, b.loss.values, rtol=1e-4, atol=1e-6
    )  # the whole batch's loss
    np.testing.assert_allclose(a.train_accuracy.values, b.train_accuracy.values, atol=1e-9)
    np.testing.assert_allclose(a.test_accuracy.values, b.test_accuracy.values, atol=1e-9)
    for name in ("shed_count", "event_pruned", "event_survivors", "magnitude_hist"):
        assert np.array_equal(a[name].values, b[name].values), name

    # again over the same store and cache: rank 0 alone replaces the store and reads the cached
    # original run
    before = {p: p.stat().st_mtime_ns for p in (work / "cache").rglob("*")}
    res = _torchrun(work, logs / "again", "--overwrite")
    assert res.returncode == 0, res.stderr[-3000:] + _rank_logs(logs / "again", 1)[-3000:]
    assert _rank_logs(logs / "again", 1) == ""
    assert {p: p.stat().st_mtime_ns for p in (work / "cache").rglob("*")} == before
    assert _files(work) == _files(tmp_path / "single")
    again = torch.load(work / "ddp.zarr" / FINAL_MODEL, weights_only=True)
    assert all(torch.allclose(again[k], wb[k], rtol=1e-4, atol=1e-6) for k in wb)
