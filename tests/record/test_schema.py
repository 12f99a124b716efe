"""The schema table (shedding/recording/schema.py) is what a store holds and what
docs/store-format.md says."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from shedding.recording import schema
from shedding.recording.schema_doc import markdown

ROOT = Path(__file__).resolve().parents[2]
ZSTD_LEVEL = {"zstd0": 0, "zstd1": 1, "zstd3": 3, "transpose-zstd1": 1}


def test_committed_page_is_the_generated_one() -> None:
    """docs/store-format.md is exactly what ``python -m shedding.recording.schema_doc`` prints."""
    page = (ROOT / "docs" / "store-format.md").read_text()
    assert page == markdown(), (
        "docs/store-format.md is stale: python -m shedding.recording.schema_doc > "
        "docs/store-format.md"
    )


def test_table_is_consistent() -> None:
    """Names are unique, every key is known, every dimension has its coordinate."""
    names = [v.name for v in schema.VARIABLES]
    assert len(names) == len(set(names))
    for v in schema.VARIABLES:
        assert v.when in schema.WHEN and v.chunks in schema.CHUNKING and v.codec in schema.CODECS
        for d in v.dims:
            assert d in schema.BY_NAME and schema.BY_NAME[d].dims == (d,), (v.name, d)


def _fill(var: schema.Variable, dtype: str) -> object:
    """The fill value as zarr.json writes it."""
    if var.coord:
        return False if dtype == "bool" else 0.0 if dtype.startswith("float") else 0
    if isinstance(var.fill, float) and math.isnan(var.fill):
        return "NaN"
    return var.fill


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {
            "record__dtype": "log8",
            "record__sample_every": 2,
            "record__sample_per_layer": 8,
            "record__lines": ["gmp:0.5", "abs:0.01"],
        },
        {"record__dtype": "float16", "record__every": 0, "record__hist_every": 0},
    ],
    ids=["float32", "log8-samples-lines", "float16-summary"],
)
def test_recorded_store_has_what_the_table_says(tmp_path_factory, kw) -> None:
    """A recorded tiny store holds exactly the arrays its profile's rows list, each with the row's
    dims, dtype, fill value, CF attributes and codecs; its coordinates and group attributes are the
    table's."""
    from conftest import tiny_config

    from shedding.experiment import record

    cfg = tiny_config(**kw)
    root = tmp_path_factory.mktemp("schema")
    path = record(cfg, root / "run.zarr", cache_dir=tmp_path_factory.getbasetemp() / "cache")
    rc = cfg.record
    flags = schema.profile(
        rc.dtype, rc.every > 0, rc.hist_every > 0, rc.sample_every > 0, bool(rc.lines)
    )
    expect = schema.present(flags)
    arrays = {p.parent.name: json.loads(p.read_text()) for p in path.glob("*/zarr.json")}
    assert sorted(arrays) == sorted(v.name for v in expect)
    for v in expect:
        meta = arrays[v.name]
        dtype = v.dtype_for(rc.dtype)
        assert tuple(meta["dimension_names"]) == v.dims, v.name
        assert meta["data_type"] == dtype, v.name
        assert meta["fill_value"] == _fill(v, dtype), v.name
        attrs = meta["attributes"]
        assert (attrs["long_name"], attrs["units"]) == (v.long_name, v.units), v.name
        integer_fill = not v.coord and dtype.startswith(("int", "uint"))
        assert ("_FillValue" in attrs) == integer_fill, v.name
        codecs = [c["name"] for c in meta["codecs"]]
        assert codecs[-1] == "crc32c" and ("transpose" in codecs) == v.codec.startswith("trans")
        zstd = next(c for c in meta["codecs"] if c["name"] == "zstd")
        assert zstd["configuration"]["level"] == ZSTD_LEVEL[v.codec], v.name
    group = json.loads((path / "zarr.json").read_text())["attributes"]
    coords = [v.name for v in expect if v.coord and v.dims != (v.name,)]
    assert group["coordinates"].split() == coords
    assert set(group) <= {name for name, _, _ in schema.GROUP_ATTRIBUTES}
