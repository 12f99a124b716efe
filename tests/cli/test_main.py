"""The CLI: bad input fails with one line and status 2 before anything is trained or written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shedding.cli.main import app

runner = CliRunner()


def _invoke(args: list[str], cwd: Path):
    import os

    old = os.getcwd()
    os.chdir(cwd)
    try:
        return runner.invoke(app, args)
    finally:
        os.chdir(old)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--prune-method", "magic"], "--prune-method: 'magic' is not one of"),
        (["--prune-sparsity", "1.5"], "--prune-sparsity: 1.5 is not in [0, 1)"),
        (["--prune-sparsity", "lots"], "prune.sparsity: expected a number"),
        (["--train-duration", "40 epochs"], "--train-duration: bad step string"),
        (
            ["--retrain-duration", "50ep", "--train-duration", "40ep"],
            "longer than --train-duration",
        ),
        (
            [
                "--retrain-technique",
                "weight_rewind",
                "--retrain-duration",
                "5ep",
                "--train-duration",
                "4ep",
            ],
            "t must be at most T",
        ),
        (
            ["--model-dense-layers", "nope.weight"],
            "--model-dense-layers: 'nope.weight' is not a Conv/Linear layer",
        ),
        (["--model-name", "resnet9000"], "--model-name: 'resnet9000' is not one of"),
        (["--data-name", "cifar10", "--data-root", "/nonexistent/cifar"], "/nonexistent/cifar"),
        (["--prune-block-shape", "2,2"], "only used with --prune-method block"),
        (["--config", "missing.toml"], "config file not found"),
        (["--recipe", "nope"], "unknown recipe 'nope'"),
        (["--device", "cuda:0"], None),
    ],
)
def test_bad_record_options_fail_fast(args, fragment, tmp_path):
    import torch

    if args[:2] == ["--device", "cuda:0"]:
        if torch.cuda.is_available():
            pytest.skip("CUDA present: cuda:0 is valid here")
        fragment = "CUDA is not available"
    res = _invoke(["record", *args, "--out", "out.zarr"], tmp_path)
    assert res.exit_code == 2, res.output
    lines = (
        res.stderr.splitlines()
    )  # exactly one: no empty progress display before a late check's error
    assert len(lines) == 1 and lines[0].startswith("error:"), res.stderr
    assert fragment in lines[0]
    assert (
        not (tmp_path / "out.zarr").exists() and not (tmp_path / "runs").exists()
    )  # nothing trained or written


def test_bad_config_file(tmp_path):
    (tmp_path / "bad.toml").write_text("[prune]\nsparsityy = 0.5\n")
    res = _invoke(["record", "--config", "bad.toml"], tmp_path)
    assert res.exit_code == 2 and "unknown option prune.sparsityy" in res.stderr
    (tmp_path / "broken.toml").write_text("[prune\n")
    res = _invoke(["record", "--config", "broken.toml"], tmp_path)
    assert res.exit_code == 2 and "invalid TOML" in res.stderr


def test_config_layering_and_print_config(tmp_path):
    (tmp_path / "c.toml").write_text(
        '[prune]\nsparsity = 0.5\nmethod = "random"\n[train]\nlr = 0.05\n'
    )
    res = _invoke(
        [
            "record",
            "--recipe",
            "cifar10_resnet20",
            "--config",
            "c.toml",
            "--prune-sparsity",
            "0.7",
            "--print-config",
        ],
        tmp_path,
    )
    assert res.exit_code == 0, res.output
    import tomllib

    cfg = tomllib.loads(res.stdout)
    assert cfg["prune"]["sparsity"] == 0.7 and cfg["prune"]["method"] == "random"  # CLI over file
    assert cfg["train"]["lr"] == 0.05 and cfg["train"]["milestones"] == [
        "91ep",
        "136ep",
    ]  # file over recipe
    assert cfg["model"]["name"] == "resnet20"


def test_record_refuses_existing_store(recorded, tmp_path):
    res = _invoke(
        [
            "record",
            "--train-duration",
            "1ep",
            "--retrain-duration",
            "1ep",
            "--out",
            str(recorded["gmp"]),
            "--cache",
            str(tmp_path / "cache"),
        ],
        tmp_path,
    )
    assert res.exit_code == 2 and "already exists; pass --overwrite" in res.stderr
    assert not (tmp_path / "cache").exists()


def test_record_analyze_info_roundtrip(tmp_path):
    res = _invoke(
        [
            "record",
            "--train-duration",
            "2ep",
            "--retrain-duration",
            "1ep",
            "--prune-sparsity",
            "0.3",
            "--out",
            "a.zarr",
        ],
        tmp_path,
    )
    assert res.exit_code == 0, res.output
    assert "recorded: a.zarr" in res.stdout
    res = _invoke(
        [
            "record",
            "--train-duration",
            "2ep",
            "--retrain-duration",
            "1ep",
            "--prune-sparsity",
            "0.3",
            "--prune-method",
            "none",
            "--out",
            "c.zarr",
        ],
        tmp_path,
    )
    assert res.exit_code == 0, res.output
    res = _invoke(["analyze", "a.zarr", "c.zarr", "--json", "--window", "round"], tmp_path)
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    rows = {r["run"]: r for r in data["runs"]}
    assert rows["c"]["verdict"] == "control" and rows["a"]["verdict"] in ("cascade", "no cascade")
    assert rows["a"]["sparsity"] == pytest.approx(0.3, abs=1e-4)
    assert data["overlaps"][0]["a"] == "a"
    res = _invoke(["analyze", "a.zarr", "c.zarr", "--out", "r.html"], tmp_path)
    assert res.exit_code == 0 and (tmp_path / "r.html").exists()
    res = _invoke(["info", "a.zarr"], tmp_path)
    assert res.exit_code == 0 and "status: complete" in res.stdout and "conv2.weight" in res.stdout


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["analyze", "nothing.zarr"], "not a Zarr store"),
        (["analyze", "{gmp}", "--out", "report.txt"], "use a .html file name"),
        (
            ["analyze", "{gmp}", "--control", "elsewhere.zarr"],
            "--control elsewhere.zarr: not one of the runs",
        ),
        (["analyze", "{gmp}", "--window", "soon"], "bad step string"),
        (["info", "nothing.zarr"], "not a Zarr store"),
    ],
)
def test_bad_analyze_input(recorded, tmp_path, args, fragment):
    args = [a.format(gmp=recorded["gmp"]) for a in args]
    res = _invoke(args, tmp_path)
    assert res.exit_code == 2, res.output
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and fragment in lines[0], res.stderr
    assert not (tmp_path / "report.txt").exists()


def test_list_shows_registries(tmp_path):
    res = _invoke(["list"], tmp_path)
    assert res.exit_code == 0
    for name in (
        "small_cnn",
        "resnet56",
        "digits",
        "cifar10",
        "gmp",
        "block",
        "weight_rewind",
        "cifar10_resnet20",
    ):
        assert name in res.stdout


def test_crash_during_run_is_one_line_and_marks_store(tmp_path, monkeypatch):
    from shedding.recording.recorder import Recorder

    def boom(self, state):
        raise RuntimeError("CUDA out of memory\nmore detail")

    monkeypatch.setattr(Recorder, "on_epoch_end", boom)
    res = _invoke(
        ["record", "--train-duration", "2ep", "--retrain-duration", "2ep", "--out", "x.zarr"],
        tmp_path,
    )
    assert res.exit_code == 1
    lines = [
        line for line in res.stderr.splitlines() if line.strip() and "steps" not in line
    ]  # minus progress
    assert lines == [
        "error: run failed: RuntimeError: CUDA out of memory; x.zarr is marked failed "
        "(SHEDDING_DEBUG=1 shows the traceback)"
    ]
    res = _invoke(["info", "x.zarr"], tmp_path)
    assert "status: failed" in res.stdout and "CUDA out of memory" in res.stdout


def test_analyze_lines_and_conditions_json(recorded_seeds, tmp_path):
    stores = [str(p) for p in recorded_seeds.values()]
    res = _invoke(
        ["analyze", *stores, "--json", "--line", "gmp:1", "--line", "std:0.5", "--window", "round"],
        tmp_path,
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    conds = {c["condition"]: c for c in data["conditions"]}
    assert {c["seeds"] for c in conds.values()} == {2}
    assert all(c["verdict"].split(" (")[0] in ("cascade", "no cascade") for c in conds.values())
    lines = {(r["run"], r["line"]) for r in data["lines"]}
    assert ("random-s1", "std:0.5") in lines and ("gmp-s0", "gmp:1") in lines
    res = _invoke(["analyze", *stores, "--line", "bogus:1"], tmp_path)
    assert res.exit_code == 2 and "bad line 'bogus:1'" in res.stderr


def test_analyze_tables_write_numbers_as_the_reports_do(recorded_seeds, tmp_path):
    """The terminal tables: three significant figures, signed excess, its CI as the reports write
    it, a dash for none (a control's excess and onset), no scientific notation or -1."""
    import re

    from shedding.reports.numbers import ci_pair, number

    stores = [str(p) for p in recorded_seeds.values()]
    data = json.loads(_invoke(["analyze", *stores, "--json"], tmp_path).stdout)
    res = _invoke(["analyze", *stores], tmp_path)
    assert res.exit_code == 0, res.output
    text = res.stdout
    assert not re.search(r"\d[eE][+-]?\d", text) and not re.search(r"│\s+-1\s+│", text)
    for c in data["conditions"]:
        value, bounds = ci_pair(c["excess_peak"], *c["excess_peak_ci"], signed=True)
        assert value in text and (bounds or "—") in text, (value, bounds)
    control = next(r for r in data["runs"] if r["verdict"] == "control")
    row = next(line for line in text.splitlines() if line.startswith(f"│ {control['run']} "))
    assert row.count("—") >= 2  # no excess, no onset
    assert number(control["peak_S"]) in row


def test_compare_command(recorded, tmp_path):
    stores = [str(recorded[n]) for n in ("gmp", "random", "control")]
    res = _invoke(["compare", *stores, "--json"], tmp_path)
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    i, j = data["runs"].index("gmp"), data["runs"].index("random")
    s = data["scopes"].index("all")
    from shedding.analysis import compare_kept, open_run

    direct = compare_kept(open_run(recorded["gmp"]), open_run(recorded["random"])).sel(scope="all")
    assert data["jaccard"][s][i][j] == pytest.approx(float(direct.jaccard))
    assert data["p_value"][s][i][j] == pytest.approx(float(direct.p_value))
    res = _invoke(
        ["compare", *stores, "--effective", "--out", "cmp.html", "--block", "2x2"], tmp_path
    )
    assert res.exit_code == 0, res.output
    assert "effective sets" in res.stdout and (tmp_path / "cmp.html").exists()
    for args, fragment in (
        (["compare", stores[0]], "at least two runs"),
        (["compare", *stores, "--block", "4by4"], "--block '4by4'"),
    ):
        res = _invoke(args, tmp_path)
        assert res.exit_code == 2 and fragment in res.stderr, res.stderr


def test_help_is_unchanged_by_one_line_usage_errors(tmp_path):
    for args, code in ((["--help"], 0), (["record", "--help"], 0), ([], 2), (["study"], 2)):
        res = _invoke(args, tmp_path)
        assert res.exit_code == code and "Usage:" in res.stdout and not res.stderr, (
            args,
            res.output,
        )
    res = _invoke(["analyze"], tmp_path)
    lines = res.stderr.splitlines()
    assert (
        res.exit_code == 2
        and len(lines) == 1
        and lines[0].startswith("error: Missing argument 'runs'.")
    )
    assert lines[0].endswith(" analyze --help')")
