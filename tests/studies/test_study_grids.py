"""Studies: each grid is exactly the product of its factor levels, configurations follow the
factors, options layer as documented, and ``shedding study`` writes its report, fails bad input with
one line and exits non-zero when a run fails."""

from __future__ import annotations

import dataclasses
import itertools
import re
from pathlib import Path

import pytest
import xarray as xr

from shedding.config import ConfigError
from shedding.studies import STUDIES
from shedding.studies.rewinding_grid import density_lattice
from shedding.studies.study_base import fraction_of
from shedding.validate import validate_run_config
from tests.conftest import STUDY_OVERRIDES, run_study_cli


def test_registry_has_the_four_studies():
    assert STUDIES.names() == ["blocks", "cascade", "map", "rewinding"]
    for name in STUDIES.names():
        assert set(STUDIES.get(name).sizes) >= {"quick", "full", "tiny"}


@pytest.mark.parametrize(
    "duration, fraction, expected",
    [
        ("12ep", 0.5, "6ep"),
        ("12ep", 1.0, "12ep"),
        ("182ep", 0.25, "46ep"),
        ("500it", 0.5, "250it"),
        ("2ep", 0.1, "1ep"),
        ("10ep20it", 0.5, "5ep10it"),
    ],
)
def test_fraction_of(duration, fraction, expected):
    assert fraction_of(duration, fraction) == expected


def test_fraction_of_rejects_budgets_outside_0_1():
    with pytest.raises(ConfigError, match="not in"):
        fraction_of("12ep", 1.5)


def _levels(runs, *names):
    return [tuple(getattr(r.factors, n) for n in names) for r in runs]


@pytest.mark.parametrize("size", ["quick", "full"])
def test_rewinding_grid_is_the_product(size):
    study = STUDIES.get("rewinding")
    base, grid, runs = study.plan(size)
    names = ("technique", "schedule", "sparsity", "budget", "seed")
    expected = [
        (t, "oneshot", s, b, seed)
        for s in grid.oneshot_sparsities
        for b in grid.oneshot_budgets
        for t in grid.techniques
        for seed in range(grid.seeds)
    ]
    expected += [
        (t, "iterative", grid.iterative_sparsity, b, seed)
        for b in grid.iterative_budgets
        for t in grid.techniques
        for seed in range(grid.seeds)
    ]
    assert sorted(_levels(runs, *names)) == sorted(expected)
    assert len({r.label for r in runs}) == len(runs) == len(expected)
    for r in runs:
        f, c = r.factors, r.config
        assert (c.retrain.technique, c.prune.schedule, c.prune.sparsity, c.seed) == (
            f.technique,
            f.schedule,
            f.sparsity,
            f.seed,
        )
        assert (
            c.retrain.duration == fraction_of(c.train.duration, f.budget)
            and c.prune.method == "gmp"
        )
        assert c.record.every == 0  # summary-only stores
    assert base.train.schedule == "multistep"
    assert base.train.milestones == (["6ep", "9ep"] if size == "quick" else ["20ep", "30ep"])
    assert min(grid.oneshot_sparsities) > 0 and grid.oneshot_sparsities == tuple(
        sorted(grid.oneshot_sparsities)
    )


def test_rewinding_compressions_are_on_rendas_lattice():
    from shedding.pruning.schedule import sparsity_targets

    assert [round(1 / (1 - s), 2) for s in density_lattice(7, 10, 14)] == [4.77, 9.31, 22.74]
    for size in ("quick", "full"):
        _, grid, runs = STUDIES.get("rewinding").plan(size)
        it = next(r for r in runs if r.factors.schedule == "iterative")
        targets = sparsity_targets(it.config.prune)
        assert (
            len(set(targets)) == len(targets) and targets[-1] == grid.iterative_sparsity
        )  # no repeated last round
        assert all(
            any(abs(1 / (1 - s) - 0.8**-k) < 1e-6 for k in range(1, 30)) for s in targets
        )  # on the lattice


@pytest.mark.parametrize("size", ["quick", "full"])
def test_blocks_grid_is_the_product(size):
    study = STUDIES.get("blocks")
    _, grid, runs = study.plan(size)
    expected = [
        (t, f"{bh}x{bw}", sp, seed)
        for sp in grid.sparsities
        for (bh, bw) in grid.block_shapes
        for t in grid.techniques
        for seed in range(grid.seeds)
    ]
    assert sorted(_levels(runs, "technique", "block", "sparsity", "seed")) == sorted(expected)
    for r in runs:
        c, f = r.config, r.factors
        assert (
            c.prune.method == "block"
            and f"{c.prune.block_shape[0]}x{c.prune.block_shape[1]}" == f.block
        )
        assert c.retrain.duration == (
            c.train.duration
            if f.technique == "reinit"
            else fraction_of(c.train.duration, grid.budget)
        )


