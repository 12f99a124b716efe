"""Distribution of surviving weight magnitudes over the snapshot steps, chunk by chunk through
dask."""

from __future__ import annotations

import dask.array as da
import numpy as np
import xarray as xr


def _block_hist(block: np.ndarray, lo: float, scale: float, nb: int) -> np.ndarray:
    """(rows, weights) magnitudes -> (rows, 1, bins) counts of log10|w| for the non-zero ones.

    Bins are equal in log10, so the bin index is computed arithmetically in float32, (log10|w| - lo)
    * scale, and not by searching the edges (several times faster); values outside [lo, hi) land in
      the first or last
    bin, and a value within float32 rounding of a bin edge may land in the bin beside it.
    """
    rows = block.shape[0]
    v = np.asarray(block, dtype=np.float32)
    ok = v > 0
    idx = np.log10(v[ok])  # the non-zero values only, row after row (pruned weights are zeros)
    idx -= np.float32(lo)
    idx *= np.float32(scale)
    bins = idx.astype(np.int32)  # truncation = floor for the in-range, non-negative values
    np.clip(bins, 0, nb - 1, out=bins)
    bins += np.repeat(np.arange(rows, dtype=np.int32) * np.int32(nb), ok.sum(axis=1))
    return np.bincount(bins, minlength=rows * nb).reshape(rows, 1, nb)


def magnitude_histogram(
    ds: xr.Dataset, bins: int = 60, lo: float | None = None, hi: float | None = None
) -> xr.DataArray:
    """Counts of log10|w| of non-zero weights per snapshot step in ``bins`` equal bins from ``lo``
    to ``hi``.

    Values below ``lo`` fall in the first bin, above ``hi`` in the last. By default ``lo`` and
    ``hi`` are the floor and ceiling of log10 of the smallest non-zero and the largest of the
    magnitudes the first event pruned from (``pre_prune_magnitude``, ``lo`` at least -8): one row is
    read to choose them, not the store.
    Returns ``count(record_step, bin)`` with the bin edges as coordinates ``bin_lo`` and ``bin_hi``.
    A run recorded without snapshots (``--record-every 0``) returns its device-computed histogram
    instead, over its histogram steps and with its own bins (``bins``, ``lo`` and ``hi`` are then
    ignored).
    """
    if "magnitude" not in ds:
        if (
            "magnitude_hist" in ds
        ):  # the histogram the recorder computed on the device: bins as recorded
            h = ds.magnitude_hist.sum("layer").rename(hist_step="record_step", hist_bin="bin")
            return (
                h.assign_coords(
                    bin_lo=("bin", ds.hist_bin_lo.values), bin_hi=("bin", ds.hist_bin_hi.values)
                )
                .drop_vars([c for c in ("hist_round",) if c in h.coords])
                .rename("count")
            )
        raise ValueError("this run has neither magnitude snapshots nor recorded histograms")
    arr = ds.magnitude.data
    if not isinstance(arr, da.Array):
        arr = da.from_array(np.asarray(arr), chunks=(max(1, arr.shape[0]), arr.shape[1]))
    if lo is None or hi is None:
        # one row, chunked alone: the magnitudes the first event pruned from (a snapshot if absent)
        ref = (
            ds.pre_prune_magnitude.isel(event=0)
            if "pre_prune_magnitude" in ds
            else ds.magnitude.isel(record_step=0)
        )
        ends = np.asarray(ref.values, dtype=np.float64)
        top = float(ends.max()) if ends.size else 0.0
        positive = ends[ends > 0]
        if hi is None:
            hi = float(np.ceil(np.log10(top))) if top > 0 else 0.0
        if lo is None:
            lo = max(float(np.floor(np.log10(positive.min()))), -8.0) if positive.size else hi - 6.0
            lo = min(lo, hi - 1.0)
    edges = np.linspace(lo, hi, bins + 1)
    nblocks = len(arr.chunks[1])
    h = arr.map_blocks(
        _block_hist,
        float(lo),
        bins / (hi - lo),
        bins,
        dtype=np.int64,
        new_axis=2,
        chunks=(arr.chunks[0], (1,) * nblocks, (bins,)),
    )
    counts = h.sum(axis=1)
    return xr.DataArray(
        counts,
        dims=("record_step", "bin"),
        coords={
            "record_step": ds.record_step.values,
            "bin": np.arange(bins),
            "bin_lo": ("bin", edges[:-1]),
            "bin_hi": ("bin", edges[1:]),
        },
        name="count",
    )
