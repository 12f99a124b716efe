"""The histograms of a TensorBoard export (docs/tensorboard.md): log10|w| of the non-zero weights
per layer, in the fields of TensorBoard's HistogramProto (no I/O).

They are the store's own device histograms (``magnitude_hist``: its counts and bin edges exactly as
recorded) or, in a store without them, the magnitude snapshots binned with numpy over the run's
histogram bins (``record.hist_bins`` equal bins over ``record.hist_range``, values outside in the
end bins, as the device does). Rows a running or crashed run has not committed are left out.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

HIST_TAG = "log10_magnitude"


def last_step(ds: xr.Dataset) -> float:
    """The last committed step: every step of a complete store, else ``last_committed_step``
    (-inf when the run committed none)."""
    if ds.attrs.get("status") == "complete":
        return float("inf")
    last = ds.attrs.get("last_committed_step")
    return float("-inf") if last is None else float(last)


@dataclass(frozen=True)
class RawHistogram:
    """One layer's histogram at one store step, in the fields of TensorBoard's HistogramProto.

    ``bucket_limits[i]`` is the right edge of bucket i; TensorBoard takes ``min`` as the left edge
    of the first non-empty bucket and ``max`` as the right edge of the last one.
    """

    tag: str
    step: int
    min: float
    max: float
    num: int
    sum: float
    sum_squares: float
    bucket_limits: np.ndarray
    bucket_counts: np.ndarray

    def fields(self) -> dict[str, Any]:
        """The keyword arguments of ``add_histogram_raw`` (without the step)."""
        return dict(
            tag=self.tag,
            min=self.min,
            max=self.max,
            num=self.num,
            sum=self.sum,
            sum_squares=self.sum_squares,
            bucket_limits=self.bucket_limits.tolist(),
            bucket_counts=self.bucket_counts.tolist(),
        )


def histogram_source(ds: xr.Dataset) -> str | None:
    """Where the histograms come from: ``device`` (the store's own), ``snapshots`` (binned here from
    the magnitude snapshots of a store without them), or None (the store has neither)."""
    if "magnitude_hist" in ds:
        return "device"
    return "snapshots" if "magnitude" in ds else None


def histogram_steps(ds: xr.Dataset) -> np.ndarray:
    """The committed store steps that get a histogram (empty without any)."""
    source = histogram_source(ds)
    if source is None:
        return np.zeros(0, dtype=np.int64)
    steps = np.asarray(ds["hist_step" if source == "device" else "record_step"].values)
    return steps[steps <= last_step(ds)].astype(np.int64)


def histogram_edges(ds: xr.Dataset) -> np.ndarray:
    """Bin edges in log10|w|: the store's own (``hist_bin_lo``, ``hist_bin_hi``), else the run's
    ``record.hist_bins`` equal bins over ``record.hist_range`` (the recorder's defaults if
    unset)."""
    if "hist_bin_lo" in ds:
        return np.append(ds.hist_bin_lo.values, ds.hist_bin_hi.values[-1]).astype(np.float64)
    from shedding.config import RecordConfig

    default = RecordConfig()
    record = (ds.attrs.get("config") or {}).get("record") or {}
    lo, hi = record.get("hist_range", default.hist_range)
    return np.linspace(float(lo), float(hi), int(record.get("hist_bins", default.hist_bins)) + 1)


def raw_histogram(
    tag: str,
    step: int,
    counts: np.ndarray,
    edges: np.ndarray,
    stats: tuple[float, float, float, float] | None = None,
) -> RawHistogram:
    """A histogram with exactly ``counts`` in the bins between ``edges`` (one more than counts).

    ``stats`` (min, max, sum, sum of squares) of the values when they are known; otherwise min and
    max are the outer edges of the first and last non-empty bins, and the sums come from the bins'
    midpoints (0 for an empty histogram).
    """
    counts = np.asarray(counts, dtype=np.int64)
    if stats is None:
        full = np.flatnonzero(counts)
        mids = (edges[:-1] + edges[1:]) / 2
        lo, hi = (float(edges[full[0]]), float(edges[full[-1] + 1])) if full.size else (0.0, 0.0)
        stats = (lo, hi, float(counts @ mids), float(counts @ mids**2))
    return RawHistogram(
        tag=tag,
        step=int(step),
        min=float(stats[0]),
        max=float(stats[1]),
        num=int(counts.sum()),
        sum=float(stats[2]),
        sum_squares=float(stats[3]),
        bucket_limits=np.asarray(edges[1:], dtype=np.float64),
        bucket_counts=counts,
    )


def _blocks(n: int, size: int) -> Iterator[tuple[int, int]]:
    for a in range(0, n, max(1, size)):
        yield a, min(n, a + max(1, size))


def _device_histograms(ds: xr.Dataset, n: int) -> Iterator[RawHistogram]:
    """The store's histograms of its first ``n`` histogram steps, chunk by chunk."""
    edges, layers = histogram_edges(ds), [str(v) for v in ds.layer.values]
    chunks = ds.magnitude_hist.chunks
    for a, b in _blocks(n, chunks[0][0] if chunks else n):
        block = np.asarray(ds.magnitude_hist.isel(hist_step=slice(a, b)).values)
        for i, step in enumerate(ds.hist_step.values[a:b]):
            for j, layer in enumerate(layers):
                yield raw_histogram(f"{HIST_TAG}/{layer}", step, block[i, j], edges)


