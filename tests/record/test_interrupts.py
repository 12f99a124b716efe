"""SIGINT and SIGTERM at every phase of a run, sent by a hook at a chosen moment
(tests/signal_cli.py), never by a sleep: each ends with one clear line, exit 130, the lock released
and the status the moment earned; what was interrupted resumes bitwise equal to an uninterrupted
run. And kill -9 at 20 drawn moments: every one ends, after
--resume (or a new record where the store was never fully created), bitwise equal to an
uninterrupted run."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from test_resume import _assert_same_store, _attrs

from shedding.config import to_toml
from shedding.experiment import RESUME_DIR, record, resume
from shedding.recording.store import StoreError

ROOT = Path(__file__).resolve().parents[2]


def _config():
    from conftest import tiny_config

    cfg = tiny_config("gmp", 0.36, "lr_rewind")
    cfg.train.duration = "3ep"
    cfg.retrain.duration = "3ep"
    cfg.record.every = 2
    cfg.record.chunk_steps = 4
    return cfg


def _run(
    tmp: Path, out: Path, at: str, sig: str = "INT", cache: Path | None = None, **env: str
) -> subprocess.CompletedProcess:
    (tmp / "run.toml").write_text(to_toml(_config()))
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}",
        "OMP_NUM_THREADS": "1",
        "SHEDDING_SIGNAL": sig,
        "SHEDDING_SIGNAL_AT": at,
        **env,
    }
    return subprocess.run(
        [
            sys.executable,
            str(ROOT / "tests" / "signal_cli.py"),
            "record",
            "--config",
            str(tmp / "run.toml"),
            "--out",
            str(out),
            "--cache",
            str(cache or tmp / "cache"),
        ],
        env=env,
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("signal-ref")
    return record(_config(), root / "ref.zarr", cache_dir=root / "cache")


PHASES = {  # moment -> (status the store ends with, words of the one line printed)
    "prepare": (None, "stopped before"),
    "pretrain:5": ("interrupted", "marked interrupted"),
    "retrain:3": ("interrupted", "marked interrupted"),
    "retrain:20": ("interrupted", "marked interrupted"),
    "flush:2": ("interrupted", "marked interrupted"),
    "close": ("complete", "the run had finished"),
    "after": ("complete", "the run had finished"),
}


CASES = [(at, sig) for at in PHASES for sig in ("INT", "TERM")] + [
    (at, "INT,INT") for at in ("retrain:3", "close", "after")
]


@pytest.mark.slow
@pytest.mark.parametrize("at, sig", CASES, ids=[f"{at}-{sig}" for at, sig in CASES])
def test_signal_at_each_phase(reference, tmp_path, at, sig):
    """Each phase with SIGINT and SIGTERM; two signals at once (the second stops at once) in
    training and while a finished run closes (where it must not cut the close short)."""
    out = tmp_path / "run.zarr"
    res = _run(tmp_path, out, at, sig)
    status, words = PHASES[at]
    said = [line for line in res.stderr.splitlines() if line.startswith(("interrupted:", "error:"))]
    assert res.returncode == 130, res.stderr[-2000:]
    assert len(said) == 1 and said[0].startswith("interrupted:") and words in said[0], res.stderr[
        -2000:
    ]
    assert "Traceback" not in res.stderr
    if status is None:
        assert not out.exists()
        return
    attrs = _attrs(out)
    assert attrs["status"] == status and not (out / "writer.lock").exists()
    if status == "complete":
        assert not (out / RESUME_DIR).exists()
        _assert_same_store(out, reference)
        return
    assert attrs["last_committed_step"] is not None or at.startswith("pretrain")
    resume(out)
    assert _attrs(out)["status"] == "complete" and not (out / RESUME_DIR).exists()
    _assert_same_store(out, reference)


NEVER_CREATED = (
    "was never fully created",
    "its metadata can't be read",
)  # killed while the store was made


def _finish(out: Path, tmp: Path) -> str:
    """Finish a killed run as a user would: --resume, or a new record where the store was never
    created."""
    if not (out / "zarr.json").exists():
        record(_config(), out, cache_dir=tmp / "cache", overwrite=True)
        return "recorded again"
    try:
        resume(out)
        return "resumed"
    except StoreError as e:
        if "is complete; there is nothing to resume" in str(e):
            return "complete"
        assert any(words in str(e) for words in NEVER_CREATED), str(
            e
        )  # no other refusal is allowed
        record(_config(), out, cache_dir=tmp / "cache", overwrite=True)
        return "recorded again"


@pytest.mark.slow
def test_kill_9_at_20_drawn_moments_then_resume_is_bitwise(reference, tmp_path):
    count = tmp_path / "calls"
    res = _run(tmp_path, tmp_path / "counted.zarr", "", SHEDDING_COUNT_CALLS=str(count))
    assert res.returncode == 0, res.stderr[-2000:]
    total = int(count.read_text())
    moments = sorted(random.Random(17).sample(range(1, total + 1), 20))
    ends = {}
    for k in moments:
        case = tmp_path / f"k{k}"
        case.mkdir()
        out = case / "run.zarr"
        res = _run(case, out, f"call:{k}", "KILL", cache=case / "cache")
        assert res.returncode == -9, (k, res.returncode, res.stderr[-2000:])
        ends[k] = _finish(out, case)
        assert _attrs(out)["status"] == "complete", (k, ends[k])
        _assert_same_store(out, reference)
    assert list(ends.values()).count("resumed") >= 10, ends  # most moments are inside the run


@pytest.mark.slow
def test_a_signal_while_resume_checks_the_store_changes_nothing(reference, tmp_path, monkeypatch):
    """Ctrl-C while resume verifies what it keeps: the store is left exactly as it was (its tables
    too), the lock released, and a later resume finishes it."""
    import json
    import os
    import signal

    from shedding.recording import resuming

    out = tmp_path / "run.zarr"
    res = _run(tmp_path, out, "retrain:20", "TERM")
    assert res.returncode == 130 and _attrs(out)["status"] == "interrupted"
    before = {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    original = resuming.verify_committed

    def verify_then_signal(*args, **kwargs):
        original(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(resuming, "verify_committed", verify_then_signal)
    with pytest.raises(KeyboardInterrupt):
        resume(out)
    after = {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    assert after.keys() == before.keys() and all(after[p] == before[p] for p in before), [
        str(p) for p in before if after.get(p) != before[p]
    ]
    assert json.loads((out / "zarr.json").read_text())["attributes"]["status"] == "interrupted"
    monkeypatch.setattr(resuming, "verify_committed", original)
    resume(out)
    _assert_same_store(out, reference)
