"""The built-in trainer records through the growable store's recorder (one recording path with
``shedding.watch``): its store is grown in whole chunks and trimmed at close, with the planned
timeline's coordinates."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr
import zarr

from shedding.recording.layout import build_timeline
from shedding.recording.open_recorder import OPEN_DIMS, STEP_CHUNK
from shedding.recording.resuming import load_resume_files
from shedding.recording.store import StoreError
from tests.conftest import tiny_config


def test_the_trainers_store_is_growable_and_trimmed_at_close(recorded):
    ds = xr.open_zarr(recorded["gmp"], mask_and_scale=False)
    rows = ds.attrs["committed_rows"]
    assert set(rows) == {d for d in OPEN_DIMS if d in ds.sizes}
    assert rows == {d: ds.sizes[d] for d in rows}  # trimmed to the rows written
    group = zarr.open_group(str(recorded["gmp"]), mode="r")
    assert group["loss"].chunks[0] == STEP_CHUNK  # the growth unit, whatever the run's length
    assert group["magnitude"].chunks[0] == tiny_config().record.chunk_steps
    # the timeline written as it came is the one the run planned
    cfg, ipe = tiny_config(), int(ds.attrs["iterations_per_epoch"])
    T, t = int(ds.attrs["T"]), int(ds.attrs["t"])
    tl = build_timeline(T, t, 1, cfg.record.every, ipe, False, cfg.record.hist_every)
    for name, values in (
        ("step", tl.steps),
        ("step_round", tl.step_round),
        ("record_step", tl.record_steps),
        ("record_round", tl.record_round),
        ("hist_step", tl.hist_steps),
        ("epoch", tl.epoch),
        ("epoch_step", tl.epoch_step),
        ("epoch_round", tl.epoch_round),
        ("event_step", tl.event_step),
    ):
        np.testing.assert_array_equal(ds[name].values, values, err_msg=name)


def test_a_checkpoint_of_a_presized_store_is_refused_in_one_line(tmp_path):
    """A resume checkpoint written before the trainer recorded growable stores (its recorder state
    has no open timeline) is refused before anything changes."""
    state = {"round": 0, "step": 3, "model": {}, "optimizer": {}, "masks": {}, "recorder": {}}
    torch.save(state, tmp_path / "checkpoint.pt")
    torch.save({5: {}}, tmp_path / "original_run.pt")
    with pytest.raises(StoreError, match="older shedding.*record the run again with --overwrite"):
        load_resume_files(tmp_path, 5)
