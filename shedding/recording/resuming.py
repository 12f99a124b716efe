"""What ``record --resume`` checks before it touches a store: that it can be resumed, that its
resume files load, and that every chunk it keeps (the rows committed before the checkpoint) is on
disk and intact.

Each refusal is a one-line :class:`StoreError` naming the damaged file, raised before anything is
changed.
"""

from __future__ import annotations

import itertools
import math
import warnings
from pathlib import Path
from typing import Any

from shedding import storage
from shedding.config import RunConfig, from_plain
from shedding.recording.store import StoreError, held_error, read_lock, run_status

AGAIN = "record the run again with --overwrite"


def check_resumable(out: Path) -> RunConfig:
    """The store's configuration, if ``out`` is a run store that is not complete and not held by a
    live writer."""
    import xarray as xr

    from shedding import distributed

    if distributed.launched():
        raise StoreError(f"{out}: resume with a single process, not under torchrun")
    if not (out / "zarr.json").exists():
        raise StoreError(f"{out}: no run store to resume there")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            attrs = dict(xr.open_zarr(storage.zarr_location(out)).attrs)
    except Exception as e:  # noqa: BLE001 - any unreadable metadata is a damaged store
        raise StoreError(
            f"{out}: its metadata can't be read ({type(e).__name__}); {AGAIN}"
        ) from None
    status = run_status(out, attrs)
    if status == "complete":
        raise StoreError(f"{out} is complete; there is nothing to resume")
    if status == "running":
        raise held_error(out, read_lock(out))
    if "config" not in attrs:
        raise StoreError(
            f"{out} was never fully created (stopped while it was being made); {AGAIN}"
        )
    cfg = from_plain(attrs["config"])
    _check_mask_file(out, cfg, attrs.get("mask_file_digest"))
    return cfg


def _check_mask_file(out: Path, cfg: RunConfig, digest: str | None) -> None:
    """A run pruned with a masks file resumes with the masks it started with: the file must still
    hold them (stores made before the digest was recorded are not checked)."""
    if cfg.prune.method != "file" or digest is None:
        return
    from shedding.pruning.mask_file import load_mask_file, masks_digest

    try:
        now = masks_digest(load_mask_file(cfg.prune.mask_file))
    except ValueError as e:
        raise StoreError(f"--prune-mask-file: {e}") from None
    if now != digest:
        raise StoreError(
            f"{out}: its masks file {cfg.prune.mask_file} no longer holds the masks the run "
            f"started with; put that file back, or {AGAIN}"
        )


def _load(path: Path, weights_only: bool) -> Any:
    try:
        return storage.load(path, map_location="cpu", weights_only=weights_only)
    except Exception as e:  # noqa: BLE001 - a file that does not load is damaged, whatever the reason
        raise StoreError(
            f"{path} is damaged and can't be loaded ({type(e).__name__}); {AGAIN}"
        ) from None


def load_resume_files(folder: Path, T: int) -> tuple[dict[str, Any] | None, dict[int, Any] | None]:
    """(the last retraining checkpoint, the original run's checkpoints); None where the run had not
    written it.

    A checkpoint without the original run it needs, or either file damaged, is refused.
    """
    ckpt, original = folder / "checkpoint.pt", folder / "original_run.pt"
    state = _load(ckpt, weights_only=False) if ckpt.exists() else None
    if state is not None and not (
        isinstance(state, dict)
        and {"round", "step", "model", "optimizer", "masks", "recorder"} <= state.keys()
        and isinstance(state["recorder"], dict)
    ):
        raise StoreError(f"{ckpt} is damaged (not a resume checkpoint); {AGAIN}")
    if state is not None and "open" not in state["recorder"]:
        raise StoreError(
            f"{ckpt} was written by an older shedding, whose stores were made with their whole "
            f"timeline; this version records a growable store and can't continue it; {AGAIN}"
        )
    checkpoints = _load(original, weights_only=True) if original.exists() else None
    if checkpoints is not None and not (isinstance(checkpoints, dict) and T in checkpoints):
        raise StoreError(
            f"{original} is damaged (no state at the original run's step {T}); {AGAIN}"
        )
    if state is not None and checkpoints is None:
        raise StoreError(f"{original} is missing, and the checkpoint in {folder} needs it; {AGAIN}")
    return state, checkpoints


def _chunk_slices(array: Any, rows: int) -> list[tuple[tuple[int, ...], tuple[slice, ...]]]:
    """(chunk index, selection) of every chunk holding any of the first ``rows`` rows of
    ``array``."""
    ranges = [range(math.ceil(rows / array.chunks[0]))]
    ranges += [
        range(math.ceil(n / c)) for n, c in zip(array.shape[1:], array.chunks[1:], strict=True)
    ]
    out = []
    for idx in itertools.product(*ranges):
        sel = tuple(
            slice(i * c, min((i + 1) * c, n))
            for i, c, n in zip(idx, array.chunks, array.shape, strict=True)
        )
        out.append((idx, sel))
    return out


STATIC_DIMS = (
    "layer",
    "weight",
    "sample",
    "line",
    "hist_bin",
)  # written once, when the store was made
KEPT_EVENT_ARRAYS = (
    "mask",
    "pre_prune_magnitude",
)  # written at each event, never rewritten by a resume


def verify_committed(store: Any, rows: dict[str, int], events: int) -> None:
    """What a resume keeps is intact: every chunk of the first ``rows[name]`` rows of each array
    exists and decodes (checksums included); the first ``events`` rows of the per-event weight
    arrays and the arrays made with the store decode (zarr leaves out a chunk equal to the fill
    value, so their absence proves nothing)."""
    for name, n in rows.items():
        _verify(store, name, n, present=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr's note on the lock and resume files by the arrays
        names = list(store.group.array_keys())
    for name in names:
        dims = tuple(store.group[name].metadata.dimension_names or ())
        if name in KEPT_EVENT_ARRAYS:
            _verify(store, name, events, present=False)
        elif dims and dims[0] in STATIC_DIMS:
            _verify(store, name, store.group[name].shape[0], present=False)


def _verify(store: Any, name: str, n: int, present: bool) -> None:
    array = store.group[name]
    for idx, sel in _chunk_slices(array, min(n, array.shape[0])):
        path = store.path / name / array.metadata.encode_chunk_key(idx)
        if present and not path.exists():
            raise StoreError(f"{path} is missing: the run had committed its rows; {AGAIN}")
        try:
            array[sel]
        except Exception as e:  # noqa: BLE001 - a chunk that does not decode is damaged
            raise StoreError(f"{path} is damaged ({type(e).__name__}); {AGAIN}") from None
