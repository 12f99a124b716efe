"""The Zarr store: readable by plain xarray, documented layout, counts equal an offline
recomputation."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr
import zarr

from shedding.recording.layout import build_timeline
from shedding.recording.store import ChunkWriter, RunStore, StoreError

DIMS = {"step", "record_step", "weight", "layer", "event", "epoch", "hist_step", "hist_bin"}
VARIABLES = {
    "loss",
    "lr",
    "shed_count",
    "shed_events",
    "recover_events",
    "magnitude",
    "mask",
    "pre_prune_magnitude",
    "event_round",
    "event_sparsity",
    "event_tau",
    "event_line",
    "event_pruned",
    "event_survivors",
    "event_eligible",
    "event_below",
    "event_test_accuracy",
    "event_final_test_accuracy",
    "train_accuracy",
    "train_loss",
    "test_accuracy",
    "test_loss",
    "magnitude_hist",
}
COORDS = {
    "step",
    "step_round",
    "record_step",
    "record_round",
    "weight",
    "weight_layer",
    "weight_index",
    "layer",
    "layer_size",
    "layer_start",
    "layer_shape",
    "event",
    "event_step",
    "epoch",
    "epoch_step",
    "epoch_round",
    "hist_step",
    "hist_round",
    "hist_bin",
    "hist_bin_lo",
    "hist_bin_hi",
}


def test_plain_xarray_opens_store_without_our_code(recorded):
    script = f"""
import json, sys, xarray as xr
ds = xr.open_zarr({str(recorded["gmp"])!r})
assert not [m for m in sys.modules if m.split('.')[0] in ('shedding', 'analysis', 'reports', 'cli')]
one_layer = ds.set_xindex("weight_layer").magnitude.sel(weight_layer=1).isel(record_step=-1)
print(json.dumps({{"dims": dict(ds.sizes), "vars": sorted(ds.data_vars),
                  "coords": sorted(ds.coords), "status": ds.attrs["status"],
                  "one_layer": one_layer.size, "layer1": int(ds.layer_size.values[1])}}))
"""
    res = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd="/", check=True
    )
    info = json.loads(res.stdout)
    assert set(info["dims"]) == DIMS
    assert VARIABLES <= set(info["vars"])
    assert COORDS <= set(info["coords"])
    assert info["status"] == "complete"
    assert (
        info["one_layer"] == info["layer1"]
    )  # the weight_layer coordinate selects one layer's weights


def test_layout_sizes_and_attrs(recorded):
    ds = xr.open_zarr(recorded["gmp"])
    ipe = ds.attrs["iterations_per_epoch"]
    t = ds.attrs["t"]
    assert ds.attrs["T"] == 3 * ipe and t == 2 * ipe
    assert ds.sizes["step"] == t and list(ds.step.values) == list(range(1, t + 1))
    assert list(ds.record_step.values) == list(
        range(0, t + 1)
    )  # every=1: a snapshot per step, 0 = after pruning
    assert ds.sizes["epoch"] == 2 and list(ds.epoch_step.values) == [ipe, 2 * ipe]
    assert int(ds.layer_size.sum()) == ds.sizes["weight"]
    starts = np.cumsum([0, *ds.layer_size.values[:-1]])
    assert list(ds.layer_start.values) == list(starts)
    wl = ds.weight_layer.values
    wi = ds.weight_index.values
    for i, (s, n) in enumerate(zip(ds.layer_start.values, ds.layer_size.values, strict=True)):
        assert (wl[s : s + n] == i).all() and (wi[s : s + n] == np.arange(n)).all()
    assert ds.attrs["status"] == "complete" and ds.attrs["last_committed_step"] == t
    assert ds.attrs["config"]["prune"]["method"] == "gmp"
    assert set(ds.attrs["versions"]) >= {"torch", "zarr", "xarray", "numpy", "python", "shedding"}
    assert np.isfinite(ds.test_accuracy.values).all() and np.isfinite(ds.loss.values).all()


def test_shed_counts_equal_offline_recomputation(recorded):
    """The device counter's per-step counts equal numpy on the stored magnitudes, mask and line."""
    from conftest import assert_counts_match_recount

    for name in ("gmp", "random", "control"):
        assert_counts_match_recount(recorded[name])


