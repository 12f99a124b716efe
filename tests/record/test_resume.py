"""Crash safety and resume: a really killed run leaves a readable committed prefix; resume is
bitwise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
import zarr

from shedding.config import to_toml
from shedding.experiment import FINAL_MODEL, RESUME_DIR, record, resume
from shedding.recording.store import StoreError, run_status

ROOT = Path(__file__).resolve().parents[2]


def _config(technique: str = "lr_rewind", schedule: str = "oneshot"):
    from conftest import tiny_config

    cfg = tiny_config("gmp", 0.36, technique, prune__schedule=schedule)
    cfg.train.duration = "12ep"
    cfg.retrain.duration = "10ep"
    cfg.record.every = 3
    return cfg


def _attrs(path: Path) -> dict:
    return json.loads((path / "zarr.json").read_text())["attributes"]


def _killed(cfg, out: Path, cache: Path, tmp: Path, at: str, sync: bool = False) -> None:
    """Record ``cfg`` in a process that kills itself (SIGKILL) at the moment ``at`` (see
    tests/signal_cli.py)."""
    (tmp / "run.toml").write_text(to_toml(cfg))
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}",
        "OMP_NUM_THREADS": "1",
        "SHEDDING_SIGNAL": "KILL",
        "SHEDDING_SIGNAL_AT": at,
        **({"SHEDDING_SIGNAL_SYNC": "1"} if sync else {}),
    }
    res = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tests" / "signal_cli.py"),
            "record",
            "--config",
            str(tmp / "run.toml"),
            "--out",
            str(out),
            "--cache",
            str(cache),
        ],
        env=env,
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == -9, res.stderr[-2000:]


def _assert_same_store(a: Path, b: Path) -> None:
    ga, gb = zarr.open_group(str(a), mode="r"), zarr.open_group(str(b), mode="r")
    assert sorted(ga.array_keys()) == sorted(gb.array_keys())
    for k in ga.array_keys():
        np.testing.assert_array_equal(np.asarray(ga[k][:]), np.asarray(gb[k][:]), err_msg=k)
    wa = torch.load(a / FINAL_MODEL, weights_only=True)
    wb = torch.load(b / FINAL_MODEL, weights_only=True)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Uninterrupted runs to compare against, keyed by (technique, schedule)."""
    root = tmp_path_factory.mktemp("ref")
    out = {}
    for key in (("lr_rewind", "oneshot"), ("weight_rewind", "iterative")):
        out[key] = record(_config(*key), root / f"{key[0]}-{key[1]}.zarr", cache_dir=root / "cache")
    return out, root / "cache"


@pytest.mark.slow
@pytest.mark.parametrize("key", [("lr_rewind", "oneshot"), ("weight_rewind", "iterative")])
def test_kill_9_leaves_committed_prefix_and_resume_is_bitwise(reference, tmp_path, key):
    refs, cache = reference
    out = tmp_path / "killed.zarr"
    at = (
        "retrain:30@1" if key[1] == "iterative" else "retrain:40"
    )  # iterative: inside the second round
    _killed(_config(*key), out, cache, tmp_path, at)
    # the store opens, says the writer is gone, and every step up to the committed one is intact
    ds = xr.open_zarr(out)
    assert ds.attrs["status"] == "running" and run_status(out, ds.attrs) == "crashed"
    ref = xr.open_zarr(refs[key])
    committed = ds.attrs["last_committed_step"]
    assert committed is not None and committed >= (
        120 if key[1] == "iterative" else 36
    )  # epoch ends before
    # the store grows in whole chunks: its committed rows are the uninterrupted run's first ones
    rows = ds.attrs["committed_rows"]
    ds = ds.isel(step=slice(0, rows["step"]), record_step=slice(0, rows["record_step"]))
    ref = ref.isel(step=slice(0, rows["step"]), record_step=slice(0, rows["record_step"]))
    sel = ds.step.values <= committed
    np.testing.assert_array_equal(ds.step.values, ref.step.values)
    np.testing.assert_array_equal(ds.loss.values[sel], ref.loss.values[sel])
    np.testing.assert_array_equal(ds.shed_count.values[sel], ref.shed_count.values[sel])
    snaps = ds.record_step.values <= committed
    np.testing.assert_array_equal(ds.magnitude.values[snaps], ref.magnitude.values[snaps])
    # resume finishes it bitwise equal to the uninterrupted run
    resume(out)
    assert _attrs(out)["status"] == "complete" and not (out / RESUME_DIR).exists()
    _assert_same_store(out, refs[key])
    with pytest.raises(StoreError, match="complete; there is nothing to resume"):
        resume(out)


