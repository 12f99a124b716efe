"""examples/own_loop.py runs: a GMP-pruned run and its control, then shedding analyze on them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_own_loop_example_gives_a_verdict(tmp_path):
    out = tmp_path / "own"
    subprocess.run(
        [sys.executable, str(ROOT / "examples" / "own_loop.py"), str(out), "2"],
        check=True,
        capture_output=True,
        timeout=600,
    )
    gmp, control = xr.open_zarr(out / "gmp-s0.zarr"), xr.open_zarr(out / "control-s0.zarr")
    assert gmp.attrs["status"] == control.attrs["status"] == "complete"
    assert control.attrs["control"] is True and gmp.attrs["control"] is False
    # the pruned run: GMP at 50% over both layers (pre-prune magnitudes are stored as float16,
    # so the cut is checked up to ties of that rounding)
    pre = gmp["pre_prune_magnitude"].isel(event=0).values.astype(np.float64)
    mask = gmp["mask"].isel(event=0).values
    assert int((~mask).sum()) == round(0.5 * len(mask))
    assert pre[mask].min() >= pre[~mask].max()
    assert bool(control["mask"].all())
    assert np.isfinite(gmp["event_final_test_accuracy"].values).all()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "shedding.cli.main",
            "analyze",
            str(out / "gmp-s0.zarr"),
            str(out / "control-s0.zarr"),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    text = json.dumps(report)
    assert "gmp-s0" in text and ("no cascade" in text or "cascade" in text)
