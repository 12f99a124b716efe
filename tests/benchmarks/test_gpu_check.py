"""The GPU check (benchmarks/gpu_check.sh) as a dry run on the CPU: every part runs on stand-in
sizes, and its verify step passes the recorded store it sends back but fails one whose counts or
losses were altered."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "gpu_check.sh"
OUTPUTS = [
    "env.txt",
    "pytest.log",
    "record.log",
    "run.tar.gz",
    "bench.txt",
    "bench.json",
    "summary.txt",
]


def _script(*args: str, env_extra: dict[str, str] | None = None, timeout: float = 300):
    env = {k: v for k, v in os.environ.items() if k not in ("OUT", "PYTHONPATH")}
    env.update({"PYTHON": sys.executable, "OMP_NUM_THREADS": "1", **(env_extra or {})})
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """``bash benchmarks/gpu_check.sh --device cpu --quick`` into a fresh folder (no wheels, no
    GPU)."""
    out = tmp_path_factory.mktemp("gpu-check")
    res = _script("--device", "cpu", "--quick", "--out", str(out))
    return res, out


def _unpacked(out: Path, into: Path) -> Path:
    with tarfile.open(out / "run.tar.gz") as tar:
        tar.extractall(into, filter="data")
    return into / "run.zarr"


@pytest.mark.slow
def test_dry_run_runs_every_part_and_writes_its_outputs(dry_run):
    res, out = dry_run
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        OUTPUTS
    )  # what the device machine sends back
    summary = (out / "summary.txt").read_text()
    for part in ("env", "tests", "record", "verify", "bench", "report"):
        assert any(line.split()[:2] == [part, "ok"] for line in summary.splitlines()), summary
    assert "every part passed" in summary
    assert "verify: OK" in (out / "record.log").read_text()
    rows = json.loads((out / "bench.json").read_text())["rows"]
    whats = {(r["case"], r["what"]) for r in rows}
    from benchmarks.gpu_check import TARGETS

    for case, what, _ in TARGETS:  # each target row measured, wall and own, on its stand-in
        assert (case, what) in whats and (case, what.replace(": wall", ": own")) in whats
    assert all(r["value"] is not None and r["value"] > 0 for r in rows)
    assert all("(for resnet" in r["label"] for r in rows)
    assert (
        out / "run.tar.gz"
    ).stat().st_size < 16 * 2**20  # the device machine sends back files up to 16 MiB


@pytest.mark.slow
def test_verify_passes_the_tarball_and_fails_altered_stores(dry_run, tmp_path, capsys):
    import zarr

    from benchmarks.gpu_check import main

    res, out = dry_run
    assert res.returncode == 0, res.stdout[-4000:]
    assert main(["verify", str(out / "run.tar.gz"), "--device", "cpu"]) == 0
    assert main(["verify", str(out / "run.tar.gz"), "--device", "cuda"]) == 1  # recorded on the CPU
    capsys.readouterr()

    store = _unpacked(out, tmp_path / "shed")
    g = zarr.open_group(str(store), mode="r+")
    counts = np.asarray(g["shed_count"][:])
    counts[len(counts) // 2, 0] += 1  # one weight more shed than the stored magnitudes show
    g["shed_count"][:] = counts
    altered = tmp_path / "altered.tar.gz"
    with tarfile.open(altered, "w:gz") as tar:
        tar.add(store, arcname="run.zarr")
    assert main(["verify", str(altered)]) == 1
    assert "FAIL: shed_count: 1 entries differ from numpy's recount" in capsys.readouterr().out
    assert main(["verify", str(store)]) == 1  # a .zarr folder is checked the same way

    store = _unpacked(out, tmp_path / "loss")
    g = zarr.open_group(str(store), mode="r+")
    loss = np.asarray(g["loss"][:])
    loss[-1] = np.nan
    g["loss"][:] = loss
    capsys.readouterr()
    assert main(["verify", str(store)]) == 1
    assert "loss is empty or not all finite" in capsys.readouterr().out

    store = _unpacked(out, tmp_path / "status")
    zarr.open_group(str(store), mode="r+").attrs["status"] = "interrupted"
    assert main(["verify", str(store)]) == 1


def test_script_rejects_bad_options_before_running_anything(tmp_path):
    for args, message in (
        (["--device", "tpu", "--out", str(tmp_path)], "--device must be cpu or cuda"),
        (["--device", "cpu"], "no output folder"),
        (["--parts", "env,lint", "--out", str(tmp_path)], "unknown part 'lint'"),
        (["--budget", "soon", "--out", str(tmp_path)], "--budget must be whole seconds"),
    ):
        res = _script(*args, timeout=30)
        assert res.returncode == 2 and message in res.stderr, (args, res.stderr)
    assert not any(tmp_path.iterdir())


def test_env_stops_the_check_when_a_package_is_missing(tmp_path):
    """A machine without zarr (the wheels not installed): env fails, and no other part spends the
    lease."""
    shadow = tmp_path / "shadow"
    (shadow / "zarr").mkdir(parents=True)
    (shadow / "zarr" / "__init__.py").write_text(
        "raise ImportError('zarr is not installed here')\n"
    )
    out = tmp_path / "out"
    res = _script(
        "--device", "cpu", "--out", str(out), env_extra={"PYTHONPATH": str(shadow)}, timeout=120
    )
    assert res.returncode == 1
    assert "zarr" in (out / "env.txt").read_text() and "MISSING" in (out / "env.txt").read_text()
    assert sorted(p.name for p in out.iterdir()) == ["env.txt", "summary.txt"]


def test_variants_select_per_case_and_reject_unknown_names():
    from benchmarks.gpu_check import TARGET_VARIANTS
    from benchmarks.recording_overhead import select_variants

    chosen = select_variants(["resnet56", "resnet50"], TARGET_VARIANTS)
    assert chosen == {
        "resnet56": ["summary every step", "full every step, float16"],
        "resnet50": ["full every 100, float16"],
    }
    assert select_variants(["resnet56", "resnet50"], ["summary every step"]) == {
        "resnet56": ["summary every step"],
        "resnet50": ["summary every step"],
    }
    with pytest.raises(ValueError, match="in none of the cases"):
        select_variants(["resnet56", "resnet50"], ["summary every step", "full every 7, float16"])
    with pytest.raises(ValueError, match="none of them is timed in case resnet50"):
        select_variants(["resnet56", "resnet50"], ["resnet56:summary every step"])


def test_wheel_list_pins_one_version_of_each_installed_package():
    """benchmarks/gpu_wheels.sh pins each wheel once (two versions stop the whole install on the
    device machine), each a package the project's environment installs, the key ones of the checked
    paths among them."""
    from importlib import metadata

    text = (REPO / "benchmarks" / "gpu_wheels.sh").read_text()
    pins = [
        line.split()[0]
        for line in text.splitlines()
        if "==" in line and not line.lstrip().startswith("#")
    ]
    names = [p.split("==")[0] for p in pins]
    assert len(names) == len(set(names)) and {
        "zarr",
        "numcodecs",
        "dask",
        "typer",
        "pydantic",
    } <= set(names)
    for name in names:
        metadata.version(
            name
        )  # raises PackageNotFoundError for a name the environment does not have