def test_event_statistics(recorded):
    g = xr.open_zarr(recorded["gmp"])
    pre = g.pre_prune_magnitude.isel(event=0).values
    mask = g["mask"].isel(event=0).values
    n = mask.size
    k = int(round(0.5 * n))
    assert int((~mask).sum()) == k and int(g.event_pruned.sum()) == k
    srt = np.sort(pre.astype(np.float64))
    assert float(g.event_tau[0]) == pytest.approx((srt[k - 1] + srt[k]) / 2, rel=1e-12)
    assert (pre[mask] > float(g.event_tau[0])).all() and (pre[~mask] < float(g.event_tau[0])).all()
    assert (
        int(g.event_below.sum()) == 0
    )  # GMP survivors all start above the GMP line (LR rewinding)
    ctrl = xr.open_zarr(recorded["control"])
    assert ctrl["mask"].values.all() and int(ctrl.event_pruned.sum()) == 0
    # the control's line is the GMP line of the same sparsity on the same trained weights
    assert float(ctrl.event_tau[0]) == float(g.event_tau[0])
    assert int(ctrl.event_below.sum()) == k


def test_pruned_weights_zero_in_every_snapshot(recorded):
    for name in ("gmp", "random"):
        ds = xr.open_zarr(recorded[name])
        mask = ds["mask"].isel(event=0).values
        assert (ds.magnitude.values[:, ~mask] == 0).all()
        assert (ds.magnitude.values[:, mask] > 0).mean() > 0.99


class _Spy:
    """Stands in for a zarr array and records the row ranges written."""

    def __init__(self, shape, chunks):
        self.shape, self.chunks, self.name = shape, chunks, "spy"
        self.dtype = np.dtype("float32")
        self.data = np.full(shape, np.nan, dtype=np.float32)
        self.writes: list[tuple[int, int]] = []

    def __setitem__(self, key, value):
        self.writes.append((key.start, key.stop))
        self.data[key] = value


def test_chunk_writer_writes_whole_chunks_only():
    spy = _Spy((10, 3), (4, 3))
    w = ChunkWriter(spy, np.nan)
    rows = np.arange(30, dtype=np.float32).reshape(10, 3)
    w.append(rows[:3])
    assert spy.writes == []  # nothing until a chunk is complete
    w.append(rows[3:6])
    assert spy.writes == [(0, 4)]
    w.flush()  # a partial chunk is written whole, rows not yet appended keep the fill value
    assert spy.writes[-1] == (4, 8) and np.isnan(spy.data[6:8]).all()
    w.append(rows[6:10])
    assert spy.writes[-2:] == [(4, 8), (8, 10)]
    assert all(s % 4 == 0 and (e - s == 4 or e == 10) for s, e in spy.writes)
    np.testing.assert_array_equal(spy.data, rows)
    with pytest.raises(IndexError):
        w.append(rows[:1])


def test_timeline_iterative_and_pretrain():
    tl = build_timeline(T=10, t=4, rounds=2, every=3, iterations_per_epoch=2, record_pretrain=True)
    assert list(tl.steps) == list(range(-9, 1)) + list(range(1, 9))
    assert list(tl.step_round) == [-1] * 10 + [0] * 4 + [1] * 4
    assert list(tl.event_step) == [0, 4]
    assert list(tl.record_steps) == [-10, -7, -4, -1, 0, 3, 4, 7, 8]
    assert list(tl.record_round) == [-1, -1, -1, -1, 0, 0, 1, 1, 1]
    assert list(tl.epoch_step) == [-8, -6, -4, -2, 0, 2, 4, 6, 8]
    assert list(tl.epoch) == [-4, -3, -2, -1, 0, 1, 2, 3, 4]


def test_existing_store_and_second_writer_refused(recorded, tmp_path):
    from shedding.recording.layout import build_layers

    layers = build_layers([("a.weight", (2, 3))])
    tl = build_timeline(4, 2, 1, 1, 2, False)
    path = tmp_path / "s.zarr"
    store = RunStore.create(path, layers, tl, {}, "float32", 4)
    with pytest.raises(StoreError, match="being written by process"):
        RunStore.create(path, layers, tl, {}, "float32", 4, overwrite=True)
    store.release()
    with pytest.raises(StoreError, match="already exists"):
        RunStore.create(path, layers, tl, {}, "float32", 4)
    RunStore.create(path, layers, tl, {}, "float32", 4, overwrite=True).release()
    notastore = tmp_path / "data"
    notastore.mkdir()
    (notastore / "keep.txt").write_text("precious")
    with pytest.raises(StoreError, match="not a Zarr store"):
        RunStore.create(notastore, layers, tl, {}, "float32", 4, overwrite=True)
    assert (notastore / "keep.txt").read_text() == "precious"


