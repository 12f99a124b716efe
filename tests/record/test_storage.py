"""Stores at fsspec URLs: recorded, resumed, locked and analysed exactly as local ones (fsspec's
memory:// filesystem stands in for S3/GCS; it lives in this process)."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
import zarr
from typer.testing import CliRunner

from shedding import storage
from shedding.analysis import open_run
from shedding.cli.main import app
from shedding.experiment import FINAL_MODEL, RESUME_DIR, record, resume
from shedding.recording.store import LOCK_NAME, StoreError, check_path


def _url(name: str) -> str:
    return f"memory://test-{uuid.uuid4().hex[:8]}/{name}.zarr"


def _same(local: Path, url: str) -> None:
    ga, gb = zarr.open_group(str(local), mode="r"), zarr.open_group(url, mode="r")
    assert sorted(ga.array_keys()) == sorted(gb.array_keys())
    for k in ga.array_keys():
        np.testing.assert_array_equal(np.asarray(ga[k][:]), np.asarray(gb[k][:]), err_msg=k)
    wa = torch.load(local / FINAL_MODEL, weights_only=True)
    wb = storage.load(storage.as_path(url) / FINAL_MODEL)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    from conftest import tiny_config

    root = tmp_path_factory.mktemp("local")
    return record(
        tiny_config("random", 0.5), root / "random.zarr", cache_dir=root / "cache"
    ), root / "cache"


def test_as_path_kinds(tmp_path) -> None:
    assert storage.as_path(str(tmp_path)) == tmp_path
    assert storage.as_path(f"file://{tmp_path}/a b.zarr") == tmp_path / "a b.zarr"
    remote = storage.as_path("memory://bucket/x.zarr")
    assert (
        not storage.is_local(remote)
        and str(remote / "zarr.json") == "memory://bucket/x.zarr/zarr.json"
    )
    assert storage.is_local(storage.as_path(tmp_path))


def test_record_to_a_url_equals_a_local_store(local_run) -> None:
    from conftest import tiny_config

    local, cache = local_run
    url = _url("random")
    record(tiny_config("random", 0.5), url, cache_dir=cache)
    _same(local, url)
    ds = xr.open_zarr(url)  # plain xarray, no code of ours
    assert ds.attrs["status"] == "complete"
    where = storage.as_path(url)
    assert not (where / LOCK_NAME).exists() and not (where / RESUME_DIR).exists()
    run = open_run(url)
    assert run.attrs["path"] == url and float(run.magnitude.isel(record_step=-1).sum()) > 0


def test_interrupted_url_store_resumes_bitwise(local_run) -> None:
    from conftest import tiny_config

    local, cache = local_run
    url = _url("interrupted")

    def progress(description: str, total: int):
        done = [0]

        def advance(n: int) -> None:
            done[0] += n
            if description == "retraining" and done[0] >= 13:  # inside the second retraining epoch
                raise KeyboardInterrupt

        return advance

    with pytest.raises(KeyboardInterrupt):
        record(tiny_config("random", 0.5), url, cache_dir=cache, progress=progress)
    assert xr.open_zarr(url).attrs["status"] == "interrupted"
    resume(url)
    assert xr.open_zarr(url).attrs["status"] == "complete"
    _same(local, url)


def test_second_writer_on_a_url_is_refused(local_run) -> None:
    from conftest import tiny_config

    from shedding.recording.store import RunStore

    _, cache = local_run
    url = _url("locked")
    record(tiny_config("gmp", 0.5), url, cache_dir=cache)
    held = RunStore.reopen(url)  # this process now holds the writer lock
    try:
        with pytest.raises(StoreError, match="one writer per store"):
            check_path(storage.as_path(url), overwrite=True)
        with pytest.raises(StoreError, match="one writer per store"):
            RunStore.reopen(url)
    finally:
        held.release()
    check_path(storage.as_path(url), overwrite=True)  # released: replacing it is allowed again


def test_cli_records_and_reads_a_url(local_run, tmp_path) -> None:
    from conftest import tiny_config

    from shedding.config import to_toml

    _, cache = local_run
    url = _url("cli")
    (tmp_path / "run.toml").write_text(to_toml(tiny_config("gmp", 0.5)))
    runner = CliRunner()
    r = runner.invoke(
        app, ["record", "--config", str(tmp_path / "run.toml"), "--out", url, "--cache", str(cache)]
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["info", url])
    assert r.exit_code == 0 and "status: complete" in r.output
    r = runner.invoke(
        app, ["record", "--config", str(tmp_path / "run.toml"), "--out", url, "--cache", str(cache)]
    )
    assert r.exit_code == 2 and "already exists" in r.output


def test_unknown_url_scheme_is_a_one_line_error_before_anything_runs(tmp_path) -> None:
    r = CliRunner().invoke(
        app, ["record", "--out", "nosuchfs://bucket/x.zarr", "--cache", str(tmp_path / "c")]
    )
    assert r.exit_code == 2 and "Unsupported filesystem: 'nosuchfs'" in r.output
    assert not (tmp_path / "c").exists()


def test_a_url_naming_a_file_is_refused_before_anything_changes() -> None:
    where = storage.as_path(_url("file"))
    where.write_text("keep me")
    for overwrite in (False, True):
        with pytest.raises(StoreError, match="is a file, not a store folder"):
            check_path(where, overwrite=overwrite)
    assert where.read_text() == "keep me"