@pytest.mark.parametrize("size", ["quick", "full"])
def test_cascade_grid_is_the_product_with_a_control_per_condition_and_seed(size):
    study = STUDIES.get("cascade")
    _, grid, runs = study.plan(size)
    expected = [
        ("main", c.name, m, sp, "oneshot", seed)
        for c in grid.conditions
        for sp in grid.sparsities
        for m in (*grid.methods, "none")
        for seed in range(grid.seeds)
    ]
    # cascade-aware pruning against one-shot and iterative GMP at one final sparsity, in the first
    # condition
    expected += [
        ("aware", grid.conditions[0].name, "gmp", grid.aware_sparsity, schedule, seed)
        for schedule in grid.aware_schedules
        for seed in range(grid.seeds)
    ]
    got = [dataclasses.astuple(r.factors) for r in runs]
    assert sorted(got) == sorted(expected)
    for r in runs:
        if r.factors.part == "aware":
            validate_run_config(
                r.config
            )  # the cascade schedule's windows fit the study's recording intervals
            assert (
                r.config.prune.schedule == r.factors.schedule
                and r.config.prune.sparsity == grid.aware_sparsity
            )
    runs = [r for r in runs if r.factors.part == "main"]
    by = {dataclasses.astuple(r.factors): r.config for r in runs}
    for c in grid.conditions:
        for sp, seed in itertools.product(grid.sparsities, range(grid.seeds)):
            ctrl = by[("main", c.name, "none", sp, "oneshot", seed)]
            for m in grid.methods:
                run = by[("main", c.name, m, sp, "oneshot", seed)]
                # the control differs from its pruned runs only in the prune method
                assert dataclasses.replace(run.prune, method="none") == ctrl.prune
                assert (run.train, run.retrain, run.seed) == (ctrl.train, ctrl.retrain, ctrl.seed)
    conds = {c.name: c for c in grid.conditions}
    small = by[("main", "sgd_small_lr", "gmp", grid.sparsities[0], "oneshot", 0)]
    assert small.retrain.technique == "finetune" and small.retrain.finetune_lr == 1e-3
    adam = by[("main", "adam", "gmp", grid.sparsities[0], "oneshot", 0)]
    assert adam.train.optimizer == "adam" and conds["sgd_high_lr"].expectation.startswith("sheds")
    assert all(r.config.record.every > 0 for r in runs)  # magnitudes for the kept-set convergence


def test_options_layer_over_the_setting_and_milestones_follow_the_duration(tmp_path):
    study = STUDIES.get("rewinding")
    cfg = study.base_config("quick", overrides={"train.duration": "40ep", "model.name": "mlp"})
    assert cfg.train.milestones == ["20ep", "30ep"] and cfg.model.name == "mlp"
    cfg = study.base_config(
        "quick", overrides={"train.duration": "40ep", "train.milestones": "5ep"}
    )
    assert cfg.train.milestones == ["5ep"]
    (tmp_path / "c.toml").write_text('[train]\nduration = "8ep"\n[record]\nevery = 7\n')
    cfg = study.base_config("quick", config_file=tmp_path / "c.toml")
    assert cfg.train.milestones == ["4ep", "6ep"] and cfg.record.every == 7
    cfg = study.base_config("quick", recipe="cifar10_resnet20")
    assert (
        cfg.model.name == "resnet20"
        and cfg.train.milestones == ["91ep", "136ep"]
        and cfg.record.every == 0
    )
    _, grid, runs = study.plan("quick", seeds=1, recipe="cifar10_resnet20")
    assert grid.seeds == 1 and {r.config.seed for r in runs} == {0}
    assert {r.config.retrain.duration for r in runs} == {"91ep", "182ep"}


def test_each_study_writes_its_report(studies):
    for name, out in studies.items():
        html = (out / "report.html").read_text()
        assert "Compared with the paper" in html and "Every run" in html
        _, _, runs = STUDIES.get(name).plan("tiny", overrides=STUDY_OVERRIDES[name])
        assert len(list((out / "runs").glob("*.zarr"))) == len({r.config.hash() for r in runs})
    html = (studies["cascade"] / "report.html").read_text()
    assert (
        "says nothing about cascades" in html
    )  # impossible to miss: the control note is on the page
    assert re.search(
        r"<b>(reproduced|not reproduced|consistent[^<]*|partly[^<]*|inconclusive)</b>", html
    )