def test_float16_store_and_iterative_run(tmp_path):
    from conftest import tiny_config

    from shedding.experiment import record

    cfg = tiny_config(
        "gmp", 0.36, prune__schedule="iterative", record__dtype="float16", record__every=5
    )
    path = record(cfg, tmp_path / "it.zarr", cache_dir=tmp_path / "cache")
    ds = xr.open_zarr(path)
    t = ds.attrs["t"]
    assert ds.magnitude.dtype == np.float16
    assert ds.sizes["event"] == 2 and list(ds.event_step.values) == [0, t]
    np.testing.assert_allclose(ds.event_sparsity.values, [0.2, 0.36], atol=1e-4)
    m0, m1 = ds["mask"].values
    assert (m1 <= m0).all()  # the second round only removes more
    # the second event prunes from the first round's retrained weights, which the last snapshot
    # before it holds
    assert set(ds.record_step.values) >= {0, t, 2 * t}
    assert ds.attrs["status"] == "complete"


def test_failed_run_keeps_committed_prefix(tmp_path, monkeypatch):
    from conftest import tiny_config

    from shedding.experiment import record
    from shedding.recording.recorder import Recorder

    original = Recorder.on_epoch_end

    def crash_after_first_epoch(self, state):
        original(self, state)  # flushes the epoch, then the run dies
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Recorder, "on_epoch_end", crash_after_first_epoch)
    with pytest.raises(RuntimeError, match="disk on fire"):
        record(tiny_config(), tmp_path / "f.zarr", cache_dir=tmp_path / "cache")
    ds = xr.open_zarr(tmp_path / "f.zarr")
    ipe = ds.attrs["iterations_per_epoch"]
    assert ds.attrs["status"] == "failed" and "disk on fire" in ds.attrs["error"]
    assert ds.attrs["last_committed_step"] == ipe
    # closed by a healthy writer: trimmed to the rows written, every one of them committed
    assert ds.attrs["committed_rows"] == {d: ds.sizes[d] for d in ds.attrs["committed_rows"]}
    assert ds.sizes["step"] == ipe and np.isfinite(ds.loss.values).all()
    assert np.isfinite(ds.magnitude.sel(record_step=slice(0, ipe)).values).all()
    assert ds.sizes["epoch"] == 1 and np.isfinite(ds.test_accuracy.values[0])
    assert not (tmp_path / "f.zarr" / "writer.lock").exists()  # the lock is released


def test_recording_the_original_training(tmp_path):
    from conftest import tiny_config

    from shedding.experiment import record

    cfg = tiny_config("gmp", 0.5, record__record_pretrain=True, record__every=4)
    ds = xr.open_zarr(record(cfg, tmp_path / "p.zarr", cache_dir=tmp_path / "cache"))
    T, t, ipe = ds.attrs["T"], ds.attrs["t"], ds.attrs["iterations_per_epoch"]
    assert list(ds.step.values) == list(range(-T + 1, t + 1))
    assert list(ds.step_round.values) == [-1] * T + [0] * t
    assert ds.record_step.values[0] == -T and 0 in ds.record_step.values
    assert list(ds.epoch.values) == list(range(-2, 3)) and list(ds.epoch_step.values[:3]) == [
        -2 * ipe,
        -ipe,
        0,
    ]
    assert np.isfinite(ds.loss.values).all() and np.isfinite(ds.test_accuracy.values).all()
    assert (ds.shed_count.values[:T] == 0).all()  # no event yet: nothing is eligible to be shed
    # the learning rate replays the original schedule (0.1, x0.1 at 2ep) during the recorded
    # training
    np.testing.assert_allclose(ds.lr.values[:T], [0.1 if j < 2 * ipe else 0.01 for j in range(T)])
    # the pruned weights were computed from theta_T, the end of the recorded training
    pre = ds.pre_prune_magnitude.isel(event=0).values
    after = ds.magnitude.sel(record_step=0).values
    mask = ds["mask"].isel(event=0).values
    np.testing.assert_array_equal(after[mask], pre[mask])  # LR rewinding starts from theta_T * mask


