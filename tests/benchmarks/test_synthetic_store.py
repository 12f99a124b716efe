"""The synthetic store generator used by the analysis-throughput benchmark: a valid, self-consistent
run."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

import shedding.recording.store as store_module
from benchmarks.synthetic_store import synthesize, synthetic_layers
from shedding.analysis import magnitude_histogram, open_run, shed_fraction, shed_from_magnitude
from shedding.recording.store import LOCK_NAME


def _raw(path):
    g = zarr.open_group(str(path), mode="r")
    return {k: np.asarray(g[k][:]) for k in g.array_keys()}


def _per_layer(flags: np.ndarray, layer_of: np.ndarray, n_layers: int) -> np.ndarray:
    """(rows, weights) flags -> (rows, layers) counts."""
    return np.stack([np.bincount(layer_of[row], minlength=n_layers) for row in flags.astype(bool)])


@pytest.fixture(scope="module", params=["float32", "float16"])
def synthetic(request, tmp_path_factory):
    # small weight chunks so the store has several weight-chunk columns and layers that straddle
    # them
    mp = pytest.MonkeyPatch()
    mp.setattr(store_module, "WEIGHT_CHUNK", 256)
    try:
        path = synthesize(
            tmp_path_factory.mktemp("syn") / "syn.zarr",
            n_weights=1000,
            n_snapshots=21,
            layers=5,
            chunk_steps=8,
            dtype=request.param,
            seed=3,
            progress=False,
        )
    finally:
        mp.undo()
    return path, request.param


def test_layers_sum_to_n_weights():
    for n, n_l in ((1, 8), (5, 8), (1000, 8), (2**21 + 7, 8), (12345, 3)):
        layers = synthetic_layers(n, n_l)
        assert len(layers) == min(n, n_l)
        assert sum(layer.size for layer in layers) == n
        assert all(layer.size >= 1 for layer in layers)
        assert [layer.start for layer in layers] == list(
            np.cumsum([0] + [la.size for la in layers])[:-1]
        )


def test_store_is_complete_and_valid(synthetic):
    path, dtype = synthetic
    ds = open_run(path)
    assert ds.attrs["status"] == "complete" and ds.attrs["last_committed_step"] == 21
    assert not (path / LOCK_NAME).exists()
    assert ds.magnitude.dtype == np.dtype(dtype)
    # 22 x 1000 in balanced chunks of at most 8 x 256
    assert ds.magnitude.shape == (22, 1000) and ds.magnitude.data.chunksize == (8, 250)
    assert list(ds.record_step.values) == list(range(22)) and list(ds.step.values) == list(
        range(1, 22)
    )
    raw = _raw(path)
    for name in (
        "loss",
        "lr",
        "shed_count",
        "shed_events",
        "recover_events",
        "event_tau",
        "event_eligible",
        "train_accuracy",
        "test_loss",
    ):
        assert np.all(np.isfinite(raw[name])) and np.all(raw[name] >= 0), name


def test_magnitudes_mask_and_tau(synthetic):
    path, dtype = synthetic
    raw = _raw(path)
    mag = raw["magnitude"].astype(np.float64)
    mask = raw["mask"][0].astype(bool)
    pre = raw["pre_prune_magnitude"][0].astype(np.float64)
    tau, line = float(raw["event_tau"][0]), float(raw["event_line"][0])
    assert np.all(np.isfinite(mag)) and np.all(mag >= 0)
    assert mask.sum() == 500 and raw["event_sparsity"][0] == 0.5  # exactly half pruned
    assert pre[~mask].max() < tau < pre[mask].min()  # GMP: tau separates pruned and kept
    assert line == tau  # alpha = 1
    assert np.all(mag[:, ~mask] == 0) and np.all(
        mag[:, mask] > 0
    )  # pruned stay 0, survivors stay alive
    np.testing.assert_array_equal(
        raw["magnitude"][0], (pre * mask).astype(dtype)
    )  # step 0 = post-prune
    sizes = raw["layer_size"]
    np.testing.assert_array_equal(raw["event_survivors"][0] + raw["event_pruned"][0], sizes)
    np.testing.assert_array_equal(
        raw["event_survivors"][0], np.bincount(raw["weight_layer"][mask], minlength=5)
    )


def test_counts_equal_numpy_recount(synthetic):
    path, _ = synthetic
    raw = _raw(path)
    layer_of = raw["weight_layer"]
    mag, mask, line = raw["magnitude"], raw["mask"][0].astype(bool), float(raw["event_line"][0])
    elig = mask & (mag[0] >= line)
    below = elig & (mag < line)
    counts = _per_layer(below, layer_of, 5)
    assert counts[0].sum() == 0 and counts[-1].sum() > 0  # the drift sheds some eligible survivors
    assert 0 < counts[-1].sum() < elig.sum()
    np.testing.assert_array_equal(raw["shed_count"], counts[1:])
    np.testing.assert_array_equal(
        raw["shed_events"], _per_layer(below[1:] & ~below[:-1], layer_of, 5)
    )
    np.testing.assert_array_equal(
        raw["recover_events"], _per_layer(below[:-1] & ~below[1:], layer_of, 5)
    )
    np.testing.assert_array_equal(
        raw["event_eligible"][0], np.bincount(layer_of[elig], minlength=5)
    )
    np.testing.assert_array_equal(
        raw["event_below"][0], np.bincount(layer_of[mask & ~elig], minlength=5)
    )

    ds = open_run(path)
    got = shed_from_magnitude(ds).compute()
    np.testing.assert_array_equal(got.shed_count.transpose("record_step", "layer").values, counts)
    np.testing.assert_array_equal(got.eligible.values, raw["event_eligible"][0])
    np.testing.assert_array_equal(got.below.values, raw["event_below"][0])
    assert got.attrs["line"] == pytest.approx(line)
    f = shed_fraction(ds).compute()
    np.testing.assert_allclose(f.shed_fraction_global.values, counts[1:].sum(1) / elig.sum())
    h = magnitude_histogram(ds).compute()
    np.testing.assert_array_equal(h.sum("bin").values, (mag > 0).sum(1))


def test_deterministic_for_a_seed(synthetic, tmp_path):
    path, dtype = synthetic
    mp = pytest.MonkeyPatch()
    mp.setattr(store_module, "WEIGHT_CHUNK", 256)
    try:
        again = synthesize(
            tmp_path / "again.zarr",
            1000,
            21,
            layers=5,
            chunk_steps=8,
            dtype=dtype,
            seed=3,
            progress=False,
        )
    finally:
        mp.undo()
    np.testing.assert_array_equal(_raw(again)["magnitude"], _raw(path)["magnitude"])
