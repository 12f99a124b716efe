"""Stores any Zarr v3 reader opens: core data types only (tensorstore reads every array as
zarr-python does), CF
``long_name`` and ``units`` everywhere, unwritten rows masked by plain xarray, a checksum on every
chunk."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from zarr_readers import open_group as _open
from zarr_readers import read_with_tensorstore as _tensorstore

from shedding.recording.layout import build_layers, build_timeline
from shedding.recording.names import decode_names, read_names
from shedding.recording.store import RunStore, StoreError, check_path

ts = pytest.importorskip("tensorstore")

# the Zarr v3 core data types (the spec's r* raw bit types aside, which nothing here needs)
CORE = {
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
    "complex64",
    "complex128",
}
LINES = ["gmp:0.5", "std:0.5"]


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> dict[str, Path]:
    """A float32 store with every optional array (extra lines, samples, histograms) and a log8
    one."""
    from conftest import tiny_config

    from shedding.experiment import record

    root = tmp_path_factory.mktemp("conformance")
    kw = {"record__lines": LINES, "record__sample_every": 1, "record__sample_per_layer": 4}
    return {
        "float32": record(
            tiny_config("gmp", 0.5, **kw), root / "float32.zarr", cache_dir=root / "cache"
        ),
        "log8": record(
            tiny_config("gmp", 0.5, record__dtype="log8", record__lines=LINES[:1]),
            root / "log8.zarr",
            cache_dir=root / "cache",
        ),
    }


def _arrays(path: Path) -> dict[str, dict]:
    """Every array's zarr.json, by name."""
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(path.glob("*/zarr.json"))}


def test_every_array_of_a_core_data_type(stores) -> None:
    for path in stores.values():
        meta = _arrays(path)
        assert {"layer", "layer_shape", "line", "magnitude_hist"} <= set(meta)
        bad = {k: m["data_type"] for k, m in meta.items() if m["data_type"] not in CORE}
        assert not bad, f"{path.name}: arrays of a data type outside the Zarr v3 core spec: {bad}"


def test_tensorstore_reads_every_array_as_zarr_python(stores) -> None:
    kinds = set()
    for path in stores.values():
        group = _open(path)
        for name in group.array_keys():
            ours = np.ascontiguousarray(group[name][...])
            theirs = np.ascontiguousarray(_tensorstore(path / name))
            assert theirs.dtype == ours.dtype and theirs.shape == ours.shape, name
            assert theirs.tobytes() == ours.tobytes(), (
                f"{path.name}/{name}: tensorstore reads other values"
            )
            kinds.add(name)
    assert {
        "magnitude",
        "magnitude_code",
        "magnitude_top",
        "sample_magnitude",
        "line_shed_count",
        "magnitude_hist",
        "pre_prune_magnitude",
        "mask",
    } <= kinds


def test_every_array_has_units_and_long_name(stores) -> None:
    for path in stores.values():
        for name, meta in _arrays(path).items():
            attrs = meta["attributes"]
            assert isinstance(attrs.get("long_name"), str) and attrs["long_name"], (
                f"{name}: no long_name"
            )
            assert isinstance(attrs.get("units"), str) and attrs["units"], f"{name}: no units"


def test_names_decode_to_the_labels(stores) -> None:
    path = stores["float32"]
    group = _open(path)
    plain = xr.open_zarr(path)
    assert plain.layer.dtype.kind == "i" and plain.layer.attrs["encoding"] == "labels"
    ds = decode_names(plain)
    names = list(ds.layer.values)
    assert names == read_names(group["layer"]) and all(
        isinstance(n, str) and "." in n for n in names
    )
    assert list(ds.line.values) == LINES == read_names(group["line"])
    assert [str(s) for s in ds.layer_shape.values][0] == "32x1x3x3"
    assert int(ds.shed_count.sel(layer=names[1]).count()) == ds.sizes["step"]
    assert "labels" not in ds.layer.attrs and ds.layer.attrs["units"] == "1"
    assert decode_names(ds).identical(ds)  # idempotent
    # the one line a reader without this package needs (docs/analysis.md, shedding.recording.names)
    alone = plain.assign_coords(
        {
            k: (v.dims, [v.attrs["labels"][i] for i in v.values])
            for k, v in plain.coords.items()
            if v.attrs.get("encoding") == "labels"
        }
    )
    assert list(alone.layer.values) == names and list(alone.line.values) == LINES


