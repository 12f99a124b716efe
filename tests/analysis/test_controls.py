"""A run is measured against the control that shares its setting, seed and line
(shedding.analysis.controls), or none."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
import xarray as xr
from conftest import tiny_config
from typer.testing import CliRunner

from shedding.analysis.controls import line_sparsity, match_controls
from shedding.analysis.io import open_run
from shedding.analysis.summary import summarize
from shedding.cli.main import app
from shedding.config import to_dict
from shedding.studies.cascade_results import cascade_results


@pytest.fixture(scope="module")
def extra_control(recorded_seeds, tmp_path_factory) -> Path:
    """A control of seed 0 at sparsity 0.2 (the seed fixtures' runs and controls are at 0.5), same
    cache."""
    from shedding.experiment import record

    cfg = tiny_config("none", sparsity=0.2)
    cfg.seed = 0
    out = tmp_path_factory.mktemp("extra") / "control20-s0.zarr"
    return record(cfg, out, cache_dir=recorded_seeds["gmp-s0"].parent / "cache")


@pytest.fixture(scope="module")
def opened(recorded_seeds, extra_control) -> dict[str, xr.Dataset]:
    return {
        **{n: open_run(p) for n, p in recorded_seeds.items()},
        "control20-s0": open_run(extra_control),
    }


def _fake(method: str, **prune) -> xr.Dataset:
    """A store's attributes only (nothing recorded), for the line-sparsity rule of each schedule."""
    cfg = tiny_config(method)
    for k, v in prune.items():
        setattr(cfg.prune, k, v)
    return xr.Dataset(
        attrs={"config": to_dict(cfg), "control": method == "none", "alpha": cfg.record.alpha}
    )


def test_a_control_of_another_sparsity_changes_nothing(opened):
    base = {n: ds for n, ds in opened.items() if n != "control20-s0"}
    without, with_extra = summarize(base), summarize(opened)
    assert (
        with_extra.control_of["gmp-s0"] == "control-s0"
        and with_extra.control_of["random-s0"] == "control-s0"
    )
    assert {n: with_extra.control_of[n] for n in base} == without.control_of
    rows = {r["run"]: r for r in with_extra.table()}
    for r in without.table():
        assert r.keys() == rows[r["run"]].keys()
        for k, v in r.items():  # exactly equal (NaN where both are NaN)
            assert v == rows[r["run"]][k] or (v != v and rows[r["run"]][k] != rows[r["run"]][k]), (
                r["run"],
                k,
            )
    for n in base:
        assert with_extra.detections[n].identical(without.detections[n]), n
    assert [c["condition"] for c in with_extra.condition_table()] == [
        c["condition"] for c in without.condition_table()
    ]
    for label, bands in without.bands.items():
        for k, band in bands.items():
            assert with_extra.bands[label][k].identical(band), (label, k)
    assert (
        "control 0.2 (lr_rewind)" in with_extra.conditions
    )  # its own condition, not merged into the 0.5 one
    assert with_extra.conditions["control 0.2 (lr_rewind)"] == ["control20-s0"]


def test_no_control_unless_setting_seed_and_line_agree(opened):
    gmp = opened["gmp-s0"]
    other_alpha = opened["control-s0"].copy()
    other_alpha.attrs = copy.deepcopy(other_alpha.attrs)
    other_alpha.attrs["alpha"] = other_alpha.attrs["config"]["record"]["alpha"] = 0.5
    for ctrl in (
        opened["control20-s0"],
        other_alpha,
        opened["control-s1"],
    ):  # sparsity, alpha, seed
        assert match_controls({"gmp-s0": gmp, "ctrl": ctrl}) == {"gmp-s0": None, "ctrl": None}
    summary = summarize({"gmp-s0": gmp, "control20-s0": opened["control20-s0"]})
    assert summary.control_of["gmp-s0"] is None  # never the one control there is, as before
    assert summary.cascades["gmp-s0"].attrs["verdict"] == "no control"
    assert [c["verdict"] for c in summary.condition_table()] == ["no control"]


def test_line_sparsity_is_the_first_events():
    assert line_sparsity(_fake("gmp", sparsity=0.5)) == 0.5
    assert line_sparsity(_fake("none", sparsity=0.2)) == 0.2
    assert line_sparsity(_fake("gmp", sparsity=0.5, schedule="iterative")) == pytest.approx(0.2)
    assert line_sparsity(
        _fake("gmp", sparsity=0.8, schedule="cascade", cascade_fraction=0.05)
    ) == pytest.approx(0.05)
    gradual = line_sparsity(_fake("gmp", sparsity=0.5, schedule="gradual", gradual_events=4))
    assert gradual == pytest.approx(0.5 * (1 - 0.75**3))
    runs = {
        "it": _fake("gmp", sparsity=0.5, schedule="iterative"),
        "c20": _fake("none", sparsity=0.2),
        "c50": _fake("none", sparsity=0.5),
        "shot": _fake("random", sparsity=0.5),
    }
    assert match_controls(runs) == {"it": "c20", "c20": None, "c50": None, "shot": "c50"}


def test_two_equal_controls_are_an_error(recorded_seeds, opened, tmp_path):
    twin = Path(shutil.copytree(recorded_seeds["control-s0"], tmp_path / "twin.zarr"))
    runs = {"gmp-s0": opened["gmp-s0"], "control-s0": opened["control-s0"], "twin": open_run(twin)}
    with pytest.raises(ValueError) as err:
        summarize(runs)
    message = str(err.value)
    assert (
        "\n" not in message
        and str(recorded_seeds["control-s0"]) in message
        and str(twin) in message
    )
    assert (
        summarize(runs, control="twin").control_of["gmp-s0"] == "twin"
    )  # --control still decides alone

    res = CliRunner().invoke(
        app,
        [
            "analyze",
            str(recorded_seeds["gmp-s0"]),
            str(recorded_seeds["control-s0"]),
            str(twin),
            "--out",
            str(tmp_path / "r.html"),
        ],
    )
    assert res.exit_code == 2, res.output
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert (
        len(lines) == 1 and str(twin) in lines[0] and str(recorded_seeds["control-s0"]) in lines[0]
    ), res.stderr
    assert not (tmp_path / "r.html").exists()


def test_cascade_study_matches_by_the_same_rule(opened):
    from shedding.studies.study_runs import Entry, StudyRuns

    entries, runs = [], {}
    for name, ds in opened.items():
        p = ds.attrs["config"]["prune"]
        factors = {
            "part": "main",
            "condition": "c",
            "method": p["method"],
            "sparsity": p["sparsity"],
            "schedule": "oneshot",
            "seed": int(ds.attrs["seed"]),
        }
        entries.append(Entry(name, factors, ds.attrs["path"], "complete"))
        runs[name] = ds
    res = cascade_results(StudyRuns(entries, runs, {n: float("nan") for n in runs}))
    det = summarize(opened).detections
    for name in ("gmp-s0", "random-s0", "gmp-s1"):
        assert float(res.runs.excess_peak.sel(run=name)) == float(
            det[name].isel(event=0, line=0).excess_peak
        )
    assert str(res.runs.verdict.sel(run="control20-s0").values) == "control"
