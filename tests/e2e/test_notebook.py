"""The example notebook runs top to bottom on the tiny recorded stores, and its numbers match
ours."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "explore_runs.ipynb"


def _kernel_path(tmp: Path) -> str:
    """A JUPYTER_PATH whose first entry holds a ``python3`` kernelspec that runs this very
    interpreter."""
    from ipykernel.kernelspec import install
    from jupyter_client.kernelspec import KernelSpecManager

    prefix = tmp / "jupyter"
    install(
        kernel_name="python3", prefix=str(prefix)
    )  # argv: sys.executable -m ipykernel_launcher ...
    data = prefix / "share" / "jupyter"
    spec = KernelSpecManager(kernel_dirs=[str(data / "kernels")]).get_kernel_spec("python3")
    assert spec.argv[0] == sys.executable
    return os.pathsep.join(filter(None, [str(data), os.environ.get("JUPYTER_PATH")]))


@pytest.fixture(scope="module")
def executed(recorded, tmp_path_factory):
    """Run the notebook on the ``recorded`` stores; return (notebook, JSON summary it wrote)."""
    tmp = tmp_path_factory.mktemp("notebook")
    runs = tmp / "runs"
    runs.mkdir()
    for name, path in recorded.items():
        try:
            (runs / f"{name}-s0.zarr").symlink_to(Path(path).resolve(), target_is_directory=True)
        except OSError:
            shutil.copytree(path, runs / f"{name}-s0.zarr")  # the names shedding demo writes
    out = tmp / "summary.json"
    root = str(
        NOTEBOOK.parents[1]
    )  # makes `analysis` importable in the kernel even without an install
    nb = nbformat.read(NOTEBOOK, as_version=4)
    with pytest.MonkeyPatch.context() as mp:  # the kernel inherits this process's environment
        mp.setenv("SHEDDING_RUNS", str(runs))
        mp.setenv("SHEDDING_NOTEBOOK_OUT", str(out))
        mp.setenv("JUPYTER_PATH", _kernel_path(tmp))
        mp.setenv("PYTHONPATH", os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
        nbclient.NotebookClient(
            nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp)}}
        ).execute()
    return nb, json.loads(out.read_text())


def test_notebook_is_clean():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code), "stored outputs"
    assert any(c.cell_type == "markdown" for c in nb.cells)
    # sections (a)-(c) use plain xarray: the package is imported only in the analysis section
    first_api = next(i for i, c in enumerate(code) if "from shedding.analysis import" in c.source)
    ours = ("import shedding", "from shedding")
    assert not any(o in c.source for c in code[:first_api] for o in ours)
    assert "xr.open_zarr" in code[1].source


def test_notebook_runs_without_errors(executed):
    nb, _ = executed
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not [o for o in cell.outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "shed_count (recorded)" in text and "<xarray.Dataset>" in text


def _group(path) -> zarr.Group:
    return zarr.open_group(str(path), mode="r")


def test_notebook_numbers_match_an_independent_computation(executed, recorded):
    _, summary = executed
    gmp, rnd, ctrl = (_group(recorded[n]) for n in ("gmp", "random", "control"))

    # (c) the weights both runs kept
    a, b = np.asarray(gmp["mask"][-1]).astype(bool), np.asarray(rnd["mask"][-1]).astype(bool)
    both, either = int((a & b).sum()), int((a | b).sum())
    da, db = a.mean(), b.mean()
    assert summary["both"] == both and summary["either"] == either
    assert summary["jaccard"] == pytest.approx(both / either)
    assert summary["jaccard_api"] == pytest.approx(both / either)
    assert summary["jaccard_chance"] == pytest.approx(da * db / (da + db - da * db))

    # (b) the shed level at s2, recorded and recounted from the magnitudes (float32 stores: exact)
    steps = np.asarray(gmp["step"][:])
    counts = np.asarray(gmp["shed_count"][:]).sum(axis=1)
    s1, s2 = summary["s1"], summary["s2"]
    assert 0 < s1 < s2 == int(np.asarray(gmp["record_step"][:])[-1])
    level = dict(zip(steps.tolist(), counts.tolist(), strict=True))
    assert summary["shed_count_s2"] == level[s2]
    assert summary["level_change"] == level[s2] - level[s1]
    rec = np.asarray(gmp["record_step"][:]).tolist()
    mag = np.asarray(gmp["magnitude"][:])
    assert summary["magnitude_dtype"] == str(mag.dtype) == "float32"
    line = np.float32(gmp["event_line"][0])
    eligible = a & (mag[rec.index(0)] >= line)
    below1, below2 = eligible & (mag[rec.index(s1)] < line), eligible & (mag[rec.index(s2)] < line)
    assert summary["shed_recount_s2"] == int(below2.sum()) == level[s2]
    assert summary["went_under"] == int((~below1 & below2).sum())
    assert summary["came_back"] == int((below1 & ~below2).sum())

    # (a) layer 1's survivors' mean |w| at the first and last snapshot
    in_layer = np.asarray(gmp["weight_layer"][:]) == 1
    kept = in_layer & a
    assert summary["layer"] == str(np.asarray(gmp["layer"][:])[1])
    assert summary["layer_mean_abs_w_first"] == pytest.approx(
        mag[0][kept].astype(np.float64).mean(), rel=1e-9
    )
    assert summary["layer_mean_abs_w_last"] == pytest.approx(
        mag[-1][kept].astype(np.float64).mean(), rel=1e-9
    )

    # (d) the cascade verdicts: excess of S = shed / eligible over the control's, within 5 epochs of
    # the event
    def s_of(g):
        return np.asarray(g["shed_count"][:]).sum(axis=1) / np.asarray(g["event_eligible"][0]).sum()

    window = 5 * int(gmp.attrs["iterations_per_epoch"])
    in_window = (steps > 0) & (steps <= window)
    for name, g in (("gmp", gmp), ("random", rnd)):
        excess = (s_of(g) - s_of(ctrl))[in_window]
        got = summary["cascade"][name]
        assert got["excess_peak"] == pytest.approx(excess.max(), abs=1e-12)
        assert got["excess_peak_step"] == int(steps[in_window][np.argmax(excess)])
        assert got["verdict"] == ("cascade" if excess.max() >= 0.05 else "no cascade")
