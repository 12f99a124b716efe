"""The Zarr v3 run store: creation of every array, whole-chunk writes, growth and trimming,
status, the writer lock.

A store is created with the timeline it is given (a fixed one, or the first rows of a growable
store, whose timeline dimensions then grow by whole chunks and are trimmed at close: the built-in
trainer's and ``shedding.watch``'s) and written only in whole chunks from in-memory chunk buffers
(:class:`ChunkWriter`), so no write ever reads back a half-written chunk. Which arrays a store
has, and their dimensions, data types, fill values, chunking and codecs, come from the schema table
(:mod:`shedding.recording.schema`, rendered as docs/store-format.md). ``xarray.open_zarr(path)``
reads the store with no import of ours: dimension names are Zarr v3 ``dimension_names`` and
non-index coordinates are listed in the root attribute ``coordinates`` (the CF convention xarray
decodes).

Every array is of a Zarr v3 core data type, so any Zarr v3 reader opens it: names (``layer``,
``layer_shape``, ``line``) are integer codes with their labels in attributes
(:mod:`shedding.recording.names`). Every array has CF ``long_name`` and ``units``; an integer array
preallocated with a "not written" fill value (-1, or 255 for log8 codes) names it in
``_FillValue``, so plain xarray masks rows a crashed run never wrote (float arrays hold NaN there).
Every array's codecs end with ``crc32c``: a damaged chunk fails to decode in any reader.
"""

from __future__ import annotations

import json
import os
import socket
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import Crc32cCodec, TransposeCodec, ZstdCodec

from shedding.recording import schema
from shedding.recording.layout import Layer, Timeline
from shedding.recording.names import encode_names
from shedding.storage import as_path, create_exclusive, rmtree, zarr_location

FORMAT_VERSION = 2  # 2: names as integer codes with labels, CF attributes, crc32c checksums
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
    """The lock's content (pid, host, time) when a live writer holds ``path``; None otherwise (no
    lock, one that is not a lock's JSON, or one of this machine whose process is gone)."""
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
    """Whether this machine can tell if the lock's process is alive (its own machine, a whole-number
    pid)."""
    return holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int)


def held_error(path: str | Path, holder: dict[str, Any] | None) -> StoreError:
    """The one-line refusal of a second writer on ``path``, which ``holder`` (:func:`read_lock`'s
    content) holds.

    A lock taken on another machine can't be checked from here (a job killed there leaves it
    behind), so the message then says how to release it. ``None`` (the lock went away while the
    caller looked): retry.
    """
    path = as_path(path)
    if not holder:
        return StoreError(
            f"{path} was being written a moment ago and its writer has let go of it now; retry"
        )
    try:
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(holder["time"])))
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        since = "?"
    text = (
        f"{path} is being written by process {holder.get('pid', '?')} on {holder.get('host', '?')} "
        f"(locked {since}); one writer per store"
    )
    if not _checkable(holder):
        text += (
            "; it can't be checked from this machine: if that process is gone, remove "
            f"{path / LOCK_NAME} and retry"
        )
    return StoreError(" ".join(text.split("\n")))


def check_path(path: Path, overwrite: bool) -> None:
    """Raise StoreError unless a new store may be created at ``path`` (changes nothing on disk).

    An existing store is refused unless ``overwrite``; one that a live writer holds, a regular file,
    and a non-empty folder that is not a Zarr store, are always refused.
    """
    path = as_path(path)
    if path.is_file():
        raise StoreError(f"{path} is a file, not a store folder; choose another --out")
    if path.exists():
        holder = read_lock(path)
        if holder is not None:
            raise held_error(path, holder)
        if not overwrite:
            raise StoreError(
                f"{path} already exists; pass --overwrite to replace it or choose another --out"
            )
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
    """One array to create: name, dims, shape, chunks, dtype, fill value, extra attributes and
    codecs.

    ``data`` (coordinates known at creation) is written right after the array is created. CF
    ``long_name`` and ``units`` come from :data:`~shedding.recording.schema.VARIABLES`.
    """

    name: str
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    dtype: Any
    fill_value: Any = None
    attrs: dict[str, Any] | None = None
    # a bytes-to-bytes codec (None: DEFAULT_CODEC); CHECKSUM always follows it
    compressor: Any = None
    filters: Any = None  # array-to-array codecs before compression (None: none)
    data: Any = None


