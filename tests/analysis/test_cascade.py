"""Cascade detection per event and line, seeds with CIs, kept-set matrices, convergence: against
numpy."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from shedding.analysis import open_run
from shedding.analysis.cascade import detect_cascades
from shedding.analysis.lines import Line, parse_lines
from shedding.analysis.overlap import compare_kept, convergence, kept_matrix
from shedding.analysis.seeds import group_runs, mean_ci
from shedding.analysis.shed import shed_curves
from shedding.analysis.summary import summarize


def _raw(path):
    g = zarr.open_group(str(path), mode="r")
    return {k: np.asarray(g[k][:]) for k in g.array_keys()}


def test_line_parsing():
    assert parse_lines(["gmp:1", "std:0.5", "abs:1e-3", "next:0.1"]) == [
        Line("gmp", 1.0),
        Line("std", 0.5),
        Line("abs", 1e-3),
        Line("next", 0.1),
    ]
    for bad in ("gmp", "foo:1", "abs:-1", "next:1.5", "std:x"):
        with pytest.raises(ValueError, match="bad line"):
            Line.parse(bad)


def test_line_values_match_numpy(recorded):
    ds = open_run(recorded["random"])
    raw = _raw(recorded["random"])
    start, mask = raw["magnitude"][0].astype(np.float64), raw["mask"][0].astype(bool)
    std = Line("std", 0.5).values(ds)
    for i, (s, n) in enumerate(zip(raw["layer_start"], raw["layer_size"], strict=True)):
        w = start[s : s + n][mask[s : s + n]]
        assert std[i] == pytest.approx(0.5 * np.sqrt(np.mean(w**2)))
    srt = np.sort(start * mask)
    k = int(round((float(raw["event_sparsity"][0]) + 0.1) * srt.size))
    assert Line("next", 0.1).values(ds)[0] == pytest.approx((srt[k - 1] + srt[k]) / 2)
    assert Line("gmp", 2.0).values(ds)[0] == pytest.approx(2 * float(raw["event_tau"][0]))


def test_recount_from_magnitudes_equals_recorded_counts(recorded):
    ds = open_run(recorded["gmp"])
    recorded_line = shed_curves(ds).compute()
    same_values = Line("gmp", 1.0).values(
        ds
    )  # the recorded line's values, forced through the recount path
    recount = shed_curves(ds, line_values=same_values).compute()
    assert (
        recorded_line.attrs["resolution"] == "every step"
        and recount.attrs["resolution"] == "snapshots"
    )
    for var in ("shed_count", "shed_events", "recover_events"):
        np.testing.assert_array_equal(
            recount[var].sel(step=recorded_line.step).values, recorded_line[var].values
        )
    np.testing.assert_array_equal(recount.eligible.values, recorded_line.eligible.values)


def test_other_line_counts_match_numpy(recorded):
    ds = open_run(recorded["random"])
    raw = _raw(recorded["random"])
    c = shed_curves(ds, line=Line("abs", 0.02)).compute()
    mask = raw["mask"][0].astype(bool)
    elig = mask & (raw["magnitude"][0] >= 0.02)
    for k in (1, 5, raw["magnitude"].shape[0] - 1):
        below = elig & (raw["magnitude"][k] < 0.02)
        np.testing.assert_array_equal(
            c.shed_count.sel(step=k).values, np.bincount(raw["weight_layer"][below], minlength=4)
        )
    assert float(c.shed_fraction_global.sel(step=5)) == pytest.approx(
        (elig & (raw["magnitude"][5] < 0.02)).sum() / elig.sum()
    )


def test_detect_cascades_over_lines_uses_the_runs_line_for_the_control(recorded):
    run, ctrl = open_run(recorded["random"]), open_run(recorded["control"])
    lines = [Line("gmp", 1.0), Line("std", 0.5)]
    det = detect_cascades(run, ctrl, lines, window="round")
    assert det.sizes == {"event": 1, "line": 2, "layer": 4} or set(det.sizes) >= {"event", "line"}
    assert list(det.line.values) == ["gmp:1", "std:0.5"]
    # the std line's excess: run and control both counted against the *run's* per-layer lines
    raw_r, raw_c = _raw(recorded["random"]), _raw(recorded["control"])
    values = Line("std", 0.5).values(run)
    lw = values[raw_r["weight_layer"]]

    def s_curve(raw):
        mask = raw["mask"][0].astype(bool)
        elig = mask & (raw["magnitude"][0] >= lw)
        return np.array([(elig & (m < lw)).sum() / elig.sum() for m in raw["magnitude"][1:]])

    ex = s_curve(raw_r) - s_curve(raw_c)
    got = det.sel(line="std:0.5").isel(event=0)
    assert float(got.excess_peak) == pytest.approx(ex.max())
    assert str(got.verdict.values) in ("cascade", "no cascade")


def test_seed_grouping_and_condition_statistics(recorded_seeds):
    runs = {n: open_run(p) for n, p in recorded_seeds.items()}
    conditions, control_of = group_runs(runs)
    assert sorted(len(v) for v in conditions.values()) == [2, 2, 2]
    assert control_of["gmp-s1"] == "control-s1" and control_of["random-s0"] == "control-s0"
    assert control_of["control-s0"] is None
    summary = summarize(runs, window="round")
    label = next(lbl for lbl in conditions if lbl.startswith("random"))
    per_seed = []
    for s in (0, 1):
        r, c = _raw(recorded_seeds[f"random-s{s}"]), _raw(recorded_seeds[f"control-s{s}"])
        ex = (
            r["shed_count"].sum(1) / r["event_eligible"][0].sum()
            - c["shed_count"].sum(1) / c["event_eligible"][0].sum()
        )
        per_seed.append(ex.max())
    stats = summary.condition_stats[label]
    assert stats["excess_peak"] == pytest.approx(np.mean(per_seed))
    lo, hi = stats["excess_peak_ci"]
    assert min(per_seed) - 1e-12 <= lo <= np.mean(per_seed) <= hi <= max(per_seed) + 1e-12


def test_mean_ci_properties():
    rng = np.random.default_rng(1)
    x = rng.normal(3.0, 1.0, size=(40, 2))
    mean, lo, hi = mean_ci(x)
    np.testing.assert_allclose(mean, x.mean(0))
    se = x.std(0, ddof=1) / np.sqrt(40)
    assert ((hi - lo) > 2.5 * se).all() and (
        (hi - lo) < 5.5 * se
    ).all()  # about 2 x 1.96 standard errors
    assert mean_ci(np.full((3, 1), 7.0))[1][0] == 7.0
    assert np.isnan(mean_ci(np.ones((1, 1)))[1][0])  # one seed: no interval


def test_kept_matrix_is_pairwise_compare_kept(recorded):
    runs = {n: open_run(p) for n, p in recorded.items()}
    m = kept_matrix(runs)
    names = list(runs)
    for a in names:
        assert float(m.jaccard.sel(run_a=a, run_b=a, scope="all")) == 1.0
        for b in names:
            np.testing.assert_allclose(
                m.jaccard.sel(run_a=a, run_b=b).values, m.jaccard.sel(run_a=b, run_b=a).values
            )
    direct = compare_kept(runs["gmp"], runs["random"])
    np.testing.assert_allclose(
        m.sel(run_a="gmp", run_b="random").p_value.values, direct.p_value.values
    )


def test_convergence_matches_numpy(recorded):
    run, ref = open_run(recorded["random"]), open_run(recorded["gmp"])
    res = convergence(run, ref)
    raw, rref = _raw(recorded["random"]), _raw(recorded["gmp"])
    mask, ref_kept = raw["mask"][0].astype(bool), rref["mask"][-1].astype(bool)
    line = float(raw["event_line"][0])
    elig = mask & (raw["magnitude"][0] >= line)
    k = raw["magnitude"].shape[0] - 1
    for name, kept in (
        ("effective", mask & ~(elig & (raw["magnitude"][k] < line))),
        ("above_line", mask & (raw["magnitude"][k] >= line)),
    ):
        j = (kept & ref_kept).sum() / (kept | ref_kept).sum()
        d, dr = kept.mean(), ref_kept.mean()
        assert float(res[f"jaccard_{name}"].values[-1]) == pytest.approx(j)
        assert float(res[f"chance_{name}"].values[-1]) == pytest.approx(d * dr / (d + dr - d * dr))


def test_extra_lines_counted_on_device_equal_magnitude_recounts(tmp_path):
    from conftest import tiny_config

    from shedding.experiment import record

    extra = ["gmp:0.5", "abs:0.02", "std:0.5", "next:0.1"]
    path = record(
        tiny_config("random", record__lines=extra), tmp_path / "r.zarr", cache_dir=tmp_path / "c"
    )
    ds = open_run(path)
    assert [str(v) for v in ds.line.values] == extra
    for text in extra:
        line = Line.parse(text)
        device = shed_curves(ds, line=line).compute()
        assert device.attrs["resolution"] == "every step"
        recount = shed_curves(
            ds, line_values=line.values(ds)
        ).compute()  # forced through the magnitudes
        np.testing.assert_allclose(device.line_value.values, recount.line_value.values, rtol=1e-12)
        for var in ("shed_count", "shed_events", "recover_events", "eligible"):
            np.testing.assert_array_equal(
                device[var].values,
                recount[var].sel(step=device.step).values
                if "step" in recount[var].dims
                else recount[var].values,
                err_msg=text,
            )


def test_summary_store_verdicts_on_extra_lines(tmp_path):
    from conftest import tiny_config

    from shedding.experiment import record

    kw = dict(record__lines=["gmp:0.5", "std:0.5"], record__every=0, record__hist_every=0)
    run = open_run(
        record(tiny_config("random", **kw), tmp_path / "r.zarr", cache_dir=tmp_path / "c")
    )
    ctrl = open_run(
        record(tiny_config("none", **kw), tmp_path / "c.zarr", cache_dir=tmp_path / "c")
    )
    det = detect_cascades(run, ctrl, [Line("gmp", 0.5)], window="round")
    assert str(det.verdict.values[0, 0]) in ("cascade", "no cascade") and np.isfinite(
        float(det.excess_peak[0, 0])
    )
    # the control's std line differs from the run's (its layers are not pruned): it would need
    # magnitudes
    with pytest.raises(ValueError, match="needs magnitude snapshots"):
        detect_cascades(run, ctrl, [Line("std", 0.5)])