def test_open_run_shows_names_and_keeps_integer_counts(stores) -> None:
    from shedding.analysis import open_run

    ds = open_run(stores["float32"])
    assert list(ds.line.values) == LINES and str(ds.layer_shape.values[0]) == "32x1x3x3"
    assert ds.sel(layer=str(ds.layer.values[1])).sizes["step"] == ds.sizes["step"]
    assert ds.shed_count.dtype == np.int32 and ds.event_pruned.dtype == np.int64
    log8 = open_run(stores["log8"])
    assert log8.magnitude_code.dtype == np.uint8 and np.isfinite(log8.magnitude.values).all()


def test_plain_xarray_masks_rows_never_written(tmp_path) -> None:
    path = tmp_path / "cut.zarr"
    store = RunStore.create(path, *_tiny_args())
    n_l = 2
    for name in ("shed_count", "line_shed_count"):
        w = store.writer(name)
        w.append(
            np.ones((3, *w.array.shape[1:]), dtype=np.int32)
        )  # three steps, then the run stops
        w.flush()
    store.write_rows("mask", 0, np.ones(17, dtype=bool))
    store.write_whole(
        "event_round", np.array([0, -1], dtype=np.int16)
    )  # the second event never came
    store.release()
    raw = _open(path)
    assert (np.asarray(raw["shed_count"][3:]) == -1).all()  # the fill value, as zarr stores it
    ds = xr.open_zarr(path)  # plain xarray, no code of ours
    assert ds.sizes["step"] == 12
    assert ds.shed_count.isel(step=slice(0, 3)).values.tolist() == [[1.0] * n_l] * 3
    assert ds.shed_count.isel(step=slice(3, None)).isnull().all()
    assert ds.line_shed_count.isel(step=slice(3, None)).isnull().all()
    assert ds.event_round.values[0] == 0 and np.isnan(ds.event_round.values[1])
    for name in (
        "shed_events",
        "event_pruned",
        "event_eligible",
        "line_eligible",
        "magnitude_hist",
    ):
        assert ds[name].isnull().all(), name
    assert ds.loss.isnull().all() and ds.magnitude.isnull().all()  # floats: NaN until written
    kept = xr.open_zarr(
        path, mask_and_scale=False
    )  # what shedding.analysis.open_run reads: today's dtypes, -1 as before
    assert kept.shed_count.dtype == np.int32 and (kept.shed_count.values[3:] == -1).all()


def _tiny_args():
    layers = build_layers([("a.weight", (4, 3)), ("b.weight", (5,))])
    tl = build_timeline(
        T=3, t=6, rounds=2, every=1, iterations_per_epoch=3, record_pretrain=False, hist_every=2
    )
    return layers, tl, {}, "float32", 4, False, 8, (-8.0, 1.0), LINES


def test_every_chunk_carries_a_crc32c(stores) -> None:
    for path in stores.values():
        for name, meta in _arrays(path).items():
            assert meta["codecs"][-1]["name"] == "crc32c", f"{name}: chunks without a checksum"


@pytest.mark.parametrize("where", ["middle", "checksum"])
def test_a_damaged_chunk_raises_on_read(tmp_path, where) -> None:
    path = tmp_path / "damaged.zarr"
    store = RunStore.create(path, *_tiny_args())
    w = store.writer("shed_count")
    w.append(np.arange(24, dtype=np.int32).reshape(12, 2))
    store.release()
    chunk = next(p for p in sorted((path / "shed_count" / "c").rglob("*")) if p.is_file())
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2 if where == "middle" else -1] ^= 0x01
    chunk.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum"):
        _open(path)["shed_count"][...]
    with pytest.raises(ValueError, match="checksum"):
        xr.open_zarr(path).shed_count.load()
    with pytest.raises(ValueError, match="[Dd]igest" if where == "checksum" else None):
        _tensorstore(
            path / "shed_count"
        )  # (it may find a damaged zstd frame before it checks the digest)


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_regular_file_is_not_a_store_folder(tmp_path, overwrite) -> None:
    f = tmp_path / "notes.zarr"
    f.write_text("keep me")
    with pytest.raises(StoreError, match="is a file, not a store folder") as err:
        check_path(f, overwrite=overwrite)
    assert "\n" not in str(err.value)
    with pytest.raises(StoreError, match="is a file, not a store folder"):
        RunStore.create(f, *_tiny_args()[:5], overwrite=overwrite)
    assert f.read_text() == "keep me"


def test_record_refuses_a_regular_file_before_anything_runs(tmp_path) -> None:
    from typer.testing import CliRunner

    from shedding.cli.main import app

    f = tmp_path / "run.zarr"
    f.write_text("keep me")
    r = CliRunner().invoke(
        app, ["record", "--out", str(f), "--overwrite", "--cache", str(tmp_path / "cache")]
    )
    assert r.exit_code == 2 and "is a file, not a store folder" in r.output, r.output
    assert f.read_text() == "keep me" and not (tmp_path / "cache").exists()