def test_resume_refusals(recorded, tmp_path):
    with pytest.raises(StoreError, match="no run store"):
        resume(tmp_path / "nothing.zarr")
    with pytest.raises(StoreError, match="complete"):
        resume(recorded["gmp"])
    from typer.testing import CliRunner

    from shedding.cli.main import app

    res = CliRunner().invoke(
        app, ["record", "--resume", str(recorded["gmp"]), "--prune-sparsity", "0.3"]
    )
    assert res.exit_code == 2 and "--resume takes the configuration" in res.stderr


def test_resume_refused_while_another_machine_holds_the_lock(recorded, tmp_path):
    """A run killed on another machine leaves its lock, which can't be checked from here: resume is
    refused in one line that names the holder and the lock file to remove; once removed, the lock no
    longer blocks."""
    import shutil

    from typer.testing import CliRunner

    from shedding.cli.main import app

    out = tmp_path / "elsewhere.zarr"
    shutil.copytree(recorded["gmp"], out)
    zarr.open_group(str(out), mode="r+").attrs["status"] = "running"  # as a killed run leaves it
    lock = out / "writer.lock"
    lock.write_text(json.dumps({"pid": 4242, "host": "node-elsewhere", "time": 0.0}))
    with pytest.raises(
        StoreError,
        match=r"process 4242 on node-elsewhere \(locked 1970-01-01 00:00:00 UTC\); "
        r"one writer per store; it can't be checked from this machine: if that "
        r"process is gone, remove .*writer\.lock and retry",
    ):
        resume(out)
    res = CliRunner().invoke(app, ["record", "--resume", str(out)])
    assert res.exit_code != 0 and "node-elsewhere" in res.stderr and str(lock) in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and lock.exists()  # one line, nothing changed
    lock.unlink()  # what the message says to do
    resume(out)  # past the lock: this copy kept no resume files, so the whole run is recorded again
    assert _attrs(out)["status"] == "complete"
    _assert_same_store(out, recorded["gmp"])


def _interrupted_in_process(cfg, out: Path, cache: Path, monkeypatch, at_step: int) -> None:
    """Record ``cfg`` and stop it (as Ctrl-C does) after retraining step ``at_step`` of the first
    round."""
    from shedding import experiment
    from shedding.training.loop import Callback

    class Stopped(KeyboardInterrupt):
        pass

    class Stop(Callback):
        def on_step_end(self, state) -> None:
            if state.phase == "retrain" and state.step == at_step:
                raise Stopped

    original = experiment.train
    monkeypatch.setattr(
        experiment, "train", lambda *a, **k: original(*a[:5], [*a[5], Stop()], *a[6:], **k)
    )
    with pytest.raises(Stopped) as stopped:
        record(cfg, out, cache_dir=cache)
    assert stopped.value.status == "interrupted"  # what the store was left as
    monkeypatch.setattr(experiment, "train", original)
    assert _attrs(out)["status"] == "interrupted"


