"""The arrays a TensorBoard export writes (shedding.reports.tensorboard_export and
tensorboard_histograms), against the store's own arrays read with zarr-python."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from zarr_readers import open_group

from shedding.analysis import open_run
from shedding.reports.tensorboard_export import (
    check_control,
    excess,
    scalar_series,
    step_offset,
    summary_text,
)
from shedding.reports.tensorboard_histograms import (
    HIST_TAG,
    histogram_count,
    histogram_source,
    iter_histograms,
    raw_histogram,
)


@pytest.fixture(scope="module")
def snapshots_only(tmp_path_factory) -> Path:
    """A GMP run with the original training recorded (negative steps) and snapshots but no device
    histograms."""
    from conftest import tiny_config

    from shedding.experiment import record

    root = tmp_path_factory.mktemp("tb_snapshots")
    cfg = tiny_config("gmp", record__hist_every=0, record__record_pretrain=True)
    return record(cfg, root / "pre.zarr", cache_dir=root / "cache")


def shed_fraction_raw(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(retraining steps, global S) from the raw counts: shed / eligible survivors of the step's
    round."""
    g = open_group(path)
    rounds = g["step_round"][:]
    rows = rounds >= 0
    den = g["event_eligible"][:].sum(axis=1)[rounds[rows]]
    return g["step"][:][rows], g["shed_count"][:][rows].sum(axis=1) / den


def test_offset_makes_every_step_non_negative(recorded, snapshots_only):
    gmp, pre = open_run(recorded["gmp"]), open_run(snapshots_only)
    assert step_offset([gmp]) == 0  # retraining only: steps from 0 (the event's snapshot)
    T = int(pre.attrs["T"])
    assert int(pre.record_step.values.min()) == -T  # the original training's first snapshot
    assert step_offset([pre]) == T == step_offset([gmp, pre])


def test_scalars_are_the_store_values(recorded):
    gmp, ctrl = open_run(recorded["gmp"]), open_run(recorded["control"])
    g = open_group(recorded["gmp"])
    series = scalar_series(gmp, ctrl)
    steps, S = shed_fraction_raw(recorded["gmp"])
    np.testing.assert_array_equal(series["shed/S"].step.values, steps)
    np.testing.assert_allclose(series["shed/S"].values, S, rtol=1e-12)
    np.testing.assert_array_equal(series["train/loss"].step.values, g["step"][:])
    np.testing.assert_array_equal(series["train/loss"].values, g["loss"][:].astype(np.float64))
    np.testing.assert_array_equal(series["train/lr"].values, g["lr"][:])
    for var in ("train_accuracy", "train_loss", "test_accuracy", "test_loss"):
        s = series[f"epoch/{var}"]
        np.testing.assert_array_equal(s.step.values, g["epoch_step"][:])
        np.testing.assert_array_equal(s.values, g[var][:])
    layer0 = str(gmp.layer.values[0])
    elig0 = g["event_eligible"][0, 0]
    np.testing.assert_allclose(
        series[f"shed_layer/{layer0}"].values, g["shed_count"][:, 0] / elig0, rtol=1e-12
    )


def test_excess_is_run_minus_control_at_the_same_steps(recorded):
    gmp, ctrl = open_run(recorded["gmp"]), open_run(recorded["control"])
    steps, s_run = shed_fraction_raw(recorded["gmp"])
    c_steps, s_ctrl = shed_fraction_raw(recorded["control"])
    np.testing.assert_array_equal(steps, c_steps)  # both prune at step 0, same retraining
    ex = excess(gmp, ctrl)
    np.testing.assert_array_equal(ex.step.values, steps)
    np.testing.assert_allclose(ex.values, s_run - s_ctrl, rtol=1e-12, atol=1e-15)
    assert "shed/excess" not in scalar_series(gmp)  # none without a control
    assert "shed/excess" not in scalar_series(ctrl, ctrl)  # nor for a control itself


def test_control_must_be_an_unpruned_run_with_the_same_layers(recorded):
    gmp, rnd, ctrl = (open_run(recorded[n]) for n in ("gmp", "random", "control"))
    check_control(gmp, ctrl)
    with pytest.raises(ValueError, match="is not a control run"):
        check_control(gmp, rnd)
    with pytest.raises(ValueError, match="other layers"):
        check_control(gmp, ctrl.isel(layer=slice(0, 3)))


