"""The CUDA recording path: per-step work never waits for the GPU, and what it records equals
numpy's recount.

Skipped without a CUDA device (CI has none); run on a GPU machine with ``pytest
tests/e2e/test_gpu.py``.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
import zarr

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _recorder(tmp_path, dtype: str, steps: int):
    from benchmarks.recording_overhead import _recorder, _setup

    device = torch.device("cuda")
    model, params, masks, weights, loader = _setup("resnet20", (3, 32, 32), device, 8, steps)
    rec = _recorder(
        tmp_path,
        params,
        masks,
        weights,
        steps,
        device,
        every=1,
        dtype=dtype,
        hist_every=1,
        sample_every=1,
    )
    return rec, params


@pytest.mark.parametrize("dtype", ["float16", "log8"])
def test_recording_steps_never_sync_the_device(tmp_path, dtype):
    """Every profile at every step, across chunk hand-overs, with CUDA's sync debug mode set to
    raise."""
    from shedding.training.loop import TrainState

    steps = 70  # past a 64-row chunk of snapshots: staged rows are handed over on the way
    rec, params = _recorder(tmp_path, dtype, steps)
    state = TrainState(None, None, steps, steps)
    gen = torch.Generator(device="cuda").manual_seed(0)
    # the writer thread waits for its copies (that is its job): hold it until the training-side
    # checks are done
    gate = threading.Event()
    rec.io._queue.maxsize = 0
    rec.io.submit(gate.wait)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for step in range(1, steps + 1):
            with torch.no_grad():
                for (
                    p
                ) in params.values():  # a step's worth of change, some weights crossing the line
                    p.mul_(1 + 0.05 * torch.randn(p.shape, device="cuda", generator=gen))
            state.step, state.loss, state.lr = step, torch.ones((), device="cuda"), 0.1
            rec.on_step_end(state)
    finally:
        torch.cuda.set_sync_debug_mode("default")
        gate.set()
    rec.close("complete")
    g = zarr.open_group(str(tmp_path / "run.zarr"), mode="r")
    assert g.attrs["status"] == "complete" and g.attrs["last_committed_step"] == steps
    assert (np.asarray(g["shed_count"][:]) >= 0).all() and np.asarray(g["shed_events"][:]).sum() > 0
    assert (np.asarray(g["magnitude_hist"][:]) >= 0).all()


def test_cuda_run_counts_equal_numpy_recount(tmp_path):
    """A whole recorded run on CUDA: the device's per-step counts equal numpy on the stored
    magnitudes."""
    from conftest import assert_counts_match_recount, tiny_config

    from shedding.experiment import record

    cfg = tiny_config()
    cfg.device = "cuda"
    path = record(cfg, tmp_path / "cuda.zarr", cache_dir=tmp_path / "cache")
    g = zarr.open_group(str(path), mode="r")
    assert g.attrs["status"] == "complete"
    assert_counts_match_recount(path)
    mag = np.asarray(g["magnitude"][:], dtype=np.float32)
    layer_of = np.asarray(g["weight_layer"][:])
    n_layers = len(g["layer"][:])
    hist = np.asarray(g["magnitude_hist"][:])  # every non-zero weight in one bin of its layer
    expect = np.stack([np.bincount(layer_of[row > 0], minlength=n_layers) for row in mag])
    np.testing.assert_array_equal(hist.sum(axis=2), expect)