def test_device_histogram_matches_numpy(recorded):
    g = zarr.open_group(str(recorded["random"]), mode="r")
    mag = np.asarray(g["magnitude"][:], dtype=np.float64)
    hist = np.asarray(g["magnitude_hist"][:])
    hsteps, rsteps = list(g["hist_step"][:]), list(g["record_step"][:])
    edges = np.concatenate([g["hist_bin_lo"][:], g["hist_bin_hi"][-1:]])
    starts, sizes = g["layer_start"][:], g["layer_size"][:]
    for k in (0, 7, len(hsteps) - 1):
        row = mag[rsteps.index(hsteps[k])]
        for li, (s, n) in enumerate(zip(starts, sizes, strict=True)):
            v = row[s : s + n]
            logs = np.log10(v[v > 0])
            expect, _ = np.histogram(np.clip(logs, edges[0], edges[-1] - 1e-9), bins=edges)
            got = hist[k, li]
            assert got.sum() == expect.sum() == (v > 0).sum()
            # float32 log10 on the device: only values within rounding of an edge may sit in the
            # next bin
            near = int((np.min(np.abs(logs[:, None] - edges[None, 1:-1]), axis=1) < 1e-5).sum())
            assert np.abs(got - expect).sum() <= 2 * near


def test_summary_only_run_without_snapshots(tmp_path):
    """--record-every 0: counts and device histograms only; analysis and report work, or say what
    they lack."""
    from conftest import tiny_config

    from shedding.analysis import cascade_summary, magnitude_histogram, open_run
    from shedding.analysis.lines import Line
    from shedding.analysis.shed import shed_curves
    from shedding.analysis.summary import summarize
    from shedding.experiment import record
    from shedding.reports import write_report

    cache = tmp_path / "cache"
    runs = {
        m: open_run(
            record(
                tiny_config(m, record__every=0, record__hist_every=4),
                tmp_path / f"{m}.zarr",
                cache_dir=cache,
            )
        )
        for m in ("random", "none")
    }
    ds = runs["random"]
    assert "magnitude" not in ds and "record_step" not in ds.dims
    assert list(ds.hist_step.values) == list(range(0, ds.attrs["t"] + 1, 4))
    res = cascade_summary(ds, runs["none"], window="round")
    assert res.attrs["verdict"] in ("cascade", "no cascade")
    h = magnitude_histogram(ds).compute()
    assert int(h.isel(record_step=0).sum()) == int(
        ds.event_survivors.sum()
    )  # every survivor counted once
    with pytest.raises(ValueError, match="needs magnitude snapshots"):
        shed_curves(ds, line=Line("std", 0.5))
    html = write_report(summarize(runs), tmp_path / "r.html").read_text()
    assert "Distribution of surviving |w|" in html and "move towards GMP" not in html


def test_slow_store_never_drops_a_step(tmp_path, monkeypatch):
    """A writer slower than training: training waits (back-pressure, recorded) and every row is
    written."""
    import time as _time

    from conftest import tiny_config

    from shedding.experiment import record
    from shedding.recording.store import ChunkWriter

    original = ChunkWriter.append

    def slow_append(self, rows):
        _time.sleep(0.03)
        original(self, rows)

    monkeypatch.setattr(ChunkWriter, "append", slow_append)
    cfg = tiny_config(record__chunk_steps=1)  # a chunk per snapshot: many slow writes
    ds = xr.open_zarr(record(cfg, tmp_path / "slow.zarr", cache_dir=tmp_path / "cache"))
    assert ds.attrs["status"] == "complete" and ds.attrs["writer_wait_seconds"] > 0.1
    assert np.isfinite(ds.loss.values).all() and (ds.shed_count.values >= 0).all()
    assert np.isfinite(ds.magnitude.values).all() and (ds.magnitude_hist.values >= 0).all()


