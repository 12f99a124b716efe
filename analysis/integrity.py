"""Is a run store intact? Checked when a store is opened, before anything is computed from it.

Zarr reads a chunk file that is not there as the array's fill value, without a word, so a store that
lost a chunk (or whose copy stopped half-way) would be analysed as -1 counts and NaN losses. The
check needs no array data: one listing of the store's files and its small ``zarr.json`` metadata
files.

* Metadata: the root's and every array's ``zarr.json`` (each array the consolidated metadata lists,
  and each folder holding one) must parse as JSON and describe an array (shape, chunk grid).
* Chunks: every chunk holding *committed* rows of a data variable (not a coordinate) must exist as a
  file, at the key the array's own ``chunk_grid`` and ``chunk_key_encoding`` give. In a complete
  store every row of an array along a step-like leading dimension (``step``, ``record_step``,
  ``hist_step``, ``sample_step``,
  ``epoch``) or ``event`` is committed. In any other store (running, failed, interrupted) the
  committed rows are the per-step rows and snapshots (``step``, ``record_step``, ``hist_step``,
  ``sample_step``) at or before the ``last_committed_step`` root attribute: the writer writes whole
  chunks, so their chunks are on disk.
  The epoch and event tables of such a store are not covered by that attribute (a run that failed
  during an epoch's end never wrote that epoch's row), so they are not checked there.
  Coordinates are left out: they are written once at creation, and zarr skips writing a chunk equal
  to the fill value (a round coordinate that is all 0), so a missing coordinate chunk can be
  legitimate.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import product
from typing import Any

import numpy as np
import xarray as xr

from shedding.storage import AnyPath, is_local

COMMITTED_DIMS = (
    "step",
    "record_step",
    "hist_step",
    "sample_step",
)  # rows that last_committed_step covers
WHOLE_DIMS = ("epoch", "event")  # checked in complete stores only


class NotARunError(ValueError):
    """The path is not a shedding run store, or a damaged one; the message is one line.

    Also importable as ``shedding.analysis.io.NotARunError``."""


def _damaged(message: str) -> Exception:
    """The error a damaged store raises: a :class:`NotARunError` (a ValueError), on one line."""
    return NotARunError(" ".join(message.split()))


@dataclass
class Listing:
    """A store's files (relative keys such as ``shed_count/c/0/0``) and its arrays' parsed
    metadata."""

    files: set[str]
    arrays: dict[str, dict[str, Any]]


def list_files(path: AnyPath) -> set[str]:
    """Every file under ``path`` as a ``/``-separated key relative to it (one listing; no file is
    read)."""
    if is_local(path):
        root, out = os.fspath(path), set()
        for folder, _, names in os.walk(root):
            rel = os.path.relpath(folder, root)
            prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
            out.update(prefix + n for n in names)
        return out
    base = str(path.path).rstrip("/") + "/"
    return {
        f[len(base) :] if f.startswith(base) else f.split(base, 1)[-1] for f in path.fs.find(base)
    }


def _read_all(paths: list[AnyPath]) -> list[bytes | Exception]:
    """The bytes of each file, or the error reading it (remote stores: one batched, concurrent
    request)."""
    if not paths or is_local(paths[0]):
        out: list[bytes | Exception] = []
        for p in paths:
            try:
                out.append(p.read_bytes())
            except OSError as e:
                out.append(e)
        return out
    got = paths[0].fs.cat([p.path for p in paths], on_error="return")
    return [got.get(p.path, FileNotFoundError(p.path)) for p in paths]


def _parse(path: AnyPath, data: bytes | Exception, what: str) -> dict[str, Any]:
    """Parsed JSON metadata, or NotARunError (one line, naming ``path``) when missing or
    unreadable."""
    if isinstance(data, FileNotFoundError):
        raise _damaged(f"{path}: {what} missing; the store is damaged")
    try:
        if isinstance(data, Exception):
            raise data
        meta = json.loads(data)
    except (OSError, ValueError, UnicodeDecodeError) as e:  # JSONDecodeError is a ValueError
        raise _damaged(
            f"{path}: unreadable {what} ({str(e).splitlines()[0]}); the store is damaged"
        ) from None
    if not isinstance(meta, dict):
        raise _damaged(f"{path}: {what} is not a JSON object; the store is damaged")
    return meta


def read_listing(path: AnyPath) -> Listing:
    """List the store and parse every array's metadata; NotARunError (one line, naming the file)
    when one is missing, unreadable or not an array's."""
    files = list_files(path)
    root = _parse(path / "zarr.json", _read_all([path / "zarr.json"])[0], "root metadata")
    consolidated = (root.get("consolidated_metadata") or {}).get("metadata") or {}
    listed = {
        k for k, v in consolidated.items() if isinstance(v, dict) and v.get("node_type") == "array"
    }
    on_disk = {f.rsplit("/", 1)[0] for f in files if f.endswith("/zarr.json") and f.count("/") == 1}
    names = sorted(listed | on_disk)
    metas = [path / name / "zarr.json" for name in names]
    arrays = {}
    for name, meta_path, data in zip(names, metas, _read_all(metas), strict=True):
        meta = _parse(meta_path, data, "array metadata")
        if meta.get("node_type") == "group" and name not in listed:
            continue  # a subgroup, not an array
        grid = (meta.get("chunk_grid") or {}).get("configuration", {}).get("chunk_shape")
        if (
            meta.get("node_type") != "array"
            or not isinstance(meta.get("shape"), list)
            or not isinstance(grid, list)
        ):
            raise _damaged(
                f"{meta_path}: not a complete array metadata (shape, chunk grid); "
                "the store is damaged"
            )
        arrays[name] = meta
    return Listing(files, arrays)


