"""shedding.watch on plain PyTorch loops: the store against torch's own buffers and numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr
from torch.nn.utils import prune

import shedding
from shedding.recording.encoding import FLOOR_RATIO, RELATIVE_ERROR
from shedding.watching.watched import WatchError


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(12, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(64, 12, generator=g), torch.randint(0, 3, (64,), generator=g)


def _effective(model: torch.nn.Module) -> np.ndarray:
    """|w| of both Linear weights as the model uses them (orig * mask when pruned), flat."""
    out = []
    for m in (model[0], model[2]):
        w = m.weight_orig * m.weight_mask if hasattr(m, "weight_orig") else m.weight
        out.append(w.detach().abs().reshape(-1))
    return torch.cat(out).numpy().astype(np.float32)


def _train(model, opt, rec, n, seen, first):
    x, y = _data()
    for i in range(n):
        xb, yb = x[i % 4 * 16 : (i % 4 + 1) * 16], y[i % 4 * 16 : (i % 4 + 1) * 16]
        loss = torch.nn.functional.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        rec.log(loss=loss)
        seen[first + i + 1] = (_effective(model), loss.item())


def _gmp_tau(mag: np.ndarray, sparsity: float) -> float:
    s = np.sort(mag.astype(np.float64))
    k = int(round(sparsity * len(s)))
    return float((s[k - 1] + s[k]) / 2)


@pytest.fixture(scope="module")
def pruned_run(tmp_path_factory):
    """12 original steps, a 50% global L1 prune with torch.nn.utils.prune, 20 retraining steps with
    momentum and weight decay; every state recorded as float32, in chunks of 4 snapshots."""
    path = tmp_path_factory.mktemp("watch") / "run.zarr"
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9, weight_decay=1e-3)
    seen: dict[int, tuple[np.ndarray, float]] = {0: (_effective(model), np.nan)}
    with shedding.watch(
        model,
        path,
        optimizer=opt,
        seed=3,
        condition="gmp",
        profile="full",
        every=1,
        dtype="float32",
        chunk_steps=4,
    ) as rec:
        _train(model, opt, rec, 12, seen, 0)
        pre = _effective(model)
        prune.global_unstructured(
            [(model[0], "weight"), (model[2], "weight")],
            pruning_method=prune.L1Unstructured,
            amount=0.5,
        )
        rec.prune_event()
        seen[12] = (_effective(model), seen[12][1])
        _train(model, opt, rec, 20, seen, 12)
    return path, model, seen, pre


def test_masks_are_torchs_buffers(pruned_run):
    path, model, _, _ = pruned_run
    ds = xr.open_zarr(path)
    torch_mask = torch.cat([model[0].weight_mask.reshape(-1), model[2].weight_mask.reshape(-1)])
    np.testing.assert_array_equal(ds["mask"].isel(event=0).values, torch_mask.bool().numpy())


def test_magnitudes_are_orig_times_mask_at_every_step(pruned_run):
    path, _, seen, _ = pruned_run
    ds = xr.open_zarr(path)
    # the original training is renumbered so that the prune event is step 0
    np.testing.assert_array_equal(ds["record_step"].values, np.arange(-12, 21))
    np.testing.assert_array_equal(ds["step"].values, np.arange(-11, 21))
    mags = ds["magnitude"].values
    for row, step in enumerate(ds["record_step"].values):
        np.testing.assert_array_equal(mags[row], seen[int(step) + 12][0])
    # pruned entries of weight_orig drift under momentum and weight decay; recorded as 0
    alive = ds["mask"].isel(event=0).values
    assert np.all(mags[12:, ~alive] == 0)


def test_pruned_entries_of_weight_orig_did_drift(pruned_run):
    _, model, _, _ = pruned_run
    orig, mask = model[0].weight_orig, model[0].weight_mask
    assert float((orig.abs() * (1 - mask)).max()) > 0  # weight_orig alone would be wrong


def test_loss_and_tau_and_shed_counts_against_numpy(pruned_run):
    path, _, seen, pre = pruned_run
    ds = xr.open_zarr(path, mask_and_scale=False)
    steps = ds["step"].values
    np.testing.assert_allclose(ds["loss"].values, [seen[int(s) + 12][1] for s in steps], rtol=1e-6)
    tau = _gmp_tau(pre, 0.5)
    assert float(ds["event_tau"][0]) == pytest.approx(tau, rel=1e-6)
    assert float(ds["event_line"][0]) == pytest.approx(tau, rel=1e-6)
    assert float(ds["event_sparsity"][0]) == 0.5
    alive = ds["mask"].isel(event=0).values
    at_event = seen[12][0]
    eligible = alive & (at_event >= tau)
    sizes = ds["layer_size"].values
    layer = np.repeat(np.arange(len(sizes)), sizes)
    for s in range(1, 21):
        below = eligible & (seen[s + 12][0] < tau)
        expected = np.bincount(layer[below], minlength=len(sizes))
        got = ds["shed_count"].sel(step=s).values
        np.testing.assert_array_equal(got, expected, err_msg=f"step {s}")
    assert np.all(ds["shed_count"].sel(step=slice(None, 0)).values == 0)


def test_store_is_trimmed_and_complete(pruned_run):
    path, _, _, _ = pruned_run
    ds = xr.open_zarr(path)
    assert ds.attrs["status"] == "complete"
    assert ds.attrs["committed_rows"]["step"] == ds.sizes["step"] == 32
    assert ds.sizes["event"] == 1
    assert ds.attrs["condition"] == "gmp" and ds.attrs["seed"] == 3
    assert ds.attrs["control"] is False and ds.attrs["line_sparsity"] == 0.5


def test_control_records_the_line_and_prunes_nothing(tmp_path):
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with shedding.watch(model, tmp_path / "c.zarr", optimizer=opt, condition="control") as rec:
        _train(model, opt, rec, 5, {}, 0)
        mag = _effective(model)
        rec.prune_event(sparsity=0.5)
        _train(model, opt, rec, 5, {}, 5)
    ds = xr.open_zarr(tmp_path / "c.zarr")
    assert bool(ds["mask"].all())
    assert float(ds["event_line"][0]) == pytest.approx(_gmp_tau(mag, 0.5), rel=1e-6)
    assert float(ds["event_sparsity"][0]) == 0.0
    assert ds.attrs["control"] is True and ds.attrs["line_sparsity"] == 0.5


def test_exact_zeros_and_a_masks_dict(tmp_path):
    """A loop that prunes by zeroing (and re-zeroes after each step), then a dict of masks."""
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    w0 = model[0].weight
    keep = w0.detach().abs() > w0.detach().abs().median()
    with shedding.watch(model, tmp_path / "z.zarr", optimizer=opt, profile="full") as rec:
        _train(model, opt, rec, 3, {}, 0)
        with torch.no_grad():
            w0.mul_(keep)
        rec.prune_event()
        for _ in range(3):  # momentum moves the zeros; the recording reads them times the mask
            model(torch.randn(4, 12)).sum().backward()
            opt.step()
            with torch.no_grad():
                w0.mul_(keep)
        second = {"2.weight": torch.arange(24).reshape(3, 8) % 2 == 0}
        rec.prune_event(masks=second)
        assert hasattr(model[2], "weight_mask")  # applied with custom_from_mask
    ds = xr.open_zarr(tmp_path / "z.zarr")
    masks = ds["mask"].values
    np.testing.assert_array_equal(masks[0, :96], keep.reshape(-1).numpy())
    np.testing.assert_array_equal(masks[1, 96:], second["2.weight"].reshape(-1).numpy())
    after = ds["magnitude"].sel(record_step=slice(0, None)).values[:, :96]
    assert len(after) == 4 and np.all(after[:, ~masks[0, :96]] == 0)


def test_bad_input_is_one_line(tmp_path):
    with pytest.raises(WatchError, match="no Conv, Linear or Conv1D weight"):
        shedding.watch(torch.nn.Sequential(torch.nn.ReLU()), tmp_path / "n.zarr")
    assert not (tmp_path / "n.zarr").exists()
    model = _model()
    with shedding.watch(model, tmp_path / "b.zarr") as rec:
        with pytest.raises(WatchError, match="has shape") as e:
            rec.prune_event(masks={"0.weight": torch.ones(3, 3)})
        assert "\n" not in str(e.value)
        with torch.no_grad():
            model[0].weight[0].zero_()
        rec.prune_event()
        with torch.no_grad():
            model[0].weight[0].fill_(1.0)
        with pytest.raises(WatchError, match="revive 12 weight"):
            rec.prune_event()
    with pytest.raises(WatchError, match="no parameter"):
        shedding.watch(_model(), tmp_path / "p.zarr", params=["nope.weight"])


def test_a_zero_initialised_layer_is_not_pruned_by_another_layers_pruning(tmp_path):
    """torch.nn.utils.prune on one layer: a layer without a mask buffer keeps its mask, even
    when it starts at zero (adaLN-zero style heads)."""
    model = _model()
    with torch.no_grad():
        model[2].weight.zero_()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with shedding.watch(model, tmp_path / "zero.zarr", optimizer=opt, profile="full") as rec:
        prune.l1_unstructured(model[0], "weight", amount=0.5)
        rec.prune_event()
        _train(model, opt, rec, 3, {}, 0)
        prune.l1_unstructured(model[0], "weight", amount=0.5)
        rec.prune_event()
    ds = xr.open_zarr(tmp_path / "zero.zarr")
    assert bool(ds["mask"].isel(event=1, weight=slice(96, None)).all())
    assert float(ds["magnitude"].isel(record_step=-1, weight=slice(96, None)).max()) > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_watch_on_cuda_matches_the_model(tmp_path):
    """On the device: losses stay tensors there (no host sync), the store equals the model."""
    model = _model().cuda()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = (t.cuda() for t in _data())
    seen = []
    with shedding.watch(model, tmp_path / "cuda.zarr", optimizer=opt, profile="full") as rec:
        for i in range(6):
            if i == 3:
                prune.global_unstructured(
                    [(model[0], "weight"), (model[2], "weight")], prune.L1Unstructured, amount=0.5
                )
                rec.prune_event()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            rec.log(loss=loss)
            seen.append(loss.item())
    ds = xr.open_zarr(tmp_path / "cuda.zarr")
    np.testing.assert_allclose(ds["loss"].values, seen, rtol=1e-6)
    mask = torch.cat([model[0].weight_mask.reshape(-1), model[2].weight_mask.reshape(-1)])
    np.testing.assert_array_equal(ds["mask"].isel(event=0).values, mask.bool().cpu().numpy())
    last = torch.cat(
        [(m.weight_orig * m.weight_mask).reshape(-1) for m in (model[0], model[2])]
    ).abs()
    np.testing.assert_array_equal(
        ds["magnitude"].isel(record_step=-1).values, last.half().cpu().numpy()
    )


def test_sample_profile_log8_histograms_and_extra_lines(pruned_run, tmp_path):
    """The other profiles: sampled weights, log8 snapshots, histograms and extra lines, each
    against the float32 run of the same training (its states are the fixture's)."""
    _, _, seen, _ = pruned_run
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9, weight_decay=1e-3)
    kw = dict(optimizer=opt, seed=3, every=2, hist_every=4, lines=["abs:0.05", "gmp:0.5"])
    path = tmp_path / "log8.zarr"
    with shedding.watch(model, path, profile="full", dtype="log8", **kw) as rec:
        _train(model, opt, rec, 12, {}, 0)
        prune.global_unstructured(
            [(model[0], "weight"), (model[2], "weight")], prune.L1Unstructured, amount=0.5
        )
        rec.prune_event()
        _train(model, opt, rec, 20, {}, 12)
    from shedding.analysis.io import open_run

    ds = open_run(path)
    assert list(ds["record_step"].values) == list(range(-12, 21, 2))
    sizes = ds["layer_size"].values
    layer = np.repeat(np.arange(len(sizes)), sizes)
    for step in ds["record_step"].values:
        exact = seen[int(step) + 12][0]
        decoded = ds["magnitude"].sel(record_step=step).values
        # log8's bound: 1% relative above its floor (1/154 of the layer's largest), the floor below
        top = np.array([exact[layer == i].max() for i in range(len(sizes))])[layer]
        above = exact >= top * FLOOR_RATIO
        np.testing.assert_allclose(decoded[above], exact[above], rtol=RELATIVE_ERROR * 1.001)
        assert np.all(np.abs(decoded - exact)[~above] <= (top * FLOOR_RATIO)[~above])
    assert list(ds["hist_step"].values) == list(range(-12, 21, 4))
    counts = ds["magnitude_hist"].sel(hist_step=20).values.sum(axis=1)
    alive = ds["mask"].isel(event=0).values
    np.testing.assert_array_equal(counts, np.bincount(layer[alive], minlength=len(sizes)))
    abs_line = list(ds["line"].values).index("abs:0.05")
    eligible = alive & (seen[12][0] >= 0.05)
    below = eligible & (seen[32][0] < 0.05)
    np.testing.assert_array_equal(
        ds["line_shed_count"].sel(step=20).values[abs_line],
        np.bincount(layer[below], minlength=len(sizes)),
    )