@pytest.fixture(scope="module")
def interrupted(reference, tmp_path_factory):
    """An lr_rewind run stopped inside its fourth retraining epoch (it has checkpoints), and its
    reference."""
    refs, cache = reference
    out = tmp_path_factory.mktemp("interrupted") / "stopped.zarr"
    with pytest.MonkeyPatch.context() as mp:
        _interrupted_in_process(_config(), out, cache, mp, 3 * 12 + 5)
    return out, refs[("lr_rewind", "oneshot")]


def _copy(src: Path, tmp_path: Path) -> Path:
    import shutil

    out = tmp_path / src.name
    shutil.copytree(src, out)
    return out


def _tree(path: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(path)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(path.rglob("*"))
    }


@pytest.mark.parametrize(
    "damage, named",
    [
        ("garbage checkpoint", "_resume/checkpoint.pt is damaged"),
        (
            "checkpoint of another kind",
            "_resume/checkpoint.pt is damaged (not a resume checkpoint)",
        ),
        ("missing original run", "_resume/original_run.pt is missing"),
        ("garbage original run", "_resume/original_run.pt is damaged"),
        ("deleted committed chunk", "shed_count/c/0/0 is missing"),
        ("corrupted committed chunk", "loss/c/0 is damaged"),
    ],
)
def test_resume_refuses_a_damaged_store_in_one_line_and_changes_nothing(
    interrupted, tmp_path, damage, named
):
    out = _copy(interrupted[0], tmp_path)
    if damage == "garbage checkpoint":
        (out / RESUME_DIR / "checkpoint.pt").write_bytes(b"not a checkpoint at all")
    elif damage == "checkpoint of another kind":
        torch.save({"step": 3}, out / RESUME_DIR / "checkpoint.pt")
    elif damage == "missing original run":
        (out / RESUME_DIR / "original_run.pt").unlink()
    elif damage == "garbage original run":
        (out / RESUME_DIR / "original_run.pt").write_bytes(b"\x80\x02garbage")
    elif damage == "deleted committed chunk":
        (out / "shed_count" / "c" / "0" / "0").unlink()
    else:
        chunk = out / "loss" / "c" / "0"
        data = bytearray(chunk.read_bytes())
        data[len(data) // 2] ^= 0xFF
        chunk.write_bytes(bytes(data))
    before = _tree(out)
    from typer.testing import CliRunner

    from shedding.cli.main import app

    res = CliRunner().invoke(app, ["record", "--resume", str(out)])
    assert res.exit_code == 2, res.output
    assert len(res.stderr.strip().splitlines()) == 1 and named in res.stderr, res.stderr
    assert "record the run again with --overwrite" in res.stderr
    assert _tree(out) == before  # nothing changed, no lock left behind


def test_resume_clears_the_old_error_and_ends_bitwise(interrupted, tmp_path):
    out = _copy(interrupted[0], tmp_path)
    group = zarr.open_group(str(out), mode="r+")
    group.attrs.update(
        status="failed", error="RecorderIOError: the store writer failed: No space left on device"
    )
    resume(out)
    attrs = _attrs(out)
    assert attrs["status"] == "complete" and attrs.get("error") is None
    _assert_same_store(out, interrupted[1])


def test_a_run_stopped_before_its_first_checkpoint_restarts_from_the_original_run(
    reference, tmp_path, monkeypatch
):
    refs, cache = reference
    out = tmp_path / "early.zarr"
    _interrupted_in_process(
        _config(), out, cache, monkeypatch, 5
    )  # inside the first retraining epoch
    assert (
        not (out / RESUME_DIR / "checkpoint.pt").exists()
        and (out / RESUME_DIR / "original_run.pt").exists()
    )
    resume(out)
    _assert_same_store(out, refs[("lr_rewind", "oneshot")])


def test_a_run_killed_after_its_last_commit_completes_its_close(reference, tmp_path):
    """Every step committed, the final model written, the status still running (killed while
    closing)."""
    refs, cache = reference
    out = tmp_path / "closing.zarr"
    _killed(_config(), out, cache, tmp_path, "close")
    attrs = _attrs(out)
    assert (
        attrs["status"] == "running"
        and attrs["last_committed_step"] == 120
        and (out / FINAL_MODEL).exists()
    )
    resume(out)
    assert _attrs(out)["status"] == "complete"
    _assert_same_store(out, refs[("lr_rewind", "oneshot")])


def test_diverging_run_stops_at_once_and_is_marked_failed(tmp_path):
    from typer.testing import CliRunner

    from shedding.cli.main import app

    cfg = _config()
    cfg.retrain.technique = "finetune"
    cfg.retrain.finetune_lr = 1e6
    (tmp_path / "run.toml").write_text(to_toml(cfg))
    out = tmp_path / "diverged.zarr"
    res = CliRunner().invoke(
        app,
        [
            "record",
            "--config",
            str(tmp_path / "run.toml"),
            "--out",
            str(out),
            "--cache",
            str(tmp_path / "cache"),
        ],
    )
    assert res.exit_code == 1, res.output
    assert "DivergedError" in res.stderr and "diverged" in res.stderr
    attrs = _attrs(out)
    assert (
        attrs["status"] == "failed" and "DivergedError: the training loss became" in attrs["error"]
    )
    step = int(attrs["error"].split(" at step ")[1].split()[0])
    loss = xr.open_zarr(out).loss.values
    assert np.isfinite(loss[: step - 1]).all() and not np.isfinite(
        loss[step - 1]
    )  # stopped at the first bad step
    assert attrs["last_committed_step"] == step


def _masks_file(cfg, path: Path, seed: int) -> dict[str, torch.Tensor]:
    """Random masks pruning exactly ``cfg.prune.sparsity`` of the run's prunable weights, saved at
    ``path`` as ``shedding export-mask`` writes them."""
    from shedding.experiment import prepare
    from shedding.pruning.masks import target_count

    layers = prepare(_config()).layers  # the run's prunable tensors
    n = sum(layer.size for layer in layers)
    g = torch.Generator().manual_seed(seed)
    keep = torch.ones(n, dtype=torch.bool)
    keep[torch.randperm(n, generator=g)[: target_count(cfg.prune.sparsity, n)]] = False
    masks, start = {}, 0
    for layer in layers:
        masks[layer.name] = keep[start : start + layer.size].reshape(layer.shape).clone()
        start += layer.size
    torch.save(masks, path)
    return masks


def test_resume_refuses_a_masks_file_that_changed_and_changes_nothing(
    reference, tmp_path, monkeypatch
):
    """A run pruned with --prune-method file records its masks' digest; a resume after the file
    was overwritten with other masks (same names, shapes and sparsity) is refused in one line and
    leaves the store as it was; with the file put back it finishes with the file's masks."""
    from typer.testing import CliRunner

    from shedding.cli.main import app

    _, cache = reference
    cfg = _config()
    cfg.prune.method, cfg.prune.mask_file = "file", str(tmp_path / "masks.pt")
    original = _masks_file(cfg, tmp_path / "masks.pt", seed=1)
    out = tmp_path / "file.zarr"
    _interrupted_in_process(cfg, out, cache, monkeypatch, 5)
    assert len(_attrs(out)["mask_file_digest"]) == 64
    _masks_file(cfg, tmp_path / "masks.pt", seed=2)  # other masks, as valid as the first
    before = _tree(out)
    with pytest.raises(StoreError, match="no longer holds the masks the run started with"):
        resume(out)
    res = CliRunner().invoke(app, ["record", "--resume", str(out)])
    assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1, res.output
    assert _tree(out) == before
    torch.save(original, tmp_path / "masks.pt")  # put back
    resume(out)
    ds = xr.open_zarr(out)
    assert ds.attrs["status"] == "complete"
    flat = np.concatenate([original[k].numpy().ravel() for k in ds["layer"].attrs["labels"]])
    np.testing.assert_array_equal(ds["mask"].isel(event=0).values.astype(bool), flat)