# what zarr's "auto" picks for numbers: small tables and coordinates
DEFAULT_CODEC = ZstdCodec(level=0)
# rows written one at a time (the magnitudes a prune event saw)
MAGNITUDE_CODEC = ZstdCodec(level=3)
SNAPSHOT_CODEC = ZstdCodec(level=1)  # snapshots (magnitude, magnitude_code, sample_magnitude)
# float snapshots: each weight's run of steps side by side in a chunk
TIME_MAJOR = [TransposeCodec(order=(1, 0))]
# last codec of every array: each chunk carries a CRC32C that readers verify on decode
CHECKSUM = Crc32cCodec()
# the codecs (compressor, filters) of each codec name of the schema (schema.CODECS)
_CODECS: dict[str, tuple[Any, Any]] = {
    "zstd0": (None, None),
    "zstd1": (SNAPSHOT_CODEC, None),
    "zstd3": (MAGNITUDE_CODEC, None),
    "transpose-zstd1": (SNAPSHOT_CODEC, TIME_MAJOR),
}
CODEC_CHOICE = (
    "snapshots: chunks of at most record.chunk_steps snapshots by at most 262144 weights, "
    "balanced (a run's snapshots and weights split into chunks of about one length: zarr pads an "
    "edge chunk to the full shape); float16/float32 snapshots and sampled trajectories transposed "
    "(each weight's steps side by side) then zstd level 1, log8 codes zstd level 1 as they are, "
    "the magnitudes a prune event saw zstd level 3, everything else zstd level 0. Chosen with "
    "benchmarks/codecs.py: transposed float snapshots were smaller and faster to write than zstd "
    "level 3 untransposed (log8 codes were not), Blosc with bitshuffle or lz4 was larger, and "
    "long chunks of snapshots compress better than short ones. Every array ends with a crc32c "
    "checksum codec"
)
WEIGHT_CHUNK = 1 << 18  # weights per chunk along the flat weight dimension, at most


