"""Opening run stores. The only I/O in the analysis package."""

from __future__ import annotations

import warnings
from pathlib import Path

import xarray as xr

from shedding.analysis import integrity
from shedding.analysis.integrity import NotARunError
from shedding.recording.names import decode_names
from shedding.storage import as_path


def open_run(path: str | Path) -> xr.Dataset:
    """Open a run store lazily (dask-backed) as an xarray Dataset; nothing is read but metadata and
    the small coordinates.

    Equivalent to ``xarray.open_zarr(path)``; this adds a clear error for paths that are not run
    stores, and checks that the store is intact (:mod:`shedding.analysis.integrity`: every array's
    metadata readable, every chunk of committed rows on disk), so that nothing is computed from the
    fill values of lost chunks.
    """
    p = as_path(path)
    if not (p / "zarr.json").exists():
        raise NotARunError(f"{p}: not a Zarr store (no zarr.json)")
    listing = integrity.read_listing(p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr's note that consolidated metadata is a v3 extension
        # counts keep their integer types (no NaN masking of unwritten rows: the integrity check and
        # the committed step say which rows hold data); names are decoded from their codes
        ds = xr.open_zarr(str(p), consolidated=None, mask_and_scale=False)
    if ds.attrs.get("format") != "shedding-run":
        raise NotARunError(f"{p}: a Zarr store, but not a shedding run (format attribute missing)")
    ds = _committed(ds)
    integrity.check_chunks(p, ds, listing)
    ds = decode_names(ds)
    if "magnitude_code" in ds and "magnitude" not in ds:
        ds = ds.assign(magnitude=decode_magnitude(ds))
    small = [k for k, c in ds.coords.items() if "weight" not in c.dims]
    ds = ds.assign_coords(
        {k: ds[k].load() for k in small}
    )  # per-step/epoch/event/layer labels: tiny
    ds.attrs["path"] = str(p)
    return ds


def _committed(ds: xr.Dataset) -> xr.Dataset:
    """A growable store (``shedding.watch``) cut to the rows its last commit wrote: the
    ``committed_rows`` root attribute, by dimension (a crashed run's last chunks hold fill values
    past them)."""
    rows = ds.attrs.get("committed_rows")
    if not isinstance(rows, dict):
        return ds
    cut = {d: slice(0, int(n)) for d, n in rows.items() if d in ds.dims and ds.sizes[d] > int(n)}
    return ds.isel(cut) if cut else ds


def decode_magnitude(ds: xr.Dataset) -> xr.DataArray:
    """Lazily decode a ``log8`` store's ``magnitude_code`` into magnitudes (float32), layer by
    layer."""
    from shedding.recording import encoding as enc

    code = ds.magnitude_code
    parts = []
    for i, (s, n) in enumerate(zip(ds.layer_start.values, ds.layer_size.values, strict=True)):
        c = code.isel(weight=slice(int(s), int(s + n)))
        top = ds.magnitude_top.isel(layer=i, drop=True)
        value = 2.0 ** (top - (enc.LEVELS - c.astype("float64")) * enc.STEP)
        parts.append(value.where(c != 0, 0.0).where(c != enc.MISSING).astype("float32"))
    out = xr.concat(parts, dim="weight") if parts else code.astype("float32")
    out.attrs.update(
        long_name="|w| after the step, decoded from log8",
        encoding="log8",
        relative_error_bound=enc.RELATIVE_ERROR,
        floor_ratio=enc.FLOOR_RATIO,
    )
    return out


def run_name(ds: xr.Dataset) -> str:
    """A short display name: the store's folder name without ``.zarr``."""
    return Path(ds.attrs.get("path", "run")).name.removesuffix(".zarr")
