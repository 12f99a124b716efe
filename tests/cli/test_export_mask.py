"""``shedding export-mask``: the file torch.nn.utils.prune applies, read from the store by plain
xarray; bad input is one line and exit 2; and the round trip through ``--prune-method file``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.utils.prune as tprune
import xarray as xr
from typer.testing import CliRunner

from shedding.analysis.io import open_run
from shedding.analysis.masks_export import event_masks
from shedding.models import build_model

runner = CliRunner()


def _app():
    """The CLI with ``export-mask`` (registered here too, until cli/main.py registers it)."""
    from shedding.cli.main import app
    from shedding.cli.mask_commands import register

    if not any(c.name == "export-mask" for c in app.registered_commands):
        register(app)
    return app


def _invoke(*args: str):
    return runner.invoke(_app(), [str(a) for a in args])


def _plain_masks(path: Path, event: int) -> dict[str, np.ndarray]:
    """Each layer's mask from the store read with plain xarray (codes decoded by hand)."""
    ds = xr.open_zarr(path)
    flat = ds["mask"].isel(event=event).values.astype(bool)
    names, shapes = ds["layer"].attrs["labels"], ds["layer_shape"].attrs["labels"]
    out = {}
    for code, shape, start, size in zip(
        ds.layer.values,
        ds.layer_shape.values,
        ds.layer_start.values,
        ds.layer_size.values,
        strict=True,
    ):
        dims = tuple(int(d) for d in shapes[int(shape)].split("x"))
        out[names[int(code)]] = flat[int(start) : int(start + size)].reshape(dims)
    return out


def _export(run: Path, out: Path, *extra: str) -> dict[str, torch.Tensor]:
    res = _invoke("export-mask", run, "--out", out, *extra)
    assert res.exit_code == 0, res.output
    assert str(out) in res.stdout
    return torch.load(out, weights_only=True)


def test_export_writes_the_recorded_masks_by_parameter_name(recorded, tmp_path) -> None:
    saved = _export(recorded["gmp"], tmp_path / "masks.pt", "--event", "0")
    plain = _plain_masks(recorded["gmp"], 0)
    assert (
        list(saved) == list(plain) == ["conv1.weight", "conv2.weight", "conv3.weight", "fc.weight"]
    )
    for k, m in saved.items():
        assert m.dtype == torch.bool and np.array_equal(m.numpy(), plain[k]), k
    n = sum(m.numel() for m in saved.values())
    assert sum(int((~m).sum()) for m in saved.values()) == round(0.5 * n)  # the GMP run's target
    last = _export(recorded["gmp"], tmp_path / "last.pt")  # --event defaults to the last
    assert all(torch.equal(last[k], saved[k]) for k in saved)  # one-shot: one event


def test_exported_masks_apply_with_custom_from_mask(recorded, tmp_path) -> None:
    saved = _export(recorded["random"], tmp_path / "masks.pt", "--event", "0")
    torch.manual_seed(0)
    model = build_model("small_cnn", 1, 10, (8, 8))
    for name, mask in saved.items():
        module = model.get_submodule(name.rsplit(".", 1)[0])
        tprune.custom_from_mask(module, "weight", mask)
    applied = torch.cat([model.get_submodule(k[:-7]).weight_mask.reshape(-1) for k in saved])
    recorded_flat = xr.open_zarr(recorded["random"])["mask"].isel(event=0).values
    assert np.array_equal(applied.numpy().astype(bool), recorded_flat.astype(bool))
    for k in saved:
        mod = model.get_submodule(k[:-7])
        assert torch.equal(mod.weight, mod.weight_orig * saved[k])  # what torch's forward uses


def test_event_masks_is_pure_over_the_opened_run(recorded) -> None:
    ds = open_run(recorded["gmp"])
    masks = event_masks(ds, -1)
    plain = _plain_masks(recorded["gmp"], 0)
    assert list(masks) == list(plain) and all(np.array_equal(masks[k], plain[k]) for k in plain)
    with pytest.raises(ValueError, match="event 1 is out of range"):
        event_masks(ds, 1)
    unwritten = ds.assign(event_sparsity=ds.event_sparsity * np.nan)
    with pytest.raises(ValueError, match="was never recorded"):
        event_masks(unwritten, 0)


def _one_line_error(res) -> str:
    assert res.exit_code == 2, res.output
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), res.stderr
    return lines[0]


def test_bad_export_input_is_one_line_and_writes_nothing(recorded, tmp_path) -> None:
    out = tmp_path / "m.pt"
    line = _one_line_error(_invoke("export-mask", recorded["gmp"], "--event", "3", "--out", out))
    assert "event 3 is out of range: gmp has 1 prune event" in line
    (tmp_path / "folder").mkdir()
    line = _one_line_error(_invoke("export-mask", tmp_path / "folder", "--out", out))
    assert "not a Zarr store" in line
    line = _one_line_error(_invoke("export-mask", recorded["gmp"], "--out", tmp_path))
    assert "--out" in line and "is a folder" in line
    line = _one_line_error(_invoke("export-mask", recorded["gmp"]))
    assert "--out" in line
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["folder"]


def test_round_trip_through_prune_method_file(recorded, tmp_path) -> None:
    """Export event 0 of the random-pruning run, record again with those masks on the same seed
    and cached original run: the second run's event-0 mask (and its line) is the first's exactly,
    and not the GMP mask its weights would give."""
    first = recorded["random"]
    path = tmp_path / "masks.pt"
    _export(first, path, "--event", "0")
    second = tmp_path / "file.zarr"
    args = [  # tests/conftest.py's tiny_config as options
        "record",
        "--train-duration", "3ep", "--train-milestones", "2ep", "--train-weight-decay", "5e-3",
        "--retrain-duration", "2ep", "--record-every", "1", "--record-hist-every", "1",
        "--record-chunk-steps", "8", "--prune-method", "file", "--prune-sparsity", "0.5",
        "--prune-mask-file", str(path), "--seed", "0",
        "--cache", str(Path(first).parent / "cache"), "--out", str(second),
    ]  # fmt: skip
    res = _invoke(*args)
    assert res.exit_code == 0, res.output
    a, b = xr.open_zarr(first), xr.open_zarr(second)
    assert b.attrs["status"] == "complete" and b.attrs["method"] == "file"
    gmp = xr.open_zarr(recorded["gmp"])["mask"].isel(event=0).values
    assert not np.array_equal(gmp, a["mask"].isel(event=0).values)
    assert np.array_equal(a["mask"].isel(event=0).values, b["mask"].isel(event=0).values)
    assert float(a.event_sparsity[0]) == float(b.event_sparsity[0]) == 0.5
    assert float(a.event_tau[0]) == float(b.event_tau[0])  # same weights, same line
    assert np.array_equal(
        a.pre_prune_magnitude.isel(event=0).values, b.pre_prune_magnitude.isel(event=0).values
    )