def balanced_chunk(n: int, most: int) -> int:
    """The chunk length for ``n`` items in as few chunks of at most ``most`` as can hold them, all
    of about one length: zarr stores an edge chunk padded to the full chunk shape, so a nearly empty
    last chunk costs a whole chunk's encoding (ResNet-20's 270,896 weights in chunks of 262,144
    spent half a float16 write on 8,752)."""
    n, most = max(int(n), 1), max(int(most), 1)
    k = -(-n // most)
    return -(-n // k)


def _coordinates(
    layers: list[Layer],
    tl: Timeline,
    sample: np.ndarray,
    hist_bins: int,
    hist_range: tuple[float, float],
) -> dict[str, Any]:
    """The values of every coordinate a store can hold (its names as codes: :func:`_labels`)."""
    sizes = [layer.size for layer in layers]
    n_w = sum(sizes)
    edges = np.linspace(hist_range[0], hist_range[1], hist_bins + 1)
    starts = np.array([layer.start for layer in layers])
    return {
        "layer_size": sizes,
        "layer_start": [layer.start for layer in layers],
        "weight": np.arange(n_w),
        "weight_layer": np.repeat(np.arange(len(layers), dtype=np.int32), sizes),
        "weight_index": np.concatenate([np.arange(n, dtype=np.int64) for n in sizes])
        if n_w
        else [],
        "step": tl.steps,
        "step_round": tl.step_round,
        "epoch": tl.epoch,
        "epoch_step": tl.epoch_step,
        "epoch_round": tl.epoch_round,
        "event": np.arange(tl.n_events),
        "event_step": tl.event_step,
        "record_step": tl.record_steps,
        "record_round": tl.record_round,
        "hist_step": tl.hist_steps,
        "hist_round": tl.hist_round,
        "sample_step": tl.sample_steps,
        "sample_round": tl.sample_round,
        "hist_bin": np.arange(hist_bins),
        "hist_bin_lo": edges[:-1],
        "hist_bin_hi": edges[1:],
        "sample": np.arange(len(sample)),
        "sample_weight": sample,
        "sample_layer": np.searchsorted(starts, sample, side="right") - 1,
    }


def _labels(layers: list[Layer], lines: list[str]) -> dict[str, tuple[np.ndarray, dict]]:
    """The name coordinates: codes and the attributes that hold their labels."""
    return {
        "layer": encode_names([layer.name for layer in layers]),
        "layer_shape": encode_names(["x".join(map(str, layer.shape)) for layer in layers]),
        "line": encode_names(lines),
    }


def _log8_attrs() -> dict[str, Any]:
    """The attributes of ``magnitude_code`` that say how to decode it."""
    from shedding.recording import encoding as enc

    return {
        "encoding": "log8",
        "decode": "|w| = 0 if code == 0; NaN if code == 255; else "
        "2 ** (magnitude_top[layer of the weight] - (254 - code) * step)",
        "step": enc.STEP,
        "levels": enc.LEVELS,
        "relative_error_bound": enc.RELATIVE_ERROR,
        "floor_ratio": enc.FLOOR_RATIO,
    }


def _chunks(kind: str, shape: tuple[int, ...], chunk_steps: int) -> tuple[int, ...]:
    """The chunk shape of an array of ``shape`` chunked as ``kind`` (:data:`schema.CHUNKING`)."""
    wchunk = balanced_chunk(shape[-1], WEIGHT_CHUNK)
    first = {
        "step": max(1, min(4096, shape[0])),
        "event": 1,
        "snapshot": balanced_chunk(shape[0], chunk_steps),
        "snapshot-layer": balanced_chunk(shape[0], chunk_steps),
        "hist": balanced_chunk(shape[0], chunk_steps),
        "sample": balanced_chunk(shape[0], chunk_steps * 8),
    }
    if kind == "whole":
        return tuple(max(n, 1) for n in shape)
    if kind == "weight":
        return (wchunk,)
    if kind in ("event", "snapshot"):
        return (first[kind], wchunk)
    return (first[kind], *shape[1:])


def _spec(
    var: schema.Variable, sizes: dict[str, int], values: Any, ctx: dict[str, Any]
) -> ArraySpec:
    """The array of schema row ``var`` in a store of dimension ``sizes``; ``values`` for a
    coordinate."""
    shape = tuple(sizes[d] for d in var.dims)
    dtype = var.dtype_for(ctx["magnitude_dtype"])
    compressor, filters = _CODECS[var.codec]
    data = np.asarray(values, dtype=dtype) if var.coord else None
    return ArraySpec(
        var.name,
        var.dims,
        shape,
        _chunks(var.chunks, shape, ctx["chunk_steps"]),
        dtype,
        var.fill,
        ctx["attrs"].get(var.name),
        compressor=compressor,
        filters=filters,
        data=data,
    )


def cf_attrs(spec: ArraySpec) -> dict[str, Any]:
    """The attributes of ``spec``'s array: CF ``long_name`` and ``units``, ``_FillValue`` for an
    integer array whose fill value marks rows not written yet (plain xarray masks them), then the
    spec's own."""
    var = schema.BY_NAME[spec.name]
    out: dict[str, Any] = {"long_name": var.long_name, "units": var.units}
    if spec.fill_value is not None and np.dtype(spec.dtype).kind in "iu":
        out["_FillValue"] = int(spec.fill_value)
    return {**out, **(spec.attrs or {})}


def create_array(group: zarr.Group, spec: ArraySpec) -> zarr.Array:
    """Create ``spec``'s array in ``group`` (its codecs end with :data:`CHECKSUM`) and write its
    ``data``."""
    kw: dict[str, Any] = {} if spec.fill_value is None else {"fill_value": spec.fill_value}
    arr = group.create_array(
        spec.name,
        shape=spec.shape,
        chunks=spec.chunks,
        dtype=spec.dtype,
        dimension_names=list(spec.dims),
        filters=spec.filters or (),
        compressors=(spec.compressor or DEFAULT_CODEC, CHECKSUM),
        attributes=cf_attrs(spec),
        **kw,
    )
    if spec.data is not None and np.size(spec.data):
        arr[...] = spec.data
    return arr


def store_specs(
    layers: list[Layer],
    tl: Timeline,
    magnitude_dtype: str,
    chunk_steps: int,
    hist_bins: int = 64,
    hist_range: tuple[float, float] = (-8.0, 1.0),
    lines: list[str] | None = None,
    sample: np.ndarray | None = None,
    open_dims: tuple[str, ...] = (),
) -> list[ArraySpec]:
    """Every array of a run store for ``layers`` and timeline ``tl`` (see :meth:`RunStore.create`):
    the rows of :data:`schema.VARIABLES` its profile has, in the table's order. The coordinates
    along ``open_dims`` (a growable store's timeline dimensions) are left unwritten: the recorder
    appends them as the run goes."""
    lines = list(lines or [])
    sample = (
        np.zeros(0, dtype=np.int64)
        if sample is None or not len(tl.sample_steps)
        else np.asarray(sample, dtype=np.int64)
    )
    flags = schema.profile(
        magnitude_dtype,
        snapshots=len(tl.record_steps) > 0,
        hist=len(tl.hist_steps) > 0,
        samples=len(sample) > 0,
        lines=bool(lines),
    )
    values = _coordinates(layers, tl, sample, hist_bins, hist_range)
    labels = _labels(layers, lines)
    values.update({k: codes for k, (codes, _) in labels.items()})
    sizes = {k: len(v) for k, v in values.items() if k in schema.BY_NAME[k].dims}
    attrs = {k: a for k, (_, a) in labels.items()}
    attrs["magnitude_code"] = _log8_attrs()
    ctx = {"magnitude_dtype": magnitude_dtype, "chunk_steps": chunk_steps, "attrs": attrs}
    specs = [_spec(v, sizes, values.get(v.name), ctx) for v in schema.present(flags)]
    for spec in specs:
        if spec.dims[0] in open_dims:
            spec.data = None
    return specs


class ChunkWriter:
    """Appends rows along an array's first dimension and writes only whole chunks.

    The writer holds the current chunk in memory; :meth:`flush` writes that whole chunk (rows not
    yet appended keep the fill value) and a later flush rewrites it whole again, so the store never
    holds a chunk assembled from two partial writes.
    """

    def __init__(
        self, array: zarr.Array, fill: Any, grow: Callable[[int], None] | None = None
    ) -> None:
        self.array = array
        self.rows = array.shape[0]
        self.chunk = array.chunks[0]
        self.fill = fill
        # a growable store's writer asks for more rows (in whole chunks) instead of failing
        self.grow = grow
        self.pos = 0  # next row to append
        self._start = 0  # first row of the chunk in the buffer
        self._buf = self._alloc(0)
        self._dirty = False

    def _alloc(self, start: int) -> np.ndarray:
        n = max(0, min(self.chunk, self.rows - start))
        return np.full((n, *self.array.shape[1:]), self.fill, dtype=self.array.dtype)

    def append(self, rows: np.ndarray) -> None:
        """Append ``rows`` (first axis = rows); each chunk is written as soon as it is complete."""
        rows = np.asarray(rows)
        if self.pos + len(rows) > self.rows:
            if self.grow is None:
                raise IndexError(f"{self.array.name}: appending past its {self.rows} rows")
            self.grow(self.pos + len(rows))
            self._after_growth()
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

    def _after_growth(self) -> None:
        """The array has more rows now (:attr:`rows`): the buffer is the next chunk's, or holds the
        whole of the chunk it had only partly (the array ended inside it: a store trimmed when an
        earlier session of its run closed)."""
        if len(self._buf) < self.chunk:
            more = self._alloc(self._start + len(self._buf))
            self._buf = np.concatenate([self._buf, more[: self.chunk - len(self._buf)]])
        elif self.pos >= self._start + len(self._buf):  # its chunk was written whole
            self._start = self.pos
            self._buf = self._alloc(self.pos)

    def rewrite_last(self, row: np.ndarray) -> None:
        """Replace the last appended row (a growable store's snapshot at a step that a prune event
        then took: the event's post-prune state replaces it)."""
        i = self.pos - 1
        if i < 0:
            raise IndexError(f"{self.array.name}: no row to rewrite")
        if i >= self._start:
            self._buf[i - self._start] = row
            self._dirty = True
        else:  # in a chunk already written whole
            self.array[i] = row

    def shift(self, delta: int) -> None:
        """Add ``delta`` to every row appended so far (the step coordinates of a growable store,
        renumbered at its first prune event)."""
        if self._start:
            self.array[: self._start] = np.asarray(self.array[: self._start]) + delta
        n = self.pos - self._start
        self._buf[:n] += delta
        self._dirty = self._dirty or n > 0

    def seek(self, pos: int) -> None:
        """Continue appending at row ``pos`` (resume): rows before it are kept, rows from it on are
        cleared."""
        self.pos = pos
        self._start = min(pos, max(self.rows - 1, 0)) // self.chunk * self.chunk
        self._buf = self._alloc(self._start)
        keep = pos - self._start
        if keep > 0:
            self._buf[:keep] = np.asarray(self.array[self._start : self._start + keep])
        self._dirty = keep < len(
            self._buf
        )  # stale rows of a crashed run get cleared on the next write

    def truncate(self, rows: int) -> None:
        """The array now has ``rows`` rows (:meth:`RunStore.trim`); none of them is written yet past
        ``pos``."""
        if rows < self.pos:
            raise IndexError(
                f"{self.array.name}: cannot cut to {rows} rows, {self.pos} are written"
            )
        self.rows = rows
        self._buf = self._buf[: max(0, min(self.chunk, rows - self._start))]

    def flush(self) -> None:
        """Write the current, partly filled chunk whole (unfilled rows keep the fill value)."""
        if self._dirty:
            self.array[self._start : self._start + len(self._buf)] = self._buf
            self._dirty = False


def _dims(arr: zarr.Array) -> tuple[str, ...]:
    """The array's dimension names."""
    return tuple(arr.metadata.dimension_names or ())


class RunStore:
    """A run's Zarr store, opened for writing by a single process (a lock file guards it)."""

    def __init__(self, path: Path, group: zarr.Group, growth: dict[str, int] | None = None) -> None:
        self.path = path
        self.group = group
        # a growable store: the rows each open dimension grows by (its chunk length)
        self.growth = dict(growth or {})
        self._writers: list[ChunkWriter] = []
        self.grown = False  # grown since the last commit (the recorder then consolidates)

    # ------------------------------------------------------------------ creation
    @classmethod
    def create(
        cls,
        path: str | Path,
        layers: list[Layer],
        timeline: Timeline,
        attrs: dict[str, Any],
        magnitude_dtype: str,
        chunk_steps: int,
        overwrite: bool = False,
        hist_bins: int = 64,
        hist_range: tuple[float, float] = (-8.0, 1.0),
        lines: list[str] | None = None,
        sample: np.ndarray | None = None,
        growth: dict[str, int] | None = None,
    ) -> RunStore:
        """Create every array and coordinate for ``layers`` and ``timeline``, and take the writer
        lock.

        ``growth`` makes a growable store (a run of unknown length): ``timeline`` then holds one
        chunk of rows of each open dimension (its keys), whose coordinates the recorder appends;
        those dimensions grow by whole chunks (:meth:`grow`) and :meth:`trim` cuts them to the rows
        written when the run ends."""
        path = as_path(path)
        prepare_path(path, overwrite)
        path.parent.mkdir(parents=True, exist_ok=True)
        group = zarr.open_group(zarr_location(path), mode="w", zarr_format=3)
        store = cls(path, group, growth)
        store._lock()
        specs = store_specs(
            layers,
            timeline,
            magnitude_dtype,
            chunk_steps,
            hist_bins,
            hist_range,
            lines,
            sample,
            open_dims=tuple(store.growth),
        )
        for spec in specs:
            create_array(group, spec)
        group.attrs.update(
            {
                **attrs,
                "format": "shedding-run",
                "format_version": FORMAT_VERSION,
                "coordinates": " ".join(
                    s.name for s in specs if schema.BY_NAME[s.name].coord and s.name not in s.dims
                ),
                "status": "running",
                "codec_choice": CODEC_CHOICE,
                "last_committed_step": None,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
        )
        store.consolidate()
        return store

    @classmethod
    def reopen(cls, path: str | Path, growth: dict[str, int] | None = None) -> RunStore:
        """Open an existing store to continue writing it (resume); refused while a live writer holds
        it. ``growth``: a growable store's (as it was created with), read from each array's own
        metadata (the consolidated copy lags a growth that no commit followed); nothing is written
        to it but the lock until :meth:`consolidate`."""
        path = as_path(path)
        if not (path / "zarr.json").exists():
            raise StoreError(f"{path}: no run store to resume there")
        holder = read_lock(path)
        if holder is not None:
            raise held_error(path, holder)
        (path / LOCK_NAME).unlink(missing_ok=True)  # a stale lock of a crashed writer
        consolidated = False if growth else None
        group = zarr.open_group(
            zarr_location(path), mode="r+", zarr_format=3, use_consolidated=consolidated
        )
        store = cls(path, group, growth)
        store._lock()
        return store

    # ------------------------------------------------------------------ writing
    def writer(self, name: str) -> ChunkWriter:
        """A whole-chunk appender for array ``name``."""
        arr = self.group[name]
        if hasattr(arr, "with_config"):  # zarr >= 3.1
            # a chunk the writer writes holds data: skip zarr's check that it is all fill value
            # before writing it, a full pass over the chunk that took 60% of a magnitude chunk's
            # write (benchmarks.recording_overhead)
            arr = arr.with_config({"write_empty_chunks": True})
        dim = _dims(arr)[0]
        grow = (lambda rows: self.grow(dim, rows)) if dim in self.growth else None
        writer = ChunkWriter(arr, arr.fill_value, grow)
        self._writers.append(writer)
        return writer

    def write_rows(self, name: str, index: int, values: Any) -> None:
        """Write row ``index`` of an array whose first-dimension chunk is 1 (masks, event
        magnitudes)."""
        self._room(name, index + 1)
        arr = self.group[name]
        assert arr.chunks[0] == 1
        arr[index] = values

    def write_whole(self, name: str, values: np.ndarray) -> None:
        """Write a whole small array at once (event and epoch tables, rewritten from memory; in a
        growable store, the rows written so far)."""
        self._room(name, len(values))
        arr = self.group[name]
        if hasattr(arr, "with_config"):  # a table of fill values is a written table, not a lost one
            arr = arr.with_config({"write_empty_chunks": True})
        if arr.shape[0] == len(values):
            arr[...] = values
        elif len(values):
            arr[: len(values)] = values

    def _room(self, name: str, rows: int) -> None:
        """Grow the first dimension of array ``name`` to hold ``rows`` rows (a growable store)."""
        arr = self.group[name]
        dim = _dims(arr)[0]
        if arr.shape[0] < rows and dim in self.growth:
            self.grow(dim, rows)

    def grow(self, dim: str, rows: int) -> None:
        """Resize every array along open dimension ``dim`` to hold ``rows`` rows, rounded up to
        whole chunks (writer thread). The consolidated metadata follows at the next commit."""
        unit = self.growth[dim]
        rows = -(-rows // unit) * unit
        self._resize({dim: rows}, only_up=True)
        self.grown = True

    def trim(self, sizes: dict[str, int]) -> None:
        """Cut dimensions to ``sizes`` rows (a growable store at its end: the rows written)."""
        self._resize(sizes, only_up=False)
        self.consolidate()

    def _resize(self, sizes: dict[str, int], only_up: bool) -> None:
        """Resize each array along the dimensions of ``sizes``; the writers follow."""
        # the array metadata itself, not the consolidated copy, which goes stale as arrays resize
        self.group = zarr.open_group(
            zarr_location(self.path), mode="r+", zarr_format=3, use_consolidated=False
        )
        by_name = {w.array.basename: w for w in self._writers}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zarr's note on the lock file beside the arrays
            arrays = list(self.group.arrays())
        for name, arr in arrays:
            dims = _dims(arr)
            shape = tuple(sizes.get(d, n) for d, n in zip(dims, arr.shape, strict=True))
            if only_up:
                shape = tuple(max(a, b) for a, b in zip(shape, arr.shape, strict=True))
            if shape == arr.shape:
                continue
            writer = by_name.get(name)
            target = writer.array if writer is not None else arr
            target.resize(shape)
            if writer is not None and shape[0] < writer.rows:
                writer.truncate(shape[0])
            elif writer is not None:
                writer.rows = shape[0]

    def set_attrs(self, attrs: dict[str, Any] | None = None, /, **more: Any) -> None:
        """Update root attributes (a dict and/or keywords).

        The group holds the consolidated metadata since the last :meth:`consolidate`, and zarr
        writes it back with the root attributes (one small atomic write), so the store stays
        consolidated without rereading every array's metadata each time.
        """
        self.group.attrs.update({**(attrs or {}), **more})

    def consolidate(self) -> None:
        """Consolidate metadata so readers open the store in one read; the group then carries it."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.group = zarr.consolidate_metadata(zarr_location(self.path))

    # ------------------------------------------------------------------ lock
    def _lock(self) -> None:
        create_exclusive(
            self.path / LOCK_NAME,
            json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "time": time.time()}),
        )

    def release(self) -> None:
        """Drop the writer lock."""
        (self.path / LOCK_NAME).unlink(missing_ok=True)
