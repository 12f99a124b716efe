"""``--model-name`` / ``--data-name`` given as an import path ``package.module:factory`` on the CLI:
``record`` trains it, a ``study`` grid runs it on dask workers (other processes, which import the
module themselves), and a bad path fails with one line and exit status 2, writing nothing."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shedding.cli.main import app
from tests.record.test_external_factories import write_mynets

runner = CliRunner()


@pytest.fixture
def mynets(tmp_path, monkeypatch) -> Path:
    """The package ``mynets`` on ``sys.path`` here and on ``PYTHONPATH`` for worker processes."""
    root = write_mynets(tmp_path / "pkgs")
    monkeypatch.syspath_prepend(str(root))
    old = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(root), *([old] if old else [])]))
    yield root
    for name in [m for m in sys.modules if m == "mynets" or m.startswith("mynets.")]:
        del sys.modules[name]


def _config(store: Path) -> dict:
    attrs = json.loads((store / "zarr.json").read_text())["attributes"]
    assert attrs["status"] == "complete"
    return attrs["config"]


def test_record_trains_a_model_and_a_dataset_given_by_import_path(mynets, tmp_path):
    out = tmp_path / "run.zarr"
    args = ["record", "--model-name", "mynets:tiny", "--data-name", "mynets:noise"]
    args += ["--train-duration", "2ep", "--retrain-duration", "1ep", "--prune-sparsity", "0.5"]
    res = runner.invoke(app, [*args, "--out", str(out), "--cache", str(tmp_path / "cache")])
    assert res.exit_code == 0, res.output
    cfg = _config(out)
    assert (cfg["model"]["name"], cfg["data"]["name"]) == ("mynets:tiny", "mynets:noise")
    layers = json.loads((out / "layer" / "zarr.json").read_text())["attributes"]["labels"]
    assert layers == ["0.weight", "3.weight"]  # tiny's convolution and linear head
    sizes = json.loads((out / "layer_shape" / "zarr.json").read_text())["attributes"]["labels"]
    assert sizes == ["4x1x3x3", "2x256"]  # noise: 1 channel, 8x8, 2 classes


BAD = [
    (
        ["--model-name", "nosuch_pkg.nets:tiny"],
        "error: --model-name: unknown model 'nosuch_pkg.nets:tiny': no module named 'nosuch_pkg' "
        "(install it or add its folder to PYTHONPATH)",
    ),
    (
        ["--model-name", "mynets:nope"],
        "error: --model-name: unknown model 'mynets:nope': 'mynets' has no attribute 'nope'",
    ),
    (
        ["--model-name", "mynets:NOT_A_FACTORY"],
        "error: --model-name: model 'mynets:NOT_A_FACTORY' is not callable (a value of type int); "
        "name a factory function or class",
    ),
    (
        ["--model-name", "mynets.broken:net"],
        "error: --model-name: model 'mynets.broken:net': importing module 'mynets.broken' failed: "
        "RuntimeError: this module is broken",
    ),
    (
        ["--data-name", "mynets:nope"],
        "error: --data-name: unknown dataset 'mynets:nope': 'mynets' has no attribute 'nope'",
    ),
    (
        ["--model-name", "mynets:needs_depth"],
        "error: --model-name: model 'mynets:needs_depth': cannot call the factory: it requires "
        "depth; it may take (in_channels, num_classes, image_size), any of them by name, or "
        "nothing",
    ),
]


@pytest.mark.parametrize("args, line", BAD)
def test_record_with_a_bad_import_path_fails_in_one_line(mynets, tmp_path, args, line):
    out = tmp_path / "out.zarr"
    res = runner.invoke(app, ["record", *args, "--out", str(out), "--cache", str(tmp_path / "c")])
    assert res.exit_code == 2, res.output
    assert res.stderr.splitlines() == [line]
    assert not out.exists() and not (tmp_path / "c").exists()  # nothing trained or written


@pytest.mark.parametrize("args, line", [*BAD[:2], BAD[-1]])
def test_study_with_a_bad_import_path_fails_in_one_line(mynets, tmp_path, args, line):
    out = tmp_path / "out"
    res = runner.invoke(app, ["study", "blocks", "--size", "tiny", "--out", str(out), *args])
    assert res.exit_code == 2, res.output
    assert [s for s in res.stderr.splitlines() if s.strip()] == [line]
    assert not out.exists()


@pytest.mark.slow
def test_a_study_grid_runs_an_imported_model_on_dask_workers(mynets, tmp_path, monkeypatch):
    """The cheapest grid (blocks, tiny, one seed: 4 runs) on a local dask cluster: its worker is
    another process, which finds ``mynets`` through PYTHONPATH and the name in each
    configuration."""
    from shedding.studies import STUDIES

    pids = tmp_path / "pids.txt"  # every process that builds mynets:tiny writes its id here
    monkeypatch.setenv("MYNETS_PID_LOG", str(pids))
    out = tmp_path / "study"
    args = ["study", "blocks", "--size", "tiny", "--seeds", "1", "--workers", "1"]
    args += ["--train-duration", "2ep", "--model-name", "mynets:tiny", "--out", str(out)]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    _, _, runs = STUDIES.get("blocks").plan(
        "tiny", seeds=1, overrides={"train.duration": "2ep", "model.name": "mynets:tiny"}
    )
    stores = sorted((out / "runs").glob("*.zarr"))
    assert len(stores) == len({r.config.hash() for r in runs}) == 4
    assert all(_config(s)["model"]["name"] == "mynets:tiny" for s in stores)
    manifest = json.loads((out / "runs" / "grid.json").read_text())
    assert manifest["counts"] == {"complete": 4}
    built_in = {int(pid) for pid in pids.read_text().split()}
    assert built_in - {os.getpid()}  # the worker, another process, imported mynets and built it
    assert "Every run" in (out / "report.html").read_text()
