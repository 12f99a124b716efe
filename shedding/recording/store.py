"""The Zarr v3 run store: creation of every array up front, whole-chunk writes, status, the writer lock.

All arrays are allocated at creation with their final shapes (the timeline is known in advance) and
written only in whole chunks from in-memory chunk buffers (:class:`ChunkWriter`), so no write ever
reads back a half-written chunk. ``xarray.open_zarr(path)`` reads the store with no import of ours:
dimension names are Zarr v3 ``dimension_names`` and non-index coordinates are listed in the root
attribute ``coordinates`` (the CF convention xarray decodes).
"""

from __future__ import annotations

import json
import os
import socket
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import TransposeCodec, ZstdCodec

from shedding.recording.layout import Layer, Timeline
from shedding.storage import as_path, create_exclusive, rmtree, zarr_location

FORMAT_VERSION = 1
LOCK_NAME = "writer.lock"


class StoreError(RuntimeError):
    """A store cannot be created or written (exists, locked, ...); the message is one line."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # gone, or a pid no process can have
        return False
    except PermissionError:
        return True
    return True


def read_lock(path: Path) -> dict[str, Any] | None:
    """The lock's content (pid, host, time) when a live writer holds ``path``; None otherwise (no lock, one that
    is not a lock's JSON, or one of this machine whose process is gone)."""
    lock = as_path(path) / LOCK_NAME
    try:
        info = json.loads(lock.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if not isinstance(info, dict):
        return None
    if _checkable(info) and not _pid_alive(info["pid"]):
        return None  # stale: its process is gone
    return info


def _checkable(holder: dict[str, Any]) -> bool:
    """Whether this machine can tell if the lock's process is alive (its own machine, a whole-number pid)."""
    return holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int)


def held_error(path: str | Path, holder: dict[str, Any] | None) -> StoreError:
    """The one-line refusal of a second writer on ``path``, which ``holder`` (:func:`read_lock`'s content) holds.

    A lock taken on another machine can't be checked from here (a job killed there leaves it behind), so the
    message then says how to release it. ``None`` (the lock went away while the caller looked): retry.
    """
    path = as_path(path)
    if not holder:
        return StoreError(f"{path} was being written a moment ago and its writer has let go of it now; retry")
    try:
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(holder["time"])))
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        since = "?"
    text = (f"{path} is being written by process {holder.get('pid', '?')} on {holder.get('host', '?')} "
            f"(locked {since}); one writer per store")
    if not _checkable(holder):
        text += f"; it can't be checked from this machine: if that process is gone, remove {path / LOCK_NAME} and retry"
    return StoreError(" ".join(text.split("\n")))


def check_path(path: Path, overwrite: bool) -> None:
    """Raise StoreError unless a new store may be created at ``path`` (changes nothing on disk).

    An existing store is refused unless ``overwrite``; one that a live writer holds, and a non-empty folder
    that is not a Zarr store, are always refused.
    """
    path = as_path(path)
    if path.exists():
        holder = read_lock(path)
        if holder is not None:
            raise held_error(path, holder)
        if not overwrite:
            raise StoreError(f"{path} already exists; pass --overwrite to replace it or choose another --out")
        if not path.is_dir() or (not (path / "zarr.json").exists() and any(path.iterdir())):
            raise StoreError(f"{path} exists and is not a Zarr store; refusing to remove it")


def run_status(path: str | Path, attrs: dict[str, Any]) -> str:
    """The status attribute, or ``crashed`` for a ``running`` store whose writer process is gone."""
    status = str(attrs.get("status"))
    lock = as_path(path) / LOCK_NAME
    if status == "running" and (not lock.exists() or read_lock(path) is None):
        return "crashed"
    return status


def prepare_path(path: Path, overwrite: bool) -> None:
    """:func:`check_path`, then remove the old store that ``overwrite`` allows replacing."""
    check_path(path, overwrite)
    path = as_path(path)
    if path.exists():
        rmtree(path)


