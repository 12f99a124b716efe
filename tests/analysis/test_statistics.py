"""Analysis statistics against independent numpy/scipy computations on the stored arrays."""

from __future__ import annotations

from fractions import Fraction
from math import comb

import numpy as np
import pytest
import xarray as xr
import zarr
from scipy.stats import rankdata

from shedding.analysis import (
    amplification,
    cascade_summary,
    compare_kept,
    kept_set,
    magnitude_histogram,
    open_run,
    shed_fraction,
    shed_from_magnitude,
)
from shedding.analysis.io import NotARunError


def _raw(path):
    g = zarr.open_group(str(path), mode="r")
    return {k: np.asarray(g[k][:]) for k in g.array_keys()}


def test_open_run_is_lazy_and_checks_format(recorded, tmp_path):
    ds = open_run(recorded["gmp"])
    assert hasattr(ds.magnitude.data, "dask")
    with pytest.raises(NotARunError, match="not a Zarr store"):
        open_run(tmp_path)
    zarr.open_group(str(tmp_path / "other.zarr"), mode="w", zarr_format=3)
    with pytest.raises(NotARunError, match="not a shedding run"):
        open_run(tmp_path / "other.zarr")


@pytest.mark.parametrize("denominator", ["eligible", "survivors"])
def test_shed_fraction_matches_numpy(recorded, denominator):
    for name in ("gmp", "random", "control"):
        raw = _raw(recorded[name])
        den = raw["event_eligible" if denominator == "eligible" else "event_survivors"][0].astype(
            float
        )
        f = shed_fraction(open_run(recorded[name]), denominator).compute()
        np.testing.assert_allclose(
            f.shed_fraction_global.values, raw["shed_count"].sum(1) / den.sum()
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            expect = np.where(den > 0, raw["shed_count"] / den, np.nan)
        np.testing.assert_allclose(f.shed_fraction.values, expect)
        assert list(f.step.values) == list(raw["step"])


def test_shed_from_magnitude_equals_recorded_counts_and_other_lines(recorded):
    ds = open_run(recorded["random"])
    raw = _raw(recorded["random"])
    same = shed_from_magnitude(ds).compute()
    # record every step: snapshots 1..t hold the same state as the per-step counts
    np.testing.assert_array_equal(
        same.shed_count.transpose("record_step", "layer").values[1:], raw["shed_count"]
    )
    np.testing.assert_array_equal(same.eligible.values, raw["event_eligible"][0])
    np.testing.assert_array_equal(same.below.values, raw["event_below"][0])
    half = shed_from_magnitude(ds, alpha=0.5).compute()
    line = 0.5 * float(raw["event_tau"][0])
    mask = raw["mask"][0].astype(bool)
    elig = mask & (raw["magnitude"][0] >= line)
    counts = np.stack(
        [np.bincount(raw["weight_layer"][elig & (m < line)], minlength=4) for m in raw["magnitude"]]
    )
    np.testing.assert_array_equal(half.shed_count.transpose("record_step", "layer").values, counts)
    assert half.attrs["line"] == pytest.approx(line)


def test_amplification_matches_numpy(recorded):
    raw = _raw(recorded["gmp"])
    total = raw["shed_count"].sum(1)
    a = amplification(open_run(recorded["gmp"]))
    assert float(a.amplification) == pytest.approx(total.max() / raw["event_pruned"][0].sum())
    assert int(a.peak_step) == int(raw["step"][np.argmax(total)])
    window = 5
    aw = amplification(open_run(recorded["gmp"]), window=window)
    assert float(aw.amplification) == pytest.approx(
        total[:window].max() / raw["event_pruned"][0].sum()
    )
    assert np.isnan(float(amplification(open_run(recorded["control"])).amplification))


def _synthetic(
    s_values: np.ndarray, eligible: int = 1000, pruned: int = 250, ipe: int = 10
) -> xr.Dataset:
    """A store-shaped Dataset with a planted global shed-fraction curve on two layers."""
    n = len(s_values)
    counts = np.round(np.asarray(s_values) * eligible).astype(int)
    per_layer = np.stack([counts // 2, counts - counts // 2], axis=1)
    zeros = np.zeros_like(per_layer)
    return xr.Dataset(
        {
            "shed_count": (("step", "layer"), per_layer),
            "shed_events": (("step", "layer"), zeros),
            "recover_events": (("step", "layer"), zeros),
            "event_eligible": (("event", "layer"), [[eligible // 2, eligible - eligible // 2]]),
            "event_below": (("event", "layer"), [[0, 0]]),
            "event_line": ("event", [0.01]),
            "event_tau": ("event", [0.01]),
            "event_survivors": (("event", "layer"), [[eligible // 2, eligible - eligible // 2]]),
            "event_pruned": (("event", "layer"), [[pruned // 2, pruned - pruned // 2]]),
        },
        coords={
            "step": np.arange(1, n + 1),
            "step_round": ("step", np.zeros(n, int)),
            "layer": ["a", "b"],
            "event": [0],
            "event_step": ("event", [0]),
        },
        attrs={"iterations_per_epoch": ipe, "alpha": 1.0},
    )


def test_cascade_summary_on_planted_cascade():
    steps = np.arange(1, 101)
    control = 0.1 + 0.001 * steps  # slow drift
    bump = 0.3 * np.exp(-0.5 * ((steps - 20) / 4.0) ** 2)  # a cascade peaking at step 20
    run = control + bump
    res = cascade_summary(
        _synthetic(run), _synthetic(control), min_excess=0.05, onset_excess=0.01, window="5ep"
    )
    rounded = np.round(run * 1000) / 1000 - np.round(control * 1000) / 1000
    assert res.attrs["verdict"] == "cascade"
    assert int(res.peak_step) == 20 and int(res.time_to_peak) == 20
    assert float(res.excess_peak) == pytest.approx(rounded[:50].max(), abs=1e-9)
    assert int(res.onset_step) == int(steps[np.flatnonzero(rounded >= 0.01)[0]])
    assert float(res.amplification) == pytest.approx(np.round(run[19] * 1000) / 250)
    # the same run against a control that sheds as much: no cascade
    same = cascade_summary(_synthetic(run), _synthetic(run))
    assert same.attrs["verdict"] == "no cascade" and float(same.excess_peak) == 0.0
    # a window that ends before the bump rises misses it
    early = cascade_summary(_synthetic(run), _synthetic(control), window=5)
    assert early.attrs["verdict"] == "no cascade"
    assert float(res.excess_amplification) == pytest.approx(rounded[:50].max() * 1000 / 250)
    alone = cascade_summary(_synthetic(run), None)
    assert alone.attrs["verdict"] == "no control" and np.isnan(float(alone.excess_amplification))


def test_cascade_summary_real_runs_against_numpy(recorded):
    run, ctrl = _raw(recorded["random"]), _raw(recorded["control"])
    s_run = run["shed_count"].sum(1) / run["event_eligible"][0].sum()
    s_ctrl = ctrl["shed_count"].sum(1) / ctrl["event_eligible"][0].sum()
    ex = s_run - s_ctrl
    res = cascade_summary(
        open_run(recorded["random"]),
        open_run(recorded["control"]),
        window="round",
        min_excess=float(ex.max()) - 1e-9,
    )
    assert float(res.excess_peak) == pytest.approx(ex.max())
    assert int(res.excess_peak_step) == int(run["step"][ex.argmax()])
    # the survivors shed beyond the control, per weight pruned
    excess_shed = ex.max() * run["event_eligible"][0].sum()
    assert float(res.excess_amplification) == pytest.approx(
        excess_shed / run["event_pruned"][0].sum()
    )
    assert res.attrs["verdict"] == "cascade"
    strict = cascade_summary(
        open_run(recorded["random"]),
        open_run(recorded["control"]),
        window="round",
        min_excess=float(ex.max()) + 1e-9,
    )
    assert strict.attrs["verdict"] == "no cascade"


def _hypergeom_sf_exact(both: int, n: int, na: int, nb: int) -> float:
    total = sum(Fraction(comb(na, x) * comb(n - na, nb - x)) for x in range(both, min(na, nb) + 1))
    return float(total / comb(n, nb))


def test_compare_kept_matches_numpy(recorded):
    a, b = open_run(recorded["gmp"]), open_run(recorded["random"])
    ra, rb = _raw(recorded["gmp"]), _raw(recorded["random"])
    res = compare_kept(a, b)
    ka, kb = ra["mask"][-1].astype(bool), rb["mask"][-1].astype(bool)
    scopes = [("all", slice(None))] + [
        (str(n), slice(int(s), int(s + z)))
        for n, s, z in zip(a.layer.values, ra["layer_start"], ra["layer_size"], strict=True)
    ]
    for scope, sl in scopes:
        x, y = ka[sl], kb[sl]
        r = res.sel(scope=scope)
        assert float(r.jaccard) == pytest.approx((x & y).sum() / (x | y).sum())
        da, db = x.mean(), y.mean()
        assert float(r.jaccard_chance) == pytest.approx(da * db / (da + db - da * db))
        both = x & y
        ma, mb = ra["magnitude"][-1][sl][both], rb["magnitude"][-1][sl][both]
        rho = np.corrcoef(rankdata(ma), rankdata(mb))[0, 1]
        assert float(r.spearman) == pytest.approx(rho, abs=1e-9)
    conv1 = res.sel(scope="conv1.weight")
    n, na, nb, k = (int(conv1[v]) for v in ("n", "kept_a", "kept_b", "both"))
    assert float(conv1.p_value) == pytest.approx(_hypergeom_sf_exact(k, n, na, nb), rel=1e-9)
    # a run against itself: J = 1, overlap as unlikely as can be by chance
    self_cmp = compare_kept(a, a).sel(scope="all")
    assert float(self_cmp.jaccard) == 1.0 and float(self_cmp.p_value) < 1e-100


def test_effective_kept_set(recorded):
    ds = open_run(recorded["random"])
    raw = _raw(recorded["random"])
    line = float(raw["event_line"][0])
    mask = raw["mask"][0].astype(bool)
    shed = mask & (raw["magnitude"][0] >= line) & (raw["magnitude"][-1] < line)
    np.testing.assert_array_equal(kept_set(ds, effective=True).values, mask & ~shed)
    assert shed.any()


def test_magnitude_histogram_matches_numpy(recorded):
    ds = open_run(recorded["gmp"])
    mag = _raw(recorded["gmp"])["magnitude"].astype(np.float64)
    h = magnitude_histogram(ds, bins=20, lo=-4.0, hi=1.0).compute()
    edges = np.linspace(-4.0, 1.0, 21)
    for i in (0, 5, mag.shape[0] - 1):
        logs = np.log10(mag[i][mag[i] > 0])
        expect, _ = np.histogram(np.clip(logs, -4.0, 1.0 - 1e-12), bins=edges)
        np.testing.assert_array_equal(h.isel(record_step=i).values, expect)
    assert int(h.sum()) == int((mag > 0).sum())


def _planted_masks(
    kept_a: np.ndarray, kept_b: np.ndarray, layer_sizes: list[int]
) -> tuple[xr.Dataset, xr.Dataset]:
    starts = np.cumsum([0, *layer_sizes[:-1]])

    def ds(kept):
        return xr.Dataset(
            {"mask": (("event", "weight"), kept[None, :])},
            coords={
                "layer": [f"l{i}" for i in range(len(layer_sizes))],
                "layer_size": ("layer", layer_sizes),
                "layer_start": ("layer", starts),
                "event": [0],
            },
        )

    return ds(kept_a), ds(kept_b)


def test_compare_kept_on_planted_overlap():
    """Two layers of 1000 weights: |A| = 500, |B| = 400, |A & B| = 300 in layer 0; disjoint sets in
    layer 1."""
    a = np.zeros(2000, bool)
    b = np.zeros(2000, bool)
    a[:500] = True
    b[200:600] = True  # overlap 200..500: 300 weights; union 0..600: 600
    a[1000:1100] = True
    b[1100:1300] = True  # layer 1: no overlap
    res = compare_kept(*_planted_masks(a, b, [1000, 1000]))
    l0, l1, total = res.sel(scope="l0"), res.sel(scope="l1"), res.sel(scope="all")
    assert float(l0.jaccard) == 0.5 and int(l0.both) == 300 and int(l0.either) == 600
    assert float(l0.jaccard_chance) == pytest.approx(0.5 * 0.4 / (0.5 + 0.4 - 0.2))
    assert float(l1.jaccard) == 0.0 and float(l1.p_value) == 1.0
    assert float(total.jaccard) == pytest.approx(300 / 900)
    assert float(l0.p_value) < 1e-30  # 300 shared where 200 are expected by chance
    assert np.isnan(float(l0.spearman))  # no magnitudes in these stores
