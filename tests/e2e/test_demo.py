"""The main job end to end: ``shedding demo`` leaves complete stores for every seed and a report
with verdicts."""

from __future__ import annotations

import json
import re

import pytest
import xarray as xr
from typer.testing import CliRunner

from shedding.cli.demo import demo_configs
from shedding.cli.main import app


def test_demo_configs_differ_only_in_pruning_method():
    cfgs = demo_configs(seed=3)
    assert set(cfgs) == {"gmp", "random", "control"}
    methods = {n: c.prune.method for n, c in cfgs.items()}
    assert methods == {"gmp": "gmp", "random": "random", "control": "none"}
    plain = [
        json.dumps({**c.__dict__, "prune": None}, default=str, sort_keys=True)
        for c in cfgs.values()
    ]
    assert len(set(plain)) == 1  # same model, data, training, retraining, recording and seed
    assert all(
        c.seed == 3 and c.prune.sparsity == cfgs["gmp"].prune.sparsity for c in cfgs.values()
    )


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    res = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "demo"), "--seeds", "2"])
    assert res.exit_code == 0, res.output
    for seed in (0, 1):
        for name in ("gmp", "random", "control"):
            ds = xr.open_zarr(tmp_path / "demo" / f"{name}-s{seed}.zarr")
            assert ds.attrs["status"] == "complete" and ds.attrs["seed"] == seed
            assert ds.attrs["last_committed_step"] == int(ds.step.values[-1])
    html = (tmp_path / "demo" / "report.html").read_text()
    verdicts = dict(
        re.findall(
            r"<b>(gmp 0\.5, lr_rewind|random 0\.5, lr_rewind): (CASCADE|NO CASCADE)</b>", html
        )
    )
    assert set(verdicts) == {"gmp 0.5, lr_rewind", "random 0.5, lr_rewind"}
    assert "95% CI" in html and "Kept-set overlap" in html
    assert "report:" in res.stdout and "Conditions: means over seeds" in res.stdout
    _tensorstore_reads_every_demo_array(sorted((tmp_path / "demo").glob("*.zarr")))
    bad = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "demo"), "--seeds", "0"])
    assert bad.exit_code == 2 and "--seeds: 0 must be at least 1" in bad.stderr


def _tensorstore_reads_every_demo_array(stores: list) -> None:
    """tensorstore, an independent Zarr v3 implementation, reads every array of every demo store as
    zarr-python."""
    import numpy as np
    import pytest

    pytest.importorskip("tensorstore")
    from zarr_readers import open_group as _open
    from zarr_readers import read_with_tensorstore as _tensorstore

    assert len(stores) == 6
    for path in stores:
        group = _open(path)
        for name in group.array_keys():
            ours = np.ascontiguousarray(group[name][...])
            theirs = np.ascontiguousarray(_tensorstore(path / name))
            assert theirs.dtype == ours.dtype and theirs.tobytes() == ours.tobytes(), (
                f"{path.name}/{name}"
            )
