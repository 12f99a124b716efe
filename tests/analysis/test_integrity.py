"""Reading commands refuse a damaged store, and an event a run does not have, in one line (exit 2)
before anything is computed or written (shedding.analysis.integrity, shedding.analysis.events)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import zarr
from typer.testing import CliRunner

from shedding.analysis.cascade import cascade_summary
from shedding.analysis.io import NotARunError, open_run
from shedding.analysis.overlap import compare_kept, kept_matrix
from shedding.cli.main import app


def _copy(src: Path, tmp_path: Path, name: str = "run.zarr") -> Path:
    return Path(shutil.copytree(src, tmp_path / name))


def _chunks(store: Path, array: str) -> list[Path]:
    return sorted(p for p in (store / array / "c").rglob("*") if p.is_file())


def _analyze_fails(tmp_path: Path, *args: str) -> str:
    """``analyze ARGS --out r.html``: exit 2, one line on stderr (returned), no report written."""
    res = CliRunner().invoke(app, ["analyze", *args, "--out", str(tmp_path / "r.html")])
    assert res.exit_code == 2, res.output
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr
    assert not (tmp_path / "r.html").exists()
    return lines[0]


def test_a_deleted_chunk_is_named(recorded, tmp_path):
    store = _copy(recorded["gmp"], tmp_path)
    lost = _chunks(store, "shed_count")[0]
    lost.unlink()
    with pytest.raises(NotARunError, match="chunk file missing"):
        open_run(store)
    line = _analyze_fails(tmp_path, str(store), str(recorded["control"]))
    assert str(lost) in line


def test_a_complete_stores_tables_are_checked(recorded, tmp_path):
    store = _copy(recorded["gmp"], tmp_path)
    for array in ("test_accuracy", "event_tau", "mask"):
        lost = _chunks(store, array)[0]
        lost.unlink()
        with pytest.raises(NotARunError, match="chunk file missing"):
            open_run(store)
        lost.write_bytes(b"")  # back on disk (a damaged chunk's bytes are the decoder's to refuse)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "deleted"])
def test_unreadable_array_metadata_is_named(recorded, tmp_path, damage):
    store = _copy(recorded["gmp"], tmp_path)
    meta = store / "lr" / "zarr.json"
    if damage == "truncated":
        meta.write_bytes(meta.read_bytes()[: len(meta.read_bytes()) // 2])
    elif damage == "garbage":
        meta.write_bytes(b"\x00\xff not json")
    else:
        meta.unlink()
    assert str(meta) in _analyze_fails(tmp_path, str(store))


def test_intact_stores_open_and_only_committed_rows_are_required(recorded, tmp_path):
    for path in recorded.values():
        open_run(path)  # every recorded store passes
    store = _copy(recorded["gmp"], tmp_path)
    chunks = _chunks(store, "magnitude")
    assert len(chunks) > 1
    g = zarr.open_group(str(store), mode="r+")
    first_chunk_rows = g["magnitude"].chunks[0]
    last = int(
        g["record_step"][first_chunk_rows - 1]
    )  # committed: the first snapshot chunk's steps only
    g.attrs.update(status="failed", last_committed_step=last)
    later = [c for c in chunks if c.relative_to(store / "magnitude" / "c").parts[0] != "0"]
    for c in later:
        c.unlink()  # rows after last_committed_step: never required
    for c in _chunks(store, "test_accuracy"):
        # a run failing at an epoch's end leaves that epoch's row unwritten: tables aren't committed
        # rows
        c.unlink()
    assert open_run(store).attrs["status"] == "failed"
    (store / "magnitude" / "c" / "0" / "0").unlink()
    with pytest.raises(NotARunError, match=r"magnitude[/\\]c[/\\]0[/\\]0"):
        open_run(store)


def test_an_event_out_of_range_is_one_line(recorded, tmp_path):
    runs = {n: open_run(recorded[n]) for n in ("gmp", "random")}
    for event in (7, 1, -2):
        with pytest.raises(
            ValueError, match=r"out of range: gmp has 1 prune event \(valid: 0 to 0, or -1 to -1"
        ):
            kept_matrix(runs, event=event)
        with pytest.raises(ValueError, match="out of range"):
            compare_kept(runs["gmp"], runs["random"], event=event)
        with pytest.raises(ValueError, match="out of range"):
            cascade_summary(runs["gmp"], open_run(recorded["control"]), event=event)
    assert kept_matrix(runs, event=-1).sizes["run_a"] == 2  # -1 (the last) and 0 are the one event
    res = CliRunner().invoke(
        app,
        [
            "compare",
            str(recorded["gmp"]),
            str(recorded["random"]),
            "--event",
            "7",
            "--out",
            str(tmp_path / "c.html"),
        ],
    )
    assert res.exit_code == 2, res.output
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "7" in lines[0] and "0 to 0" in lines[0], res.stderr
    assert not (tmp_path / "c.html").exists()
