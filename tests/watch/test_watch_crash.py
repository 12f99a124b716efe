"""A watched run killed with SIGKILL: the committed prefix of its growable store stays readable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import xarray as xr

from shedding.analysis.io import open_run
from shedding.recording.store import run_status

CHILD = textwrap.dedent(
    """
    import json, os, signal, sys
    import torch
    import shedding
    from shedding.recording import open_recorder

    open_recorder.STEP_CHUNK = 8  # the per-step arrays grow (by 8 rows) twice before the kill
    torch.manual_seed(0)
    model = torch.nn.Linear(6, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    rec = shedding.watch(model, sys.argv[1], optimizer=opt, profile="full", every=3, chunk_steps=2)
    losses = []
    for i in range(25):
        loss = model(torch.randn(4, 6)).pow(2).mean()
        opt.zero_grad(); loss.backward(); opt.step(); rec.log(loss=loss)
        losses.append(loss.item())
        if i + 1 == 20:
            rec.epoch(train_loss=losses[-1])  # a commit: the 20 steps are on disk
    print(json.dumps(losses), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_sigkill_leaves_the_committed_prefix_readable(tmp_path):
    path = tmp_path / "killed.zarr"
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    losses = json.loads(done.stdout)
    plain = xr.open_zarr(path)  # no code of ours: the store opens, capacity rows included
    assert plain.sizes["step"] >= 20 and plain.attrs["committed_rows"]["step"] == 20
    assert plain.attrs["status"] == "running"
    assert run_status(path, plain.attrs) == "crashed"
    ds = open_run(path)  # cut to the committed rows
    assert ds.sizes["step"] == 20 and ds.sizes["epoch"] == 1
    np.testing.assert_array_equal(ds["step"].values, np.arange(1, 21))
    np.testing.assert_allclose(ds["loss"].values, losses[:20], rtol=1e-6)
    np.testing.assert_array_equal(ds["record_step"].values, np.arange(0, 21, 3))
    assert not np.isnan(ds["magnitude"].values).any()
    assert os.path.exists(path / "writer.lock")  # the crashed writer's, stale