def test_uncommitted_rows_are_left_out(recorded):
    ds = open_run(recorded["gmp"])
    ds.attrs.update(status="interrupted", last_committed_step=10)
    series = scalar_series(ds)
    assert all(int(s.step.max()) <= 10 for s in series.values() if s.size)
    assert series["train/loss"].size == 10 and series["shed/S"].size == 10
    assert {h.step for h in iter_histograms(ds)} == set(range(11))
    ds.attrs.update(last_committed_step=None)
    assert all(s.size == 0 for s in scalar_series(ds).values())
    assert histogram_count(ds) == 0


def test_device_histograms_are_the_store_counts(recorded):
    ds = open_run(recorded["gmp"])
    g = open_group(recorded["gmp"])
    counts, hi = g["magnitude_hist"][:], g["hist_bin_hi"][:]
    assert histogram_source(ds) == "device"
    hists = list(iter_histograms(ds))
    assert len(hists) == histogram_count(ds) == counts.shape[0] * counts.shape[1]
    layers = [str(v) for v in ds.layer.values]
    steps = list(g["hist_step"][:])
    for h in hists:
        i, j = steps.index(h.step), layers.index(h.tag.removeprefix(f"{HIST_TAG}/"))
        np.testing.assert_array_equal(h.bucket_counts, counts[i, j])
        np.testing.assert_array_equal(h.bucket_limits, hi)
        assert h.num == counts[i, j].sum()


def test_raw_histogram_bounds_are_the_outer_nonempty_edges():
    edges = np.array([-3.0, -2.0, -1.0, 0.0, 1.0])
    h = raw_histogram("t", 5, np.array([0, 2, 0, 1]), edges)
    assert (h.min, h.max, h.num) == (-2.0, 1.0, 3)
    assert h.sum == pytest.approx(2 * -1.5 + 0.5) and h.sum_squares == pytest.approx(
        2 * 2.25 + 0.25
    )
    np.testing.assert_array_equal(h.bucket_limits, edges[1:])
    empty = raw_histogram("t", 5, np.zeros(4, dtype=int), edges)
    assert (empty.num, empty.min, empty.max) == (0, 0.0, 0.0)


def snapshot_counts(mags: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """An independent count: each non-zero |w|'s bin by searching the edges (end bins take the
    values outside)."""
    logs = np.log10(mags[mags > 0].astype(np.float64))
    bins = np.clip(np.searchsorted(edges, logs, side="right") - 1, 0, len(edges) - 2)
    return np.bincount(bins, minlength=len(edges) - 1)


def test_snapshot_histograms_without_device_ones(snapshots_only, recorded):
    ds = open_run(snapshots_only)
    g = open_group(snapshots_only)
    assert histogram_source(ds) == "snapshots" and "magnitude_hist" not in ds
    edges = np.linspace(-8.0, 1.0, 65)  # the recorder's default bins, as the device would use
    mags, starts, sizes = g["magnitude"][:], g["layer_start"][:], g["layer_size"][:]
    steps = list(g["record_step"][:])
    layers = [str(v) for v in ds.layer.values]
    hists = list(iter_histograms(ds))
    assert len(hists) == len(steps) * len(layers)
    for h in hists:
        i, j = steps.index(h.step), layers.index(h.tag.removeprefix(f"{HIST_TAG}/"))
        layer = mags[i, starts[j] : starts[j] + sizes[j]]
        np.testing.assert_array_equal(h.bucket_counts, snapshot_counts(layer, edges))
        logs = np.log10(layer[layer > 0].astype(np.float64))
        assert (h.min, h.max, h.num) == (logs.min(), logs.max(), logs.size)
    # on a run with both, the numpy histogram of the snapshots agrees with the device's
    both = open_run(recorded["gmp"])
    device = {(h.tag, h.step): h.bucket_counts for h in iter_histograms(both)}
    numpy = list(iter_histograms(both.drop_vars(["magnitude_hist", "hist_bin_lo", "hist_bin_hi"])))
    assert len(numpy) == len(device)
    moved = 0  # weights within float32 rounding of an edge may land in the bin beside it
    for h in numpy:
        d = device[(h.tag, h.step)]
        assert h.num == d.sum()
        moved += np.abs(h.bucket_counts - d).sum() // 2
    assert moved <= 1e-4 * sum(h.num for h in numpy)


def test_summary_text_states_offset_and_missing_control(recorded, snapshots_only):
    pre, ctrl = open_run(snapshots_only), open_run(recorded["control"])
    alone = summary_text(pre, 36)
    assert "TensorBoard step = store step + 36" in alone
    assert "no control given" in alone and "cannot show a cascade" in alone
    assert "magnitude snapshots, binned with numpy" in alone
    with_ctrl = summary_text(open_run(recorded["gmp"]), 0, ctrl)
    assert "S_run - S_control against control" in with_ctrl and "no control" not in with_ctrl
    assert "device histograms" in with_ctrl
