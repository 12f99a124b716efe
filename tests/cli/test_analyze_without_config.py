"""`shedding analyze` and `compare` on stores without a configuration: runs are grouped and matched
with their controls by the store attributes condition, seed, control and line_sparsity alone, and
give the same verdicts and statistics as the built-in stores they were copied from."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import pytest
import xarray as xr
import zarr
from typer.testing import CliRunner

from shedding.analysis.cascade import window_steps
from shedding.analysis.io import open_run
from shedding.analysis.summary import summarize
from shedding.cli.main import app

runner = CliRunner()
CONDITION = {
    "gmp": "gmp 0.5, lr_rewind",
    "random": "random 0.5, lr_rewind",
    "control": "control 0.5 (lr_rewind)",
}  # the names the built-in trainer gives these conditions
# what a store recorded outside the trainer may lack, beside its configuration
NOT_WATCHED = (
    "config",
    "method",
    "technique",
    "schedule",
    "T",
    "t",
    "rounds",
    "iterations_per_epoch",
    "schedule_offset",
    "dataset",
    "world_size",
    "device",
    "final_test_accuracy",
)


def _rewrite(src: Path, dst: Path, drop: tuple[str, ...] = (), **attrs: Any) -> Path:
    """A copy of the store ``src`` at ``dst`` with the root attributes ``drop`` removed and
    ``attrs`` set, its metadata consolidated again."""
    shutil.copytree(src, dst)
    meta = json.loads((dst / "zarr.json").read_text())
    for key in drop:
        meta["attributes"].pop(key, None)
    meta["attributes"].update(attrs)
    (dst / "zarr.json").write_text(json.dumps(meta))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr's note that consolidated metadata is a v3 extension
        zarr.consolidate_metadata(str(dst))
    return dst


def _identity(name: str, **changes: Any) -> dict[str, Any]:
    """The attributes a watched run of fixture run ``name`` (like 'gmp-s1') would carry."""
    method, seed = name.split("-s")
    attrs = {
        "condition": CONDITION[method],
        "seed": int(seed),
        "control": method == "control",
        "line_sparsity": 0.5,
    }
    return {**attrs, **changes}


@pytest.fixture(scope="module")
def variants(recorded_seeds, tmp_path_factory) -> dict[str, dict[str, Path]]:
    """The fixture's six runs as recorded, without a configuration, and as stores recorded before
    the identity attributes existed (configuration only)."""
    root = tmp_path_factory.mktemp("variants")
    no_config = {
        n: _rewrite(p, root / "no_config" / p.name, ("config",), **_identity(n))
        for n, p in recorded_seeds.items()
    }
    old = {
        n: _rewrite(p, root / "old" / p.name, ("condition", "line_sparsity", "control"))
        for n, p in recorded_seeds.items()
    }
    minimal = {
        n: _rewrite(p, root / "minimal" / p.name, NOT_WATCHED, **_identity(n))
        for n, p in recorded_seeds.items()
    }
    return {"original": recorded_seeds, "no_config": no_config, "old": old, "minimal": minimal}


def _analyze(stores: dict[str, Path], *args: str) -> dict[str, Any]:
    res = runner.invoke(app, ["analyze", *map(str, stores.values()), "--json", *args])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_analyze_gives_the_same_json_without_a_configuration(variants):
    for n, p in variants["no_config"].items():
        attrs = open_run(p).attrs
        assert "config" not in attrs and attrs["condition"] == CONDITION[n.split("-s")[0]]
    original = _analyze(variants["original"])
    assert {c["condition"]: c["seeds"] for c in original["conditions"]} == {
        CONDITION["gmp"]: 2,
        CONDITION["random"]: 2,
    }
    assert {r["run"]: r["verdict"] for r in original["runs"]}["control-s1"] == "control"
    assert all(c["verdict"] != "no control" for c in original["conditions"])
    assert _analyze(variants["no_config"]) == original
    assert _analyze(variants["old"]) == original


def test_the_condition_attribute_names_and_groups(variants, tmp_path):
    renamed = {
        n: _rewrite(p, tmp_path / p.name, condition=f"mine-{n.split('-s')[0]}")
        for n, p in variants["no_config"].items()
    }
    original, got = _analyze(variants["original"]), _analyze(renamed)
    assert [c["condition"] for c in got["conditions"]] == ["mine-gmp", "mine-random"]
    for a, b in zip(original["conditions"], got["conditions"], strict=True):
        assert {**a, "condition": None} == {**b, "condition": None}
    assert got["runs"] == original["runs"]


def test_a_control_is_matched_by_its_seed_attribute(variants, tmp_path):
    stores = dict(variants["no_config"])
    runs = {n: open_run(p) for n, p in stores.items()}
    assert summarize(runs, overlaps=False).control_of == {
        "gmp-s0": "control-s0",
        "random-s0": "control-s0",
        "control-s0": None,
        "gmp-s1": "control-s1",
        "random-s1": "control-s1",
        "control-s1": None,
    }
    for s, other in ((0, 1), (1, 0)):  # the controls swap seeds
        name = f"control-s{s}"
        stores[name] = _rewrite(stores[name], tmp_path / f"{name}.zarr", seed=other)
    swapped = {n: open_run(p) for n, p in stores.items()}
    summary = summarize(swapped, overlaps=False)
    assert summary.control_of["gmp-s0"] == "control-s1"
    assert summary.control_of["random-s1"] == "control-s0"
    forced = summarize(
        {"gmp-s0": swapped["gmp-s0"], "control-s1": swapped["control-s1"]},
        control="control-s1",
        overlaps=False,
    )
    assert summary.detections["gmp-s0"].identical(forced.detections["gmp-s0"])
    assert not summary.detections["gmp-s0"].identical(
        summarize(runs, overlaps=False).detections["gmp-s0"]
    )


def test_analyze_and_compare_on_stores_with_the_identity_alone(variants, tmp_path):
    ds = open_run(variants["minimal"]["gmp-s0"])
    assert not set(NOT_WATCHED) & set(ds.attrs)
    original = _analyze(variants["original"])
    out = tmp_path / "report.html"
    got = _analyze(variants["minimal"], "--out", str(out))  # 5ep: epochs from epoch_step
    assert out.exists()
    assert got["conditions"] == original["conditions"]
    for a, b in zip(original["runs"], got["runs"], strict=True):
        assert b["method"] is None and b["technique"] is None
        assert {**a, "method": None, "technique": None} == b
    res = runner.invoke(app, ["analyze", *map(str, variants["minimal"].values())])
    assert res.exit_code == 0 and "None" not in res.stdout, res.output

    pair = ["gmp-s0", "random-s0", "control-s0"]
    for kind in ("no_config", "minimal"):
        args = ["compare", *(str(variants[kind][n]) for n in pair), "--json"]
        res, ref = (
            runner.invoke(app, args),
            runner.invoke(
                app, ["compare", *(str(variants["original"][n]) for n in pair), "--json"]
            ),
        )
        assert res.exit_code == 0 and ref.exit_code == 0, res.output
        assert json.loads(res.stdout) == json.loads(ref.stdout)
        report = tmp_path / f"compare-{kind}.html"
        res = runner.invoke(app, [*args[:-1], "--out", str(report)])
        assert res.exit_code == 0 and report.exists(), res.output


def test_two_runs_of_one_condition_and_seed_are_an_error(variants, tmp_path):
    stores = variants["no_config"]
    twin = _rewrite(stores["gmp-s0"], tmp_path / "twin.zarr")
    res = runner.invoke(app, ["analyze", *map(str, stores.values()), str(twin)])
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert res.exit_code == 2 and len(lines) == 1, res.output
    assert str(stores["gmp-s0"]) in lines[0] and str(twin) in lines[0] and "seed 0" in lines[0]
    other = _rewrite(stores["gmp-s0"], tmp_path / "other.zarr", condition="gmp again")
    data = _analyze({**stores, "other": other})
    by_name = {c["condition"]: c for c in data["conditions"]}
    assert by_name["gmp again"]["seeds"] == 1 and by_name[CONDITION["gmp"]]["seeds"] == 2


def test_epochs_from_the_recorded_epochs_when_the_store_does_not_say():
    def store(epochs: list[int], steps: list[int]) -> xr.Dataset:
        return xr.Dataset(
            coords={"epoch": epochs, "epoch_step": ("epoch", steps)}, attrs={"path": "/r/w.zarr"}
        )

    assert window_steps(store([-1, 0, 1, 2], [-45, 0, 45, 90]), "5ep") == 225
    assert window_steps(store([1, 3], [12, 36]), "2ep3it") == 27
    assert window_steps(store([1], [12]), "30it") == 30  # steps need no epoch length
    for epochs, steps in (([1], [12]), ([1, 2, 3], [12, 24, 40]), ([1, 2], [12, 12])):
        with pytest.raises(ValueError) as err:
            window_steps(store(epochs, steps), "5ep")
        assert "\n" not in str(err.value) and "/r/w.zarr" in str(err.value)
        assert "give the window in steps" in str(err.value)