@dataclass
class ArraySpec:
    """One array to create: name, dims, shape, chunks, dtype, fill value and attributes."""

    name: str
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    dtype: Any
    fill_value: Any = None
    attrs: dict[str, Any] | None = None
    compressors: Any = "auto"
    filters: Any = None  # array-to-array codecs before compression (None: zarr's default, none for numbers)


MAGNITUDE_CODEC = ZstdCodec(level=3)  # rows written one at a time (the magnitudes a prune event saw)
SNAPSHOT_CODEC = ZstdCodec(level=1)  # snapshots (magnitude, magnitude_code, sample_magnitude)
TIME_MAJOR = [TransposeCodec(order=(1, 0))]  # float snapshots: each weight's run of steps side by side in a chunk
CODEC_CHOICE = (
    "snapshots: chunks of at most 64 snapshots x 262144 weights, balanced (a run's snapshots and weights split into"
    " chunks of about one length: zarr pads an edge chunk to the full shape); float16/float32 transposed (each "
    "weight's steps side by side) then zstd level 1, log8 codes zstd level 1 as they are. Chosen by "
    "benchmarks/codecs.py (2-core CPU, 2026-11-21) on 65 ResNet-20 snapshots of 270,896 weights and 133 digits-CNN "
    "snapshots of 30,496, in bytes per weight-step and write MB/s: float16 0.34 / 0.42 at 286 / 220 MB/s, against "
    "0.45 / 0.82 at 186 / 149 with zstd 3 untransposed (the choice before); float32 1.76 / 1.78 at 378 / 351, "
    "against 2.09 / 1.96 at 186 / 185; log8 0.037 / 0.034 at 819 / 460 (transposed: 0.064 / 0.066). Reading float16"
    " is slower transposed (112-294 MB/s against 211-349). Blosc with bitshuffle or lz4 was larger; 64-snapshot "
    "chunks compress better than 16")
WEIGHT_CHUNK = 1 << 18  # weights per chunk along the flat weight dimension, at most