def test_rerun_skips_complete_runs(studies):
    before = {
        p: p.stat().st_mtime_ns for p in (studies["blocks"] / "runs").glob("*.zarr/zarr.json")
    }
    res = run_study_cli("blocks", studies["blocks"])
    assert res.exit_code == 0, res.output
    after = {p: p.stat().st_mtime_ns for p in (studies["blocks"] / "runs").glob("*.zarr/zarr.json")}
    assert before == after


def test_a_failed_run_is_listed_the_report_written_and_the_exit_status_1(tmp_path):
    from shedding.grid import run_path

    study = STUDIES.get("blocks")
    _, _, runs = study.plan("tiny", overrides={"train.duration": "2ep"})
    victim = runs[1]
    blocker = run_path(tmp_path / "out" / "runs", victim.config)
    blocker.mkdir(parents=True)
    (blocker / "not-a-store.txt").write_text(
        "this folder is not a run store"
    )  # record refuses to replace it
    res = run_study_cli("blocks", tmp_path / "out")
    assert res.exit_code == 1, res.output
    assert "1 failed" in res.stderr and victim.label in res.stderr
    html = (tmp_path / "out" / "report.html").read_text()
    assert "1 of 8 runs failed" in html and victim.label in html
    done = [p for p in (tmp_path / "out" / "runs").glob("*.zarr") if p != blocker]
    assert len(done) == len(runs) - 1
    assert all(xr.open_zarr(p).attrs["status"] == "complete" for p in done)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--seeds", "0"], "--seeds: 0 must be at least 1"),
        (["--recipe", "nope"], "unknown recipe 'nope'"),
        (["--prune-sparsity", "lots"], "prune.sparsity: expected a number"),
        (["--train-duration", "forever"], "--train-duration: bad step string"),
        (["--data-name", "cifar10", "--data-root", "/nonexistent/cifar"], "/nonexistent/cifar"),
        (
            ["--scheduler", "localhost"],
            "--scheduler: 'localhost' is not 'sync' or a scheduler address",
        ),
        (["--workers", "0"], "--workers: 0 must be at least 1"),
        (["--model-name", "resnet9000"], "--model-name: 'resnet9000' is not one of"),
    ],
)
def test_bad_input_fails_with_one_line_and_writes_nothing(tmp_path, args, fragment):
    from typer.testing import CliRunner

    from shedding.cli.main import app

    res = CliRunner().invoke(
        app, ["study", "rewinding", "--quick", "--out", str(tmp_path / "out"), *args]
    )
    assert res.exit_code == 2, res.output
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and fragment in lines[0], res.stderr
    assert not (tmp_path / "out").exists()


def test_study_help_lists_the_commands():
    from typer.testing import CliRunner

    from shedding.cli.main import app

    res = CliRunner().invoke(app, ["study", "--help"])
    assert res.exit_code == 0 and all(n in res.output for n in ("rewinding", "blocks", "cascade"))


def test_out_must_be_a_folder(tmp_path):
    (tmp_path / "file").write_text("x")
    res = run_study_cli("blocks", tmp_path / "file")
    assert res.exit_code == 2 and "exists and is not a folder" in res.stderr


def test_quick_grids_fit_the_budget_estimate():
    """The quick grids stay small: retraining epochs summed over runs (cascade-aware runs at their
    bound) at most 900; about 700 epochs of digits retraining took 3-4 minutes on 2 busy CPU cores
    (docs/benchmarks.md)."""
    from shedding.config import parse_step
    from shedding.pruning.schedule import plan_rounds

    cost = {}
    for name in STUDIES.names():
        _, _, runs = STUDIES.get(name).plan("quick")
        cost[name] = sum(
            sum(
                r.length
                for r in plan_rounds(
                    run.config.prune,
                    parse_step(run.config.retrain.duration, "").ep,
                    parse_step(run.config.prune.interval, "").ep,
                )
            )
            for run in runs
        )
    assert all(c <= 900 for c in cost.values()), cost


@pytest.mark.slow
def test_quick_blocks_study_from_a_fresh_process(tmp_path):
    """The done criterion, for the cheapest study: `study blocks --quick` in a fresh process, within
    10 minutes, with a complete report (2 min 21 s to 4 min 39 s measured on 2 shared cores;
    docs/benchmarks.md)."""
    import os
    import subprocess
    import sys
    import time

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    started = time.time()
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "shedding.cli.main",
            "study",
            "blocks",
            "--quick",
            "--out",
            str(tmp_path / "q"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert time.time() - started < 600
    html = (tmp_path / "q" / "report.html").read_text()
    assert "48 runs, 48 complete" in html and "Compared with the paper" in html