def test_sample_profile_records_the_seeded_subset(pruned_run, tmp_path):
    _, _, seen, _ = pruned_run
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9, weight_decay=1e-3)
    path = tmp_path / "sample.zarr"
    kw = dict(optimizer=opt, seed=3, every=3, sample_per_layer=5, dtype="float32")
    with shedding.watch(model, path, profile="sample", **kw) as rec:
        _train(model, opt, rec, 12, {}, 0)
        prune.global_unstructured(
            [(model[0], "weight"), (model[2], "weight")], prune.L1Unstructured, amount=0.5
        )
        rec.prune_event()
        _train(model, opt, rec, 20, {}, 12)
    ds = xr.open_zarr(path)
    assert "magnitude" not in ds and ds.sizes["sample"] == 10
    index = ds["sample_weight"].values
    assert list(ds["sample_step"].values) == [*range(-12, 0, 3), *range(0, 21, 3), 20]
    for row, step in enumerate(ds["sample_step"].values):
        np.testing.assert_array_equal(
            ds["sample_magnitude"].values[row], seen[int(step) + 12][0][index]
        )


def _watched_pair_of_settings(root, lrs: dict[str, float], named: bool) -> dict[str, str]:
    """A GMP run and a control per learning rate, all of seed 0, settings named after the LR when
    ``named``; their store paths by name."""
    from shedding.analysis import open_run

    paths = {}
    for tag, lr in lrs.items():
        for kind in ("gmp", "control"):
            model = _model()
            opt = torch.optim.SGD(model.parameters(), lr=lr)
            path = root / f"{kind}-{tag}.zarr"
            with shedding.watch(
                model, path, optimizer=opt, condition=kind, setting=tag if named else None
            ) as rec:
                _train(model, opt, rec, 4, {}, 0)
                if kind == "gmp":
                    params = [(model[0], "weight"), (model[2], "weight")]
                    prune.global_unstructured(params, prune.L1Unstructured, amount=0.5)
                    rec.prune_event()
                else:
                    rec.prune_event(sparsity=0.5)
                _train(model, opt, rec, 4, {}, 4)
            paths[f"{kind}-{tag}"] = open_run(path)
    return paths


def test_a_named_setting_matches_each_run_with_its_own_control(tmp_path):
    from shedding.analysis.controls import match_controls
    from shedding.analysis.run_identity import run_identity

    runs = _watched_pair_of_settings(tmp_path / "named", {"a": 0.1, "b": 0.01}, named=True)
    assert match_controls(runs) == {
        "gmp-a": "control-a",
        "control-a": None,
        "gmp-b": "control-b",
        "control-b": None,
    }
    # one condition name, two settings: two conditions
    keys = {run_identity(runs[n]).group_key for n in ("gmp-a", "gmp-b")}
    assert len(keys) == 2
    # unnamed, the two controls of seed 0 both match each run: an error naming both
    unnamed = _watched_pair_of_settings(tmp_path / "unnamed", {"a": 0.1, "b": 0.01}, named=False)
    with pytest.raises(ValueError, match="control-a.*control-b|control-b.*control-a"):
        match_controls(unnamed)
