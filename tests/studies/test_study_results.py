"""Study analysis: the results Dataset holds what each store recorded, and the reductions compute
what they say (checked against hand-built inputs)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from shedding.grid import run_path
from shedding.studies import STUDIES
from shedding.studies.rewinding_claims import rewinding_claims
from shedding.studies.rewinding_results import max_compression_at_parity
from shedding.studies.study_runs import (
    Entry,
    StudyResults,
    collect,
    points,
    results_dataset,
    seed_reduce,
)
from tests.conftest import STUDY_OVERRIDES


def _results(name: str, out):
    study = STUDIES.get(name)
    _, grid, runs = study.plan("tiny", overrides=STUDY_OVERRIDES[name])
    entries = [
        Entry(r.label, r.factor_dict(), str(run_path(out / "runs", r.config)), "complete")
        for r in runs
    ]
    sr = collect(entries, out / "pretrain")
    return study, grid, runs, sr, study.analyze(sr, grid)


@pytest.mark.parametrize("name", ["rewinding", "blocks", "cascade"])
def test_results_hold_what_each_store_recorded(studies, name):
    study, _, runs, sr, res = _results(name, studies[name])
    ds = res.runs
    assert list(ds.run.values) == [r.label for r in runs]
    for r in runs:
        store = xr.open_zarr(run_path(studies[name] / "runs", r.config))
        row = ds.sel(run=r.label)
        k = int(store.sizes["event"])
        assert int(row.rounds) == k
        assert float(row.final_accuracy) == store.attrs["final_test_accuracy"]
        np.testing.assert_array_equal(
            row.accuracy.values[:k], store.event_final_test_accuracy.values
        )
        np.testing.assert_allclose(
            row.compression.values[:k], 1 / (1 - store.event_sparsity.values)
        )
        assert float(row.accuracy.values[k - 1]) == store.attrs["final_test_accuracy"]
        steps = int((store.step > 0).sum())
        assert int(row.retrain_steps) == steps
        if r.config.prune.schedule in ("oneshot", "iterative"):
            assert steps == k * store.attrs["t"]
        else:  # cascade-aware: its windows, then t after the event that reached the target
            assert steps == int(store.event_step[-1]) + store.attrs["t"]
        for f, v in r.factor_dict().items():
            assert row[f].values.item() == v
        meta = next((studies[name] / "pretrain").glob(f"pretrain-*-s{r.config.seed}-*/meta.json"))
        dense = json.loads(meta.read_text())["test_accuracy"]
        assert float(row.dense_accuracy) == dense
        np.testing.assert_allclose(
            row.delta.values[:k], store.event_final_test_accuracy.values - dense
        )


def test_rewinding_reductions_follow_the_runs(studies):
    _, _, _, _, res = _results("rewinding", studies["rewinding"])
    pts = res.tables["points"]
    table = points(res.runs, ["technique", "schedule", "budget"])
    for i in range(pts.sizes["group"]):
        g = pts.isel(group=i)
        sel = table[
            (table.technique == g.technique.item())
            & (table.schedule == g.schedule.item())
            & np.isclose(table.compression, float(g.compression), rtol=1e-3)
        ]
        assert int(g.n) == len(sel) == 2  # two seeds
        assert float(g.delta_median) == pytest.approx(np.median(sel.delta))
        assert float(g.accuracy_mean) == pytest.approx(np.mean(sel.accuracy))


def test_max_compression_at_parity_on_a_hand_built_dataset():
    # technique a: parity up to 4.77x then below; b: never at parity; c: parity at the largest
    # tested (censored); d: non-monotone, parity again at 9.31x after a dip at 4.77x (the largest
    # compression at parity counts)
    rows = [
        ("a", 1.95, 0.01),
        ("a", 4.77, 0.0),
        ("a", 9.31, -0.02),
        ("a", 22.7, -0.1),
        ("b", 1.95, -0.01),
        ("b", 4.77, -0.03),
        ("c", 1.95, 0.02),
        ("c", 4.77, 0.01),
        ("d", 1.95, 0.0),
        ("d", 4.77, -0.01),
        ("d", 9.31, 0.005),
        ("d", 22.7, -0.2),
    ]
    reduced = xr.Dataset(
        {"delta_median": ("group", [r[2] for r in rows])},
        coords={
            "technique": ("group", [r[0] for r in rows]),
            "compression": ("group", [r[1] for r in rows]),
        },
    )
    out = max_compression_at_parity(reduced, ["technique"])
    got = {
        str(t): (float(m), bool(c), float(n))
        for t, m, c, n in zip(
            out.technique.values,
            out.max_compression.values,
            out.censored.values,
            out.next_compression.values,
            strict=True,
        )
    }
    assert got["a"] == (4.77, False, 9.31)
    assert np.isnan(got["b"][0]) and got["b"][2] == 1.95 and not got["b"][1]
    assert got["c"][:2] == (4.77, True) and np.isnan(got["c"][2])
    assert got["d"] == (9.31, False, 22.7)
    assert float(out.delta_at_max.values[list(out.technique.values).index("a")]) == 0.0


def test_seed_reduce_on_a_hand_built_table():
    table = pd.DataFrame(
        {
            "technique": ["x"] * 3 + ["y"] * 3,
            "seed": [0, 1, 2] * 2,
            "compression": [2.0, 2.0000001, 2.0, 2.0, 2.0, 2.0],
            "accuracy": [0.9, 0.8, 0.7, 0.5, 0.5, 0.5],
            "delta": [0.0, -0.1, -0.3, 0, 0, 0],
        }
    )
    r = seed_reduce(table, ["technique"])
    x = r.isel(group=list(r.technique.values).index("x"))
    assert int(x.n) == 3 and float(x.delta_median) == pytest.approx(-0.1)
    assert float(x.accuracy_mean) == pytest.approx(0.8) and float(x.accuracy_min) == 0.7
    assert float(x.accuracy_low) <= 0.8 <= float(x.accuracy_high)
    y = r.isel(group=list(r.technique.values).index("y"))
    assert (
        float(y.accuracy_low) == float(y.accuracy_high) == 0.5
    )  # identical values: the CI is that value


def test_blocks_claims_compare_the_smallest_and_largest_block(studies):
    from shedding.studies.blocks_claims import blocks_claims

    _, _, _, _, res = _results("blocks", studies["blocks"])
    rows = blocks_claims(res)
    assert [r["claim"].split(",")[0] for r in rows] == [
        "under fine-tuning",
        "random re-initialisation gives the same accuracy for every block size",
    ]
    assert all("4x4 minus 1x1" in r["ours"] or "layer collapse" in r["ours"] for r in rows)


def test_results_dataset_keeps_failed_runs_as_nan_rows(studies):
    study = STUDIES.get("blocks")
    _, _, runs = study.plan("tiny", overrides=STUDY_OVERRIDES["blocks"])
    entries = [
        Entry(
            r.label,
            r.factor_dict(),
            str(run_path(studies["blocks"] / "runs", r.config)),
            "failed" if i == 0 else "complete",
            "boom" if i == 0 else None,
        )
        for i, r in enumerate(runs)
    ]
    res = study.analyze(collect(entries, studies["blocks"] / "pretrain"), study.grid("tiny"))
    assert res.failed == [{"run": runs[0].label, "error": "boom"}]
    assert (
        np.isnan(float(res.runs.final_accuracy.values[0])) and int(res.runs.rounds.values[0]) == -1
    )
    assert res.tables["blocks"].n.sum() == len(runs) - 1


def test_cascade_results_match_the_detection_against_the_matched_control(studies):
    from shedding.analysis import open_run
    from shedding.analysis.cascade import cascade_summary
    from shedding.analysis.overlap import convergence

    _, grid, runs, sr, res = _results("cascade", studies["cascade"])
    ds = res.runs
    by = {
        (r.factors.condition, r.factors.method, r.factors.seed): r
        for r in runs
        if r.factors.part == "main"
    }
    for (cond, method, seed), r in by.items():
        row = ds.sel(run=r.label)
        if method == "none":
            assert str(row.verdict.values) == "control" and np.isnan(float(row.excess_peak))
            continue
        run = open_run(run_path(studies["cascade"] / "runs", r.config))
        ctrl = open_run(run_path(studies["cascade"] / "runs", by[(cond, "none", seed)].config))
        s = cascade_summary(run, ctrl, window=grid.window, min_excess=grid.min_excess)
        assert float(row.excess_peak) == pytest.approx(float(s.excess_peak))
        assert float(row.amplification) == pytest.approx(float(s.amplification))
        assert str(row.verdict.values) == s.attrs["verdict"]
        if method == "random":
            gmp = open_run(run_path(studies["cascade"] / "runs", by[(cond, "gmp", seed)].config))
            c = convergence(run, gmp)
            assert float(row.conv_toward_end) == pytest.approx(
                float(c.toward_above_line.values[-1])
            )
            np.testing.assert_allclose(
                row.convergence.dropna("conv_step").values, c.toward_above_line.values
            )
        else:
            assert np.isnan(float(row.conv_toward_end))
    cond = res.tables["conditions"]
    assert set(zip(cond.condition.values, cond.method.values, strict=True)) == {
        (c.name, m) for c in grid.conditions for m in grid.methods
    }
    for i in range(cond.sizes["group"]):
        sel = (
            (ds.condition == cond.condition.values[i])
            & (ds.method == cond.method.values[i])
            & (ds.part == "main")
        ).values
        assert float(cond.excess_peak.values[i]) == pytest.approx(
            float(ds.excess_peak.values[sel].mean())
        )
        assert int(cond.seeds.values[i]) == grid.seeds
    from shedding.studies.cascade_claims import cascade_claims

    rows = cascade_claims(res)
    assert all(
        set(r) == {"claim", "paper", "ours", "setting", "verdict"} and r["verdict"] for r in rows
    )
    assert any("amplification" in r["claim"] for r in rows) and any(
        "rescue" in r["claim"] for r in rows
    )
    aware = res.tables[
        "aware"
    ]  # cascade-aware pruning against one-shot and iterative GMP, steps from the stores
    assert sorted(map(str, aware.schedule.values)) == sorted(grid.aware_schedules)
    for i, schedule in enumerate(map(str, aware.schedule.values)):
        sel = ((ds.part == "aware") & (ds.schedule == schedule)).values
        assert float(aware.retrain_steps.values[i]) == pytest.approx(
            float(ds.retrain_steps.values[sel].mean())
        )
        assert float(aware.final_accuracy.values[i]) == pytest.approx(
            float(ds.final_accuracy.values[sel].mean())
        )
    bands = res.extras["bands"]
    assert {k[2] for k in bands} == {"gmp", "random", "none"} and all(
        "excess" in b for k, b in bands.items() if k[2] != "none"
    )


def _parity(rows):
    return xr.Dataset(
        {
            "max_compression": ("group", [r[3] for r in rows]),
            "censored": ("group", [r[4] for r in rows]),
        },
        coords={
            "technique": ("group", [r[0] for r in rows]),
            "schedule": ("group", [r[1] for r in rows]),
            "budget": ("group", [r[2] for r in rows]),
        },
    )


@pytest.mark.parametrize(
    "values, verdict",
    [
        ((9.31, 7.45, 2.44), "reproduced"),
        (
            (4.77, 9.31, 2.44),
            "partly: both rewinding techniques beat fine-tuning, but weight rewinding reaches "
            "further",
        ),
        ((9.31, 9.31, 9.31), "not reproduced"),
        ((np.nan, 4.77, 1.95), "not reproduced"),
    ],
)
def test_rewinding_order_verdict(values, verdict):
    lrr, wr, ft = values
    parity = _parity(
        [
            ("lr_rewind", "iterative", 1.0, lrr, False),
            ("weight_rewind", "iterative", 1.0, wr, False),
            ("finetune", "iterative", 1.0, ft, False),
        ]
    )
    runs = xr.Dataset(
        {"T": ("run", [10]), "status": ("run", ["complete"])},
        coords={"run": ["r"], "seed": ("run", [0])},
    )
    empty = xr.Dataset(coords={"group": np.arange(0)})
    rows = rewinding_claims(StudyResults("rewinding", runs, {"parity": parity, "points": empty}))
    order = next(r for r in rows if r["claim"].startswith("order of the techniques"))
    assert order["verdict"] == verdict


def test_results_dataset_with_no_complete_run():
    from shedding.studies.study_runs import StudyRuns

    ds = results_dataset(StudyRuns([Entry("a", {"seed": 0}, None, "failed", "x")], {}, {}))
    assert ds.sizes["run"] == 1 and str(ds.status.values[0]) == "failed"


def _aware(cascade_acc, iterative_acc, cascade_steps, iterative_steps):
    import pandas as pd

    rows = []
    for schedule, (m, lo, hi), steps in (
        ("oneshot", (0.9, 0.88, 0.92), 120),
        ("iterative", iterative_acc, iterative_steps),
        ("cascade", cascade_acc, cascade_steps),
    ):
        rows.append(
            {
                "schedule": schedule,
                "final_accuracy": m,
                "final_accuracy_low": lo,
                "final_accuracy_high": hi,
                "retrain_steps": float(steps),
                "events": 3.0,
            }
        )
    df = pd.DataFrame(rows)
    return xr.Dataset(
        {c: ("group", df[c].to_numpy()) for c in df.columns}, coords={"group": np.arange(len(df))}
    )


def test_cascade_aware_claim_follows_its_rule():
    from shedding.studies.cascade_claims import aware_claim

    got = aware_claim(_aware((0.95, 0.94, 0.96), (0.90, 0.89, 0.91), 276, 480), "digits")
    assert got["verdict"] == "more accurate than iterative GMP, and cheaper"
    assert "cascade: accuracy 95.00% [94.00, 96.00], 276 retraining steps" in got["ours"]
    got = aware_claim(_aware((0.90, 0.85, 0.95), (0.91, 0.90, 0.92), 500, 480), "digits")
    assert got["verdict"] == "as accurate as iterative GMP, and not cheaper"
    got = aware_claim(_aware((0.80, 0.79, 0.81), (0.91, 0.90, 0.92), 200, 480), "digits")
    assert got["verdict"].startswith("less accurate")
    assert aware_claim(None, "digits")["verdict"] == "not tested"
