"""Distribution of surviving weight magnitudes over the snapshot steps, chunk by chunk through dask."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import xarray as xr


def _block_hist(block: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """(rows, weights) magnitudes -> (rows, 1, bins) counts of log10|w| for the non-zero ones."""
    nb = len(edges) - 1
    rows = block.shape[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log10(block.astype(np.float64))
    ok = np.isfinite(logs)
    idx = np.clip(np.searchsorted(edges, logs, side="right") - 1, 0, nb - 1)
    flat = (idx + nb * np.arange(rows)[:, None])[ok]
    return np.bincount(flat, minlength=rows * nb).reshape(rows, 1, nb)


def magnitude_histogram(ds: xr.Dataset, bins: int = 60, lo: float | None = None, hi: float | None = None
                        ) -> xr.DataArray:
    """Counts of log10|w| of non-zero weights per snapshot step in ``bins`` equal bins from ``lo`` to ``hi``.

    Values below ``lo`` fall in the first bin, above ``hi`` in the last. By default ``lo`` and ``hi`` are the
    floor and ceiling of log10 of the smallest non-zero and the largest magnitude (``lo`` at least -8).
    Returns ``count(record_step, bin)`` with the bin edges as coordinates ``bin_lo`` and ``bin_hi``.
    """
    if "magnitude" not in ds:
        raise ValueError("this run has no magnitude snapshots")
    arr = ds.magnitude.data
    if not isinstance(arr, da.Array):
        arr = da.from_array(np.asarray(arr), chunks=(max(1, arr.shape[0]), arr.shape[1]))
    if lo is None or hi is None:
        top, bottom = dask.compute(arr.max(), da.where(arr > 0, arr, np.inf).min())
        top, bottom = float(top), float(bottom)
        if hi is None:
            hi = float(np.ceil(np.log10(top))) if top > 0 else 0.0
        if lo is None:
            lo = max(float(np.floor(np.log10(bottom))), -8.0) if np.isfinite(bottom) else hi - 6.0
            lo = min(lo, hi - 1.0)
    edges = np.linspace(lo, hi, bins + 1)
    nblocks = len(arr.chunks[1])
    h = arr.map_blocks(_block_hist, edges, dtype=np.int64, new_axis=2,
                       chunks=(arr.chunks[0], (1,) * nblocks, (bins,)))
    counts = h.sum(axis=1)
    return xr.DataArray(counts, dims=("record_step", "bin"),
                        coords={"record_step": ds.record_step.values, "bin": np.arange(bins),
                                "bin_lo": ("bin", edges[:-1]), "bin_hi": ("bin", edges[1:])},
                        name="count")