def _snapshot_histogram(tag: str, step: int, mags: np.ndarray, edges: np.ndarray) -> RawHistogram:
    """log10|w| of the non-zero ``mags`` binned with numpy over ``edges`` (values outside in the end
    bins), with their exact min, max, sum and sum of squares."""
    logs = np.log10(mags[mags > 0].astype(np.float64))
    counts, _ = np.histogram(np.clip(logs, edges[0], edges[-1]), bins=edges)
    stats = (logs.min(), logs.max(), logs.sum(), logs @ logs) if logs.size else None
    return raw_histogram(tag, step, counts, edges, stats)


SNAPSHOT_BUDGET = 2**25  # magnitudes read at once when histogramming snapshots


def _snapshot_histograms(ds: xr.Dataset, n: int) -> Iterator[RawHistogram]:
    """Per-layer histograms of the first ``n`` magnitude snapshots, layer after layer (each tag's
    steps in order), a block of snapshots at a time (at most the snapshot chunk's steps and about
    :data:`SNAPSHOT_BUDGET` magnitudes)."""
    edges, chunks = histogram_edges(ds), ds.magnitude.chunks
    steps = ds.record_step.values
    layers = zip(ds.layer.values, ds.layer_start.values, ds.layer_size.values, strict=True)
    for layer, start, size in layers:
        rows = min(chunks[0][0] if chunks else n, max(1, SNAPSHOT_BUDGET // max(1, int(size))))
        for a, b in _blocks(n, rows):
            weights = slice(int(start), int(start + size))
            block = np.asarray(ds.magnitude.isel(record_step=slice(a, b), weight=weights).values)
            for i in range(b - a):
                yield _snapshot_histogram(f"{HIST_TAG}/{layer}", steps[a + i], block[i], edges)


def histogram_count(ds: xr.Dataset) -> int:
    """How many histograms :func:`iter_histograms` yields: committed steps x layers."""
    return len(histogram_steps(ds)) * int(ds.sizes["layer"])


def iter_histograms(ds: xr.Dataset) -> Iterator[RawHistogram]:
    """Every committed per-layer histogram (tags ``log10_magnitude/<layer>``), each tag's steps in
    order, from :func:`histogram_source`; nothing for a store without histograms or snapshots."""
    source, n = histogram_source(ds), len(histogram_steps(ds))
    if source == "device":
        yield from _device_histograms(ds, n)
    elif source == "snapshots":
        yield from _snapshot_histograms(ds, n)


def histogram_words(ds: xr.Dataset) -> str:
    """Where the exported histograms come from, in words."""
    source, edges = histogram_source(ds), histogram_edges(ds)
    bins = f"{len(edges) - 1} equal bins of log10|w| from {edges[0]:g} to {edges[-1]:g}"
    if source == "device":
        return (
            f"the store's own device histograms ({bins}; min and max are the outer edges of the "
            "non-empty bins, sum and sum of squares come from the bin midpoints)"
        )
    if source == "snapshots":
        return f"the magnitude snapshots, binned with numpy ({bins}, values outside in end bins)"
    return "none (the store has neither histograms nor magnitude snapshots)"