def balanced_chunk(n: int, most: int) -> int:
    """The chunk length for ``n`` items in as few chunks of at most ``most`` as can hold them, all of about one
    length: zarr stores an edge chunk padded to the full chunk shape, so a nearly empty last chunk costs a whole
    chunk's encoding (ResNet-20's 270,896 weights in chunks of 262,144 spent half a float16 write on 8,752)."""
    n, most = max(int(n), 1), max(int(most), 1)
    k = -(-n // most)
    return -(-n // k)


class ChunkWriter:
    """Appends rows along an array's first dimension and writes only whole chunks.

    The writer holds the current chunk in memory; :meth:`flush` writes that whole chunk (rows not yet
    appended keep the fill value) and a later flush rewrites it whole again, so the store never holds a
    chunk assembled from two partial writes.
    """

    def __init__(self, array: zarr.Array, fill: Any) -> None:
        self.array = array
        self.rows = array.shape[0]
        self.chunk = array.chunks[0]
        self.fill = fill
        self.pos = 0  # next row to append
        self._start = 0  # first row of the chunk in the buffer
        self._buf = self._alloc(0)
        self._dirty = False

    def _alloc(self, start: int) -> np.ndarray:
        n = min(self.chunk, self.rows - start)
        return np.full((n, *self.array.shape[1:]), self.fill, dtype=self.array.dtype)

    def append(self, rows: np.ndarray) -> None:
        """Append ``rows`` (first axis = rows); each chunk is written as soon as it is complete."""
        rows = np.asarray(rows)
        if self.pos + len(rows) > self.rows:
            raise IndexError(f"{self.array.name}: appending past its {self.rows} rows")
        i = 0
        while i < len(rows):
            off = self.pos - self._start
            take = min(len(self._buf) - off, len(rows) - i)
            self._buf[off : off + take] = rows[i : i + take]
            self.pos += take
            i += take
            self._dirty = True
            if off + take == len(self._buf):
                self.array[self._start : self._start + len(self._buf)] = self._buf
                self._dirty = False
                if self.pos < self.rows:
                    self._start = self.pos
                    self._buf = self._alloc(self.pos)

    def seek(self, pos: int) -> None:
        """Continue appending at row ``pos`` (resume): rows before it are kept, rows from it on are cleared."""
        self.pos = pos
        self._start = min(pos, max(self.rows - 1, 0)) // self.chunk * self.chunk
        self._buf = self._alloc(self._start)
        keep = pos - self._start
        if keep > 0:
            self._buf[:keep] = np.asarray(self.array[self._start:self._start + keep])
        self._dirty = keep < len(self._buf)  # stale rows of a crashed run get cleared on the next write

    def truncate(self, rows: int) -> None:
        """The array now has ``rows`` rows (:meth:`RunStore.truncate`); none of them is written yet past ``pos``."""
        if rows < self.pos:
            raise IndexError(f"{self.array.name}: cannot cut to {rows} rows, {self.pos} are written")
        self.rows = rows
        self._buf = self._buf[: max(0, min(self.chunk, rows - self._start))]

    def flush(self) -> None:
        """Write the current, partly filled chunk whole (unfilled rows keep the fill value)."""
        if self._dirty:
            self.array[self._start : self._start + len(self._buf)] = self._buf
            self._dirty = False


class RunStore:
    """A run's Zarr store, opened for writing by a single process (a lock file guards it)."""

    def __init__(self, path: Path, group: zarr.Group) -> None:
        self.path = path
        self.group = group

    # ------------------------------------------------------------------ creation
    @classmethod
    def create(cls, path: str | Path, layers: list[Layer], timeline: Timeline, attrs: dict[str, Any],
               magnitude_dtype: str, chunk_steps: int, overwrite: bool = False, hist_bins: int = 64,
               hist_range: tuple[float, float] = (-8.0, 1.0), lines: list[str] | None = None,
               sample: np.ndarray | None = None) -> RunStore:
        """Create every array and coordinate for ``layers`` and ``timeline``, and take the writer lock."""
        path = as_path(path)
        prepare_path(path, overwrite)
        path.parent.mkdir(parents=True, exist_ok=True)
        group = zarr.open_group(zarr_location(path), mode="w", zarr_format=3)
        store = cls(path, group)
        store._lock()
        n_w = sum(layer.size for layer in layers)
        n_l = len(layers)
        tl = timeline
        n_s, n_r, n_e, n_ev = len(tl.steps), len(tl.record_steps), len(tl.epoch), tl.n_events
        wchunk = balanced_chunk(n_w, WEIGHT_CHUNK)
        schunk = max(1, min(4096, n_s))
        specs = [
            # coordinates
            ArraySpec("layer", ("layer",), (n_l,), (n_l,), str),
            ArraySpec("layer_size", ("layer",), (n_l,), (n_l,), "int64"),
            ArraySpec("layer_start", ("layer",), (n_l,), (n_l,), "int64"),
            ArraySpec("layer_shape", ("layer",), (n_l,), (n_l,), str),
            ArraySpec("weight", ("weight",), (n_w,), (wchunk,), "int64"),
            ArraySpec("weight_layer", ("weight",), (n_w,), (wchunk,), "int32"),
            ArraySpec("weight_index", ("weight",), (n_w,), (wchunk,), "int64"),
            ArraySpec("step", ("step",), (n_s,), (max(n_s, 1),), "int64"),
            ArraySpec("step_round", ("step",), (n_s,), (max(n_s, 1),), "int16"),
            ArraySpec("epoch", ("epoch",), (n_e,), (max(n_e, 1),), "int64"),
            ArraySpec("epoch_step", ("epoch",), (n_e,), (max(n_e, 1),), "int64"),
            ArraySpec("epoch_round", ("epoch",), (n_e,), (max(n_e, 1),), "int16"),
            ArraySpec("event", ("event",), (n_ev,), (n_ev,), "int64"),
            ArraySpec("event_step", ("event",), (n_ev,), (n_ev,), "int64"),
            # per step
            ArraySpec("loss", ("step",), (n_s,), (schunk,), "float32", np.nan,
                      {"long_name": "training loss of the step's batch"}),
            ArraySpec("lr", ("step",), (n_s,), (schunk,), "float64", np.nan,
                      {"long_name": "learning rate used by the step's update"}),
            ArraySpec("shed_count", ("step", "layer"), (n_s, n_l), (schunk, n_l), "int32", -1,
                      {"long_name": "eligible survivors below the shed line after the step"}),
            ArraySpec("shed_events", ("step", "layer"), (n_s, n_l), (schunk, n_l), "int32", -1,
                      {"long_name": "weights crossing below the line during the step"}),
            ArraySpec("recover_events", ("step", "layer"), (n_s, n_l), (schunk, n_l), "int32", -1,
                      {"long_name": "weights crossing back above the line during the step"}),
            # snapshots
            # events
            ArraySpec("mask", ("event", "weight"), (n_ev, n_w), (1, wchunk), "bool", False,
                      {"long_name": "1 = weight kept after the event"}),
            ArraySpec("pre_prune_magnitude", ("event", "weight"), (n_ev, n_w), (1, wchunk),
                      "float32" if magnitude_dtype == "float32" else "float16", np.nan,
                      {"long_name": "|w| the event's mask was computed from (float16 when the snapshots use a "
                                    "compact encoding: the mask itself is exact)"}, compressors=MAGNITUDE_CODEC),
            ArraySpec("event_round", ("event",), (n_ev,), (n_ev,), "int16", -1),
            ArraySpec("event_sparsity", ("event",), (n_ev,), (n_ev,), "float64", np.nan,
                      {"long_name": "overall fraction of prunable weights pruned after the event"}),
            ArraySpec("event_tau", ("event",), (n_ev,), (n_ev,), "float64", np.nan,
                      {"long_name": "GMP cut value at the event's sparsity (tau)"}),
            ArraySpec("event_line", ("event",), (n_ev,), (n_ev,), "float64", np.nan,
                      {"long_name": "shed line alpha * tau"}),
            ArraySpec("event_pruned", ("event", "layer"), (n_ev, n_l), (n_ev, n_l), "int64", -1,
                      {"long_name": "weights newly pruned by the event"}),
            ArraySpec("event_survivors", ("event", "layer"), (n_ev, n_l), (n_ev, n_l), "int64", -1,
                      {"long_name": "weights kept after the event"}),
            ArraySpec("event_eligible", ("event", "layer"), (n_ev, n_l), (n_ev, n_l), "int64", -1,
                      {"long_name": "survivors at or above the line at the event (can be shed)"}),
            ArraySpec("event_below", ("event", "layer"), (n_ev, n_l), (n_ev, n_l), "int64", -1,
                      {"long_name": "survivors already below the line at the event (never counted as shed)"}),
            ArraySpec("event_test_accuracy", ("event",), (n_ev,), (n_ev,), "float64", np.nan,
                      {"long_name": "test accuracy right after the event, before retraining"}),
            ArraySpec("event_final_test_accuracy", ("event",), (n_ev,), (n_ev,), "float64", np.nan,
                      {"long_name": "test accuracy at the end of the event's retraining round"}),
            # epochs
            ArraySpec("train_accuracy", ("epoch",), (n_e,), (max(n_e, 1),), "float64", np.nan,
                      {"long_name": "running accuracy over the epoch's training batches"}),
            ArraySpec("train_loss", ("epoch",), (n_e,), (max(n_e, 1),), "float64", np.nan),
            ArraySpec("test_accuracy", ("epoch",), (n_e,), (max(n_e, 1),), "float64", np.nan),
            ArraySpec("test_loss", ("epoch",), (n_e,), (max(n_e, 1),), "float64", np.nan),
        ]
        log8 = magnitude_dtype == "log8"
        sample_dtype = "float16" if log8 else magnitude_dtype
        if n_r:
            rchunk = balanced_chunk(n_r, chunk_steps)
            specs += [ArraySpec("record_step", ("record_step",), (n_r,), (n_r,), "int64"),
                      ArraySpec("record_round", ("record_step",), (n_r,), (n_r,), "int16")]
            if log8:
                from shedding.recording import encoding as enc

                specs += [
                    ArraySpec("magnitude_code", ("record_step", "weight"), (n_r, n_w), (rchunk, wchunk), "uint8",
                              enc.MISSING, {"long_name": "|w| after the step, log8-coded", "encoding": "log8",
                                            "decode": "|w| = 0 if code == 0; NaN if code == 255; else "
                                                      "2 ** (magnitude_top[layer of the weight] - (254 - code) * step)",
                                            "step": enc.STEP, "levels": enc.LEVELS,
                                            "relative_error_bound": enc.RELATIVE_ERROR,
                                            "floor_ratio": enc.FLOOR_RATIO}, compressors=SNAPSHOT_CODEC),
                    ArraySpec("magnitude_top", ("record_step", "layer"), (n_r, n_l), (rchunk, n_l), "float32",
                              np.nan, {"long_name": "log2 of the layer's largest |w| after the step"}),
                ]
            else:
                specs.append(ArraySpec(
                    "magnitude", ("record_step", "weight"), (n_r, n_w), (rchunk, wchunk), magnitude_dtype, np.nan,
                    {"long_name": "|w| after the step (pruned weights are 0)"}, compressors=SNAPSHOT_CODEC,
                    filters=TIME_MAJOR))
        n_h = len(tl.hist_steps)
        if n_h:
            specs += [
                ArraySpec("hist_step", ("hist_step",), (n_h,), (n_h,), "int64"),
                ArraySpec("hist_round", ("hist_step",), (n_h,), (n_h,), "int16"),
                ArraySpec("hist_bin", ("hist_bin",), (hist_bins,), (hist_bins,), "int64"),
                ArraySpec("hist_bin_lo", ("hist_bin",), (hist_bins,), (hist_bins,), "float64"),
                ArraySpec("hist_bin_hi", ("hist_bin",), (hist_bins,), (hist_bins,), "float64"),
                ArraySpec("magnitude_hist", ("hist_step", "layer", "hist_bin"), (n_h, n_l, hist_bins),
                          (balanced_chunk(n_h, chunk_steps), n_l, hist_bins), "int32", -1,
                          {"long_name": "non-zero weights per log10|w| bin after the step (computed on the device; "
                                        "values outside the range counted in the end bins)"}),
            ]
        n_ss = len(tl.sample_steps)
        sample = np.zeros(0, dtype=np.int64) if sample is None or not n_ss else np.asarray(sample, dtype=np.int64)
        n_sa = len(sample)
        if n_ss and n_sa:
            specs += [
                ArraySpec("sample_step", ("sample_step",), (n_ss,), (n_ss,), "int64"),
                ArraySpec("sample_round", ("sample_step",), (n_ss,), (n_ss,), "int16"),
                ArraySpec("sample", ("sample",), (n_sa,), (n_sa,), "int64"),
                ArraySpec("sample_weight", ("sample",), (n_sa,), (n_sa,), "int64"),
                ArraySpec("sample_layer", ("sample",), (n_sa,), (n_sa,), "int32"),
                ArraySpec("sample_magnitude", ("sample_step", "sample"), (n_ss, n_sa),
                          (balanced_chunk(n_ss, chunk_steps * 8), n_sa), sample_dtype, np.nan,
                          {"long_name": "|w| of the sampled weights after the step"}, compressors=SNAPSHOT_CODEC,
                          filters=TIME_MAJOR),
            ]
        lines = list(lines or [])
        n_li = len(lines)
        if n_li:
            specs += [
                ArraySpec("line", ("line",), (n_li,), (n_li,), str),
                ArraySpec("line_value", ("event", "line", "layer"), (n_ev, n_li, n_l), (n_ev, n_li, n_l), "float64",
                          np.nan, {"long_name": "the extra line's value per layer at the event"}),
                ArraySpec("line_eligible", ("event", "line", "layer"), (n_ev, n_li, n_l), (n_ev, n_li, n_l), "int64",
                          -1, {"long_name": "survivors at or above the extra line at the event"}),
            ] + [ArraySpec(name, ("step", "line", "layer"), (n_s, n_li, n_l), (schunk, n_li, n_l), "int32", -1,
                           {"long_name": f"{what} for each extra line (counted on the device)"})
                 for name, what in (("line_shed_count", "eligible survivors below the line after the step"),
                                    ("line_shed_events", "crossings below the line during the step"),
                                    ("line_recover_events", "crossings back above the line during the step"))]
        for spec in specs:
            kw: dict[str, Any] = {}
            if spec.fill_value is not None:
                kw["fill_value"] = spec.fill_value
            if spec.filters is not None:
                kw["filters"] = spec.filters
            arr = group.create_array(spec.name, shape=spec.shape, chunks=spec.chunks, dtype=spec.dtype,
                                     dimension_names=list(spec.dims), compressors=spec.compressors, **kw)
            if spec.attrs:
                arr.attrs.update(spec.attrs)
        # coordinate values
        group["layer"][:] = np.array([layer.name for layer in layers])
        group["layer_size"][:] = np.array([layer.size for layer in layers], dtype=np.int64)
        group["layer_start"][:] = np.array([layer.start for layer in layers], dtype=np.int64)
        group["layer_shape"][:] = np.array(["x".join(map(str, layer.shape)) for layer in layers])
        group["weight"][:] = np.arange(n_w, dtype=np.int64)
        group["weight_layer"][:] = np.concatenate(
            [np.full(layer.size, i, dtype=np.int32) for i, layer in enumerate(layers)]) if n_w else []
        group["weight_index"][:] = np.concatenate(
            [np.arange(layer.size, dtype=np.int64) for layer in layers]) if n_w else []
        for name, values in [("step", tl.steps), ("step_round", tl.step_round),
                             ("record_step", tl.record_steps), ("record_round", tl.record_round),
                             ("epoch", tl.epoch), ("epoch_step", tl.epoch_step),
                             ("epoch_round", tl.epoch_round), ("event", np.arange(n_ev)),
                             ("event_step", tl.event_step)]:
            if len(values):
                group[name][:] = values
        coords = ("layer_size layer_start layer_shape weight_layer weight_index step_round epoch_step epoch_round "
                  "event_step" + (" record_round" if n_r else ""))
        if n_li:
            group["line"][:] = np.array(lines)
        if n_ss and n_sa:
            starts = np.array([layer.start for layer in layers])
            which = np.searchsorted(starts, sample, side="right") - 1
            group["sample_step"][:] = tl.sample_steps
            group["sample_round"][:] = tl.sample_round
            group["sample"][:] = np.arange(n_sa)
            group["sample_weight"][:] = sample
            group["sample_layer"][:] = which.astype(np.int32)
            coords += " sample_round sample_weight sample_layer"
        if n_h:
            edges = np.linspace(hist_range[0], hist_range[1], hist_bins + 1)
            group["hist_step"][:] = tl.hist_steps
            group["hist_round"][:] = tl.hist_round
            group["hist_bin"][:] = np.arange(hist_bins)
            group["hist_bin_lo"][:] = edges[:-1]
            group["hist_bin_hi"][:] = edges[1:]
            coords += " hist_round hist_bin_lo hist_bin_hi"
        group.attrs.update({
            **attrs,
            "format": "shedding-run",
            "format_version": FORMAT_VERSION,
            "coordinates": coords,
            "status": "running",
            "codec_choice": CODEC_CHOICE,
            "last_committed_step": None,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        })
        store.consolidate()
        return store

    @classmethod
    def reopen(cls, path: str | Path) -> RunStore:
        """Open an existing store to continue writing it (resume); refused while a live writer holds it."""
        path = as_path(path)
        if not (path / "zarr.json").exists():
            raise StoreError(f"{path}: no run store to resume there")
        holder = read_lock(path)
        if holder is not None:
            raise held_error(path, holder)
        (path / LOCK_NAME).unlink(missing_ok=True)  # a stale lock of a crashed writer
        store = cls(path, zarr.open_group(zarr_location(path), mode="r+", zarr_format=3))
        store._lock()
        return store

    # ------------------------------------------------------------------ writing
    def writer(self, name: str) -> ChunkWriter:
        """A whole-chunk appender for array ``name``."""
        arr = self.group[name]
        if hasattr(arr, "with_config"):  # zarr >= 3.1
            # a chunk the writer writes holds data: skip zarr's check that it is all fill value before writing it,
            # a full pass over the chunk that took 60% of a magnitude chunk's write (benchmarks.recording_overhead)
            arr = arr.with_config({"write_empty_chunks": True})
        return ChunkWriter(arr, arr.fill_value)

    def write_rows(self, name: str, index: int, values: Any) -> None:
        """Write row ``index`` of an array whose first-dimension chunk is 1 (masks, event magnitudes)."""
        arr = self.group[name]
        assert arr.chunks[0] == 1
        arr[index] = values

    def write_whole(self, name: str, values: np.ndarray) -> None:
        """Write a whole small array at once (event and epoch tables, rewritten from memory)."""
        self.group[name][...] = values

    def truncate(self, timeline: Timeline) -> None:
        """Cut the store to ``timeline``, a prefix of the one it was created for (a cascade-aware run that
        reached its target in fewer events than planned): every timeline dimension is resized and the round
        coordinates are rewritten. Rows already written are kept."""
        sizes = {"step": len(timeline.steps), "record_step": len(timeline.record_steps),
                 "hist_step": len(timeline.hist_steps), "sample_step": len(timeline.sample_steps),
                 "epoch": len(timeline.epoch), "event": timeline.n_events}
        # the array metadata itself, not the consolidated copy, which goes stale as arrays are resized
        self.group = zarr.open_group(zarr_location(self.path), mode="r+", zarr_format=3, use_consolidated=False)
        for _, arr in self.group.arrays():
            dims = arr.metadata.dimension_names or ()
            shape = tuple(sizes.get(d, n) for d, n in zip(dims, arr.shape, strict=True))
            if shape != arr.shape:
                arr.resize(shape)
        for name, values in (("step_round", timeline.step_round), ("record_round", timeline.record_round),
                             ("hist_round", timeline.hist_round), ("sample_round", timeline.sample_round),
                             ("epoch_round", timeline.epoch_round)):
            if name in self.group and len(values):
                self.group[name][:] = values
        self.consolidate()

    def set_attrs(self, attrs: dict[str, Any] | None = None, /, **more: Any) -> None:
        """Update root attributes (a dict and/or keywords).

        The group holds the consolidated metadata since the last :meth:`consolidate`, and zarr writes it back
        with the root attributes (one small atomic write), so the store stays consolidated without rereading
        every array's metadata each time.
        """
        self.group.attrs.update({**(attrs or {}), **more})

    def consolidate(self) -> None:
        """Consolidate metadata so readers open the store in one read; the group then carries it."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.group = zarr.consolidate_metadata(zarr_location(self.path))

    # ------------------------------------------------------------------ lock
    def _lock(self) -> None:
        create_exclusive(self.path / LOCK_NAME,
                         json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "time": time.time()}))

    def release(self) -> None:
        """Drop the writer lock."""
        (self.path / LOCK_NAME).unlink(missing_ok=True)