def chunk_key(meta: dict[str, Any], index: tuple[int, ...]) -> str:
    """The store key of chunk ``index`` under the array's ``chunk_key_encoding`` (zarr v3
    ``default`` or ``v2``)."""
    enc = meta.get("chunk_key_encoding") or {"name": "default"}
    name = enc.get("name", "default")
    sep = (enc.get("configuration") or {}).get("separator", "/" if name == "default" else ".")
    if name == "v2":
        return sep.join(map(str, index)) if index else "0"
    return sep.join(["c", *map(str, index)])


def chunk_keys(meta: dict[str, Any], rows: int) -> Iterator[str]:
    """Keys of the chunks holding the first ``rows`` rows (all columns) of an array."""
    shape, chunks = meta["shape"], meta["chunk_grid"]["configuration"]["chunk_shape"]
    if not shape:
        yield chunk_key(meta, ())
        return
    counts = [math.ceil(min(rows, shape[0]) / chunks[0])] + [
        math.ceil(n / c) for n, c in zip(shape[1:], chunks[1:], strict=True)
    ]
    for index in product(*(range(n) for n in counts)):
        yield chunk_key(meta, index)


def committed_rows(ds: xr.Dataset, dim: str) -> int | None:
    """How many leading rows along ``dim`` are committed (see the module docstring); None: not
    checked."""
    if dim not in COMMITTED_DIMS + WHOLE_DIMS:
        return None
    if ds.attrs.get("status") == "complete":
        return int(ds.sizes[dim])
    last = ds.attrs.get("last_committed_step")
    if dim in WHOLE_DIMS or last is None or dim not in ds.coords:
        return None
    return int(np.count_nonzero(np.asarray(ds[dim].values) <= int(last)))


def check_chunks(path: AnyPath, ds: xr.Dataset, listing: Listing) -> None:
    """NotARunError (one line, naming the file) when a chunk of committed rows of a data variable is
    missing."""
    for name, meta in listing.arrays.items():
        dims = meta.get("dimension_names") or []
        if name in ds.coords or not dims:
            continue
        rows = committed_rows(ds, dims[0])
        if not rows:
            continue
        for key in chunk_keys(meta, rows):
            if f"{name}/{key}" not in listing.files:
                raise _damaged(
                    f"{path / name / key}: chunk file missing (holds committed rows of {name} "
                    f"along {dims[0]}); the store is damaged"
                )