def test_disk_error_stops_training_and_keeps_committed_prefix(tmp_path, monkeypatch):
    from conftest import tiny_config

    from shedding.experiment import record
    from shedding.recording.io_thread import RecorderIOError
    from shedding.recording.store import ChunkWriter

    original = ChunkWriter.append

    def failing_append(self, rows):  # the disk fills up once two chunks of snapshots are on it
        if self.array.name.endswith("magnitude") and self.pos >= 2 * self.chunk:
            raise OSError(28, "No space left on device")
        original(self, rows)

    monkeypatch.setattr(ChunkWriter, "append", failing_append)
    with pytest.raises(RecorderIOError, match="No space left on device"):
        record(tiny_config(), tmp_path / "full.zarr", cache_dir=tmp_path / "cache")
    ds = xr.open_zarr(tmp_path / "full.zarr")
    assert ds.attrs["status"] == "failed" and "No space left on device" in ds.attrs["error"]
    # the writer failed, so nothing trimmed the store: its committed rows are what it holds
    ds = ds.isel({d: slice(0, n) for d, n in ds.attrs["committed_rows"].items()})
    committed = ds.attrs["last_committed_step"]
    assert (
        committed is not None and committed >= ds.attrs["iterations_per_epoch"]
    )  # the first epoch got in
    assert np.isfinite(ds.loss.sel(step=slice(1, committed)).values).all()
    assert np.isfinite(ds.magnitude.sel(record_step=slice(0, committed)).values).all()
    assert not (tmp_path / "full.zarr" / "writer.lock").exists()


def test_sampled_profile_matches_full_magnitudes(tmp_path):
    from conftest import tiny_config

    from shedding.analysis import open_run, shed_fraction
    from shedding.analysis.samples import sample_trajectories, sampled_shed_fraction
    from shedding.experiment import record

    cfg = tiny_config("random", record__sample_every=2, record__sample_per_layer=100)
    ds = open_run(record(cfg, tmp_path / "s.zarr", cache_dir=tmp_path / "c"))
    which = ds.sample_weight.values
    sizes, starts = ds.layer_size.values, ds.layer_start.values
    per_layer = np.bincount(ds.sample_layer.values, minlength=4)
    assert list(per_layer) == [min(100, int(n)) for n in sizes]
    for i, (s, n) in enumerate(zip(starts, sizes, strict=True)):
        idx = which[ds.sample_layer.values == i]
        assert (idx >= s).all() and (idx < s + n).all() and (np.diff(idx) > 0).all()
    assert list(ds.sample_step.values) == list(range(0, ds.attrs["t"] + 1, 2))
    full = ds.magnitude.sel(record_step=ds.sample_step.values).values[:, which]
    np.testing.assert_array_equal(
        ds.sample_magnitude.values, full
    )  # the same values, gathered on the device
    conv2 = sample_trajectories(ds, "conv2.weight")
    assert conv2.sizes["sample"] == 100
    # the sampled estimate of S(t) equals the recount on the sampled weights, and its CI covers the
    # true S
    est = sampled_shed_fraction(ds)
    line = np.float32(ds.event_line.values[0])
    elig = ds["mask"].values[0][which].astype(bool) & (ds.magnitude.values[0][which] >= line)
    k = 4
    step = int(est.step.values[k])
    expect = ((ds.magnitude.sel(record_step=step).values[which] < line) & elig).sum() / elig.sum()
    assert float(est.estimate[k]) == pytest.approx(expect)
    truth = float(shed_fraction(ds).shed_fraction_global.sel(step=step))
    assert float(est.low[k]) <= truth <= float(est.high[k])
    # the same seed samples the same weights
    again = open_run(record(cfg, tmp_path / "s2.zarr", cache_dir=tmp_path / "c"))
    np.testing.assert_array_equal(again.sample_weight.values, which)


def test_balanced_chunk_lengths():
    """As few chunks of at most ``most`` as hold ``n``, of about one length: no nearly empty edge
    chunk."""
    from shedding.recording.store import balanced_chunk

    for n in range(1, 300):
        for most in (1, 2, 7, 8, 64, 256):
            size = balanced_chunk(n, most)
            k = -(-n // most)  # the fewest chunks of at most `most`
            assert size <= most and -(-n // size) == k
            assert n - (k - 1) * size > size - k  # the last chunk is within k of the others
    assert (
        balanced_chunk(270896, 1 << 18) == 135448
    )  # ResNet-20's weights: two halves, not 262144 + 8752
    assert (
        balanced_chunk(65, 64) == 33 and balanced_chunk(64, 64) == 64 and balanced_chunk(0, 64) == 1
    )


def test_unchanged_tables_and_commit_not_rewritten(tmp_path, monkeypatch):
    """A flush rewrites only the event/epoch tables that changed, and the root attributes only for a
    new commit (each rewrite of them rewrites the whole consolidated metadata); the store still ends
    with every value."""
    from conftest import tiny_config

    from shedding.experiment import record

    writes: list[tuple[str, np.ndarray]] = []
    commits: list[object] = []
    whole, set_attrs = RunStore.write_whole, RunStore.set_attrs

    def spy_whole(self, name, values):
        writes.append((name, np.array(values, copy=True)))
        whole(self, name, values)

    def spy_attrs(self, attrs=None, /, **more):
        if "last_committed_step" in more:  # a commit: the step and the rows (a growable store)
            commits.append((more["last_committed_step"], more.get("committed_rows")))
        set_attrs(self, attrs, **more)

    monkeypatch.setattr(RunStore, "write_whole", spy_whole)
    monkeypatch.setattr(RunStore, "set_attrs", spy_attrs)
    path = record(tiny_config(), tmp_path / "run.zarr", cache_dir=tmp_path / "cache")
    last: dict[str, np.ndarray] = {}
    for name, values in writes:
        if name in last:
            assert not np.array_equal(last[name], values, equal_nan=values.dtype.kind == "f"), name
        last[name] = values
    assert {"event_tau", "event_final_test_accuracy", "test_accuracy", "train_loss"} <= set(last)
    assert all(a != b for a, b in zip(commits, commits[1:], strict=False)) and len(commits) >= 2
    ds = xr.open_zarr(path)
    for name, values in last.items():
        np.testing.assert_array_equal(ds[name].values, values)
    assert ds.attrs["last_committed_step"] == commits[-1][0] == int(ds.step.values[-1])
    assert (
        np.isfinite(ds.test_accuracy.values).all()
        and np.isfinite(ds.event_final_test_accuracy.values).all()
    )


def _hand_recorder(path, params, masks, **store_kw):
    """A recorder on a fresh two-step store of ``params`` (histogram every step), past its prune
    event and two training steps, built by hand as the experiment would drive it."""
    import torch

    from shedding.recording.layout import build_layers, build_timeline
    from shedding.recording.recorder import Recorder
    from shedding.training.loop import TrainState

    layers = build_layers([(k, tuple(p.shape)) for k, p in params.items()])
    tl = build_timeline(2, 2, 1, 0, 2, False, 1, 0)
    rec = Recorder(
        RunStore.create(path, layers, tl, {}, "float32", 8, **store_kw),
        layers,
        tl,
        params,
        "float32",
        torch.device("cpu"),
    )
    flat_mag = torch.cat([p.detach().reshape(-1) for p in params.values()])
    pruned = [int((m == 0).sum()) for m in masks.values()]
    rec.begin_event(
        0, 0, masks, flat_mag, pruned, sum(pruned) / flat_mag.numel(), 0.0, 0.0, float("nan")
    )
    rec.begin_phase("retrain", 0, 0)
    state = TrainState(model=torch.nn.Module(), optimizer=None, num_steps=2, iterations_per_epoch=2)
    for step in (1, 2):
        state.step, state.loss, state.lr = step, torch.tensor(0.0), 0.1
        rec.on_step_end(state)
    return rec


@pytest.mark.parametrize("n_layers, key", [(511, "int16"), (513, "int64")])
def test_histogram_keys_past_int16(tmp_path, n_layers, key):
    """64 bins x 511 layers still fit int16 keys; at 513 layers the histogram counts int64 keys.
    Either way each layer's counts are exactly numpy's, for magnitudes placed at bin centres (no
    rounding near an edge)."""
    import torch

    rng = np.random.default_rng(0)
    nb, lo, hi = 64, -8.0, 1.0
    scale = nb / (hi - lo)
    bins = rng.integers(0, nb, size=(n_layers, 6))
    values = 10.0 ** (lo + (bins + 0.5) / scale)
    values[:, 0] = 0.0  # a pruned weight in every layer: not counted
    params = {
        f"l{i}.weight": torch.nn.Parameter(torch.tensor(v, dtype=torch.float32).reshape(2, 3))
        for i, v in enumerate(values)
    }
    masks = {k: (p != 0).float() for k, p in params.items()}
    rec = _hand_recorder(tmp_path / "run.zarr", params, masks, hist_bins=nb, hist_range=(lo, hi))
    assert str(rec._hist.buffers[1].dtype) == f"torch.{key}"
    rec.close("complete")
    hist = np.asarray(zarr.open_group(str(tmp_path / "run.zarr"), mode="r")["magnitude_hist"][:])
    expect = np.stack([np.bincount(b[1:], minlength=nb) for b in bins])
    assert hist.shape[1:] == (n_layers, nb)
    for row in hist:
        np.testing.assert_array_equal(row, expect)


def test_tables_interrupted_while_handed_over_are_written_at_close(tmp_path):
    """Ctrl-C or SIGTERM (a KeyboardInterrupt) that stops a hand-over of the tables, say while it
    waits on a full queue, leaves them to close's flush: the interrupted store holds the tables as
    they are in memory."""
    import torch

    params = {f"l{i}.weight": torch.nn.Parameter(torch.rand(2, 3) + 0.1) for i in range(2)}
    rec = _hand_recorder(
        tmp_path / "run.zarr", params, {k: torch.ones_like(p) for k, p in params.items()}
    )
    submit = rec.io.submit

    def interrupted(*args):
        rec.io.submit = submit
        raise KeyboardInterrupt("signal 15")

    rec.io.submit = interrupted
    with pytest.raises(KeyboardInterrupt):
        rec.end_round(0, 0.75)
    rec.close("interrupted")  # what the experiment does on Ctrl-C / SIGTERM
    g = zarr.open_group(str(tmp_path / "run.zarr"), mode="r")
    assert g.attrs["status"] == "interrupted" and g.attrs["last_committed_step"] == 2
    np.testing.assert_array_equal(g["event_final_test_accuracy"][:], [0.75])


def test_second_writer_message_by_host(tmp_path):
    """A live writer on this machine is refused as such; a lock from another machine, which can't be
    checked from here, is refused with the file to remove if that writer is gone; removing it lets
    the store be reopened."""
    import re
    import socket

    from shedding.recording.layout import build_layers
    from shedding.recording.store import LOCK_NAME, check_path

    layers = build_layers([("a.weight", (2, 3))])
    tl = build_timeline(4, 2, 1, 1, 2, False)
    path = tmp_path / "s.zarr"
    store = RunStore.create(path, layers, tl, {}, "float32", 4)
    with pytest.raises(StoreError, match="one writer per store") as live:
        RunStore.reopen(path)
    assert "remove" not in str(live.value)  # this process is alive: nothing to remove
    store.release()
    (path / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "node-elsewhere", "time": 1.7e9}))
    for attempt in (lambda: RunStore.reopen(path), lambda: check_path(path, overwrite=True)):
        with pytest.raises(
            StoreError, match=r"on node-elsewhere \(locked 2023-11-14 22:13:20 UTC\).*remove"
        ) as e:
            attempt()
        assert str(path / LOCK_NAME) in str(e.value) and "\n" not in str(e.value)
    # odd lock contents still give the one-line refusal (the time as '?'), or count as no lock when
    # not a lock
    for content, since in (
        ({"pid": 7, "host": "elsewhere"}, "?"),
        ({"pid": 7, "host": "elsewhere", "time": None}, "?"),
        ({"pid": 7, "host": "elsewhere", "time": "soon"}, "?"),
        ({"pid": 7, "host": "elsewhere", "time": float("nan")}, "?"),
        ({"pid": 7, "host": "elsewhere", "time": 1e300}, "?"),
        ({"pid": "x", "host": socket.gethostname(), "time": 0}, "1970-01-01 00:00:00 UTC"),
    ):
        (path / LOCK_NAME).write_text(json.dumps(content))
        with pytest.raises(
            StoreError,
            match=rf"\(locked {re.escape(since)}\); one writer per store; it can't be "
            "checked from this machine",
        ) as e:
            RunStore.reopen(path)
        assert "\n" not in str(e.value)
    (path / LOCK_NAME).write_text(
        json.dumps({"pid": 2**80, "host": socket.gethostname(), "time": 0})
    )
    check_path(path, overwrite=True)  # this machine's pid that no process can have: stale
    for content in ("[1]", "null", "42", "{"):
        (path / LOCK_NAME).write_text(content)
        check_path(path, overwrite=True)  # not a lock's JSON: no writer holds the store (as before)
    (path / LOCK_NAME).unlink()
    RunStore.reopen(path).release()
    from shedding.recording.store import held_error

    assert "retry" in str(held_error(path, None))  # the lock went away while a caller looked
