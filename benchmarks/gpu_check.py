"""The GPU check's Python side (benchmarks/gpu_check.sh runs it; docs/gpu-checks.md says how and
why).

* ``python -m benchmarks.gpu_check env [--device cuda]``: what the machine has (Python, torch, the
  GPU, each package the checked paths import, with its version and where it was imported from);
  fails when one of them does not import, or when ``--device cuda`` finds no CUDA device, so the
  script stops before spending the lease on parts that cannot run.
* ``python -m benchmarks.gpu_check verify RUN.tar.gz|RUN.zarr [--device cuda]``: checks a recorded
  store (the tarball the GPU machine sends back): status complete, recorded on that device, a
  snapshot at every step, the device's per-step shed counts and eligible set equal numpy's recount
  from the stored float32 magnitudes and mask, each magnitude histogram holds every non-zero weight
  once, losses finite.
* ``python -m benchmarks.gpu_check report BENCH.json``: the benchmark's target rows against their
  targets.

Its imports are the standard library and numpy only (zarr is imported where a store is read), so
``env`` can report what is missing rather than fail on it.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import math
import platform
import sys
import tarfile
import tempfile
import traceback
from pathlib import Path
from typing import Any

import numpy as np

# What the checked paths import (python -m shedding.cli.main record, tests/e2e/test_gpu.py,
# benchmarks/recording_overhead.py) beyond the standard library; the ones benchmarks/gpu_wheels.sh
# carries are marked in its list.
PACKAGES = [
    "numpy",
    "scipy",
    "pandas",
    "xarray",
    "sklearn",
    "torch",
    "torchvision",
    "zarr",
    "numcodecs",
    "google_crc32c",
    "donfig",
    "dask",
    "typer",
    "pydantic",
    "rich",
    "yaml",
    "fsspec",
    "pytest",
]
MODULES = [
    "dask.array",
    "shedding.cli.main",
    "shedding.experiment",
    "shedding.analysis",
    "benchmarks.recording_overhead",
]

# (case, row of benchmarks/recording_overhead.py, largest ratio an H100/H200 should give)
TARGETS = [
    ("resnet56", "summary every step / none: wall", 1.02),
    ("resnet56", "full every step, float16 / none: wall", 1.10),
    ("resnet50", "full every 100, float16 / none: wall", 1.05),
]
# the benchmark variants those rows need, as benchmarks.recording_overhead --variants takes them
TARGET_VARIANTS = [
    "resnet56:summary every step",
    "resnet56:full every step, float16",
    "resnet50:full every 100, float16",
]

PER_STEP = ("shed_count", "shed_events", "recover_events")


@functools.cache
def _distributions() -> dict[str, list[str]]:
    from importlib import metadata

    return dict(metadata.packages_distributions())


def _version(name: str, module: Any) -> str:
    """The installed version of the distribution that provides top-level module ``name`` (or the
    module's own)."""
    from importlib import metadata

    for dist in _distributions().get(name.split(".")[0], []):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return str(getattr(module, "__version__", ""))


def env(device: str) -> int:
    """Print what this machine has for the check; 1 when something the check needs is missing."""
    problems = []
    print(
        f"python {platform.python_version()} at {sys.executable} "
        f"({platform.machine()}, {platform.system()})"
    )
    for name in PACKAGES + MODULES:
        try:
            mod = importlib.import_module(name)
        except Exception as e:  # noqa: BLE001 - any failure to import is what this reports
            problems.append(f"{name}: {type(e).__name__}: {e}")
            print(f"  {name:<30} MISSING ({type(e).__name__}: {e})")
            continue
        print(f"  {name:<30} {_version(name, mod):<16} {getattr(mod, '__file__', '') or ''}")
    try:
        import torch

        cuda = torch.cuda.is_available()
        print(
            f"torch {torch.__version__}, CUDA {torch.version.cuda}, "
            f"cuDNN {torch.backends.cudnn.version()}, "
            f"cuda available: {cuda}, {torch.get_num_threads()} CPU threads"
        )
        if cuda:
            props = torch.cuda.get_device_properties(0)
            print(
                f"GPU: {props.name}, {props.total_memory / 2**30:.0f} GiB, "
                f"capability {props.major}.{props.minor}, "
                f"{props.multi_processor_count} multiprocessors, "
                f"{torch.cuda.device_count()} device(s)"
            )
        if device.startswith("cuda") and not cuda:
            problems.append("--device cuda: torch sees no CUDA device")
    except Exception as e:  # noqa: BLE001
        problems.append(f"torch: {type(e).__name__}: {e}")
    for p in problems:
        print(f"error: {p}")
    return 1 if problems else 0


def numpy_recount(group: Any) -> dict[str, np.ndarray]:
    """What a store's device-side counts should be, recounted by numpy from its stored float32
    magnitudes, the event's mask and its shed line (docs/science.md#shedding): per layer, the
    eligible weights (kept, at or above the line at the event) and those below it, then for each
    recorded step after the event the eligible weights below the line (``shed_count``), those newly
    below (``shed_events``) and those back above (``recover_events``). Expects one prune event and
    a snapshot at every step after it (record every 1)."""
    mag = np.asarray(group["magnitude"][:], dtype=np.float32)
    mask = np.asarray(group["mask"][0]).astype(bool)
    line = float(group["event_line"][0])
    layer_of = np.asarray(group["weight_layer"][:])
    n_layers = len(group["layer"][:])

    def per_layer(flags: np.ndarray) -> np.ndarray:
        return np.bincount(layer_of[flags], minlength=n_layers)

    eligible = mask & (mag[0] >= line)
    out = {"event_eligible": per_layer(eligible), "event_below": per_layer(mask & (mag[0] < line))}
    rows: dict[str, list[np.ndarray]] = {var: [] for var in PER_STEP}
    prev = np.zeros_like(eligible)
    for k in range(1, mag.shape[0]):
        now = eligible & (mag[k] < line)
        for flags, var in zip((now, now & ~prev, prev & ~now), PER_STEP, strict=True):
            rows[var].append(per_layer(flags))
        prev = now
    for var in PER_STEP:
        out[var] = np.stack(rows[var]) if rows[var] else np.zeros((0, n_layers), dtype=np.int64)
    return out


def recount_mismatches(group: Any) -> list[str]:
    """The store's counts that differ from :func:`numpy_recount`, one line each (empty: all
    equal)."""
    problems = []
    for var, expect in numpy_recount(group).items():
        got = np.asarray(group[var][0] if var.startswith("event_") else group[var][: len(expect)])
        if got.shape != expect.shape:
            problems.append(f"{var}: shape {got.shape}, numpy's recount has {expect.shape}")
        elif not np.array_equal(got, expect):
            bad = np.argwhere(got != expect)
            at = tuple(int(i) for i in bad[0])
            problems.append(
                f"{var}: {len(bad)} entries differ from numpy's recount, first at {at}: "
                f"stored {got[at]}, numpy {expect[at]}"
            )
    return problems


def check_store(path: Path, device: str | None = None) -> list[str]:
    """What is wrong with the recorded store at ``path``, one line each (empty: it passes).
    ``device``: the kind of device (cpu, cuda) the run must have been recorded on."""
    import zarr

    g = zarr.open_group(str(path), mode="r")
    attrs = g.attrs.asdict()
    problems = []
    if attrs.get("status") != "complete":
        problems.append(f"status is {attrs.get('status')!r}, not 'complete'")
    if device and not str(attrs.get("device", "")).startswith(device):
        problems.append(f"recorded on {attrs.get('device')!r}, not on {device}")
    if len(g["event"][:]) != 1:
        problems.append(f"{len(g['event'][:])} prune events: the recount expects one")
        return problems
    record_step, step = np.asarray(g["record_step"][:]), np.asarray(g["step"][:])
    if len(step) == 0 or not (
        np.array_equal(record_step, np.arange(len(step) + 1))
        and np.array_equal(step, np.arange(1, len(step) + 1))
    ):
        problems.append(
            "the recount needs a snapshot at every step (record every 1) and at least one step"
        )
        return problems
    if attrs.get("last_committed_step") != int(step[-1]):
        problems.append(
            f"last_committed_step is {attrs.get('last_committed_step')}, the last step {step[-1]}"
        )
    mag = np.asarray(g["magnitude"][:], dtype=np.float32)
    if not np.isfinite(mag).all() or (mag < 0).any():
        problems.append("magnitudes are not all finite and non-negative")
    problems += recount_mismatches(g)
    if (
        "magnitude_hist" in g
    ):  # the device's histogram: every non-zero weight in one bin of its layer
        hist_step = np.asarray(g["hist_step"][:])
        rows = np.searchsorted(record_step, hist_step)
        if not np.array_equal(record_step[np.minimum(rows, len(record_step) - 1)], hist_step):
            problems.append("histogram steps are not all snapshot steps")
        else:
            layer_of = np.asarray(g["weight_layer"][:])
            n_layers = len(g["layer"][:])
            expect = np.stack([np.bincount(layer_of[mag[r] > 0], minlength=n_layers) for r in rows])
            got = np.asarray(g["magnitude_hist"][:]).sum(axis=2)
            if not np.array_equal(got, expect):
                problems.append(
                    "magnitude_hist does not hold every non-zero weight once in its layer's bins"
                )
    for var in ("loss", "train_loss", "test_loss"):
        values = np.asarray(g[var][:], dtype=np.float64)
        if len(values) == 0 or not np.isfinite(values).all():
            problems.append(f"{var} is empty or not all finite")
    return problems


def _unpack(path: Path, into: Path) -> Path:
    """The one ``*.zarr`` folder inside the tarball at ``path``, unpacked under ``into``."""
    with tarfile.open(path) as tar:
        tar.extractall(into, filter="data")
    stores = [p for p in into.rglob("*.zarr") if p.is_dir()]
    if len(stores) != 1:
        raise ValueError(f"{path} holds {len(stores)} .zarr stores, not one")
    return stores[0]


def verify(path: Path, device: str | None) -> int:
    """Check the store at ``path`` (a tarball or a .zarr folder); print OK or each problem; 0 when
    it passes."""
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        try:
            store = path if path.is_dir() else _unpack(path, Path(tmp))
            problems = check_store(store, device)
        except Exception as e:  # noqa: BLE001 - an unreadable store fails the check, with the reason
            traceback.print_exc()
            problems = [f"cannot read {path}: {type(e).__name__}: {e}"]
        if problems:
            for p in problems:
                print(f"verify: FAIL: {p}")
            return 1
        import zarr

        g = zarr.open_group(str(store), mode="r")
        loss = np.asarray(g["loss"][:])
        print(
            f"verify: OK: {path.name}: recorded on {g.attrs['device']}, {len(g['step'][:])} steps, "
            f"{g['magnitude'].shape[1]} weights, {len(g['layer'][:])} layers; "
            "shed counts equal numpy's recount; "
            f"loss {loss[0]:.4f} -> {loss[-1]:.4f}"
        )
    return 0


def report(path: Path) -> int:
    """Print the target rows of a benchmark JSON against their targets; 1 when a row is missing."""
    data = json.loads(path.read_text())
    values = {(r["case"], r["what"]): r["value"] for r in data["rows"]}
    labels = {r["case"]: r["label"] for r in data["rows"]}
    gpu = data["device"].startswith("cuda")
    print(
        f"targets on {data['device_name']} ({data['device']}, median of {data['repeats']} repeats)"
        + ("" if gpu else ": not compared, the targets are for H100/H200")
    )
    print(f"{'case':<40}  {'row':<42}  {'wall':>6}  {'own':>6}  {'target':>6}  verdict")
    missing = 0
    for case, what, target in TARGETS:
        wall = values.get((case, what))
        own = values.get((case, what.replace(": wall", ": own")))
        if wall is None:
            missing += 1
            verdict = "NOT MEASURED"
        else:
            verdict = ("meets" if wall <= target else "MISSES") if gpu else "-"
        fmt = lambda v: "-" if v is None or not math.isfinite(v) else f"{v:.3f}"  # noqa: E731
        print(
            f"{labels.get(case, case):<40}  {what.removesuffix(': wall'):<42}  "
            f"{fmt(wall):>6}  {fmt(own):>6}  "
            f"{target:6.2f}  {verdict}"
        )
    return 1 if missing else 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run one subcommand; returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("env", help="what this machine has; fails when the check cannot run")
    p.add_argument("--device", default="cpu")
    p = sub.add_parser("verify", help="check a recorded store (tarball or .zarr folder)")
    p.add_argument("path", type=Path)
    p.add_argument(
        "--device", default=None, help="the device kind it must have been recorded on (cpu, cuda)"
    )
    p = sub.add_parser("report", help="the benchmark's target rows against their targets")
    p.add_argument("path", type=Path)
    args = ap.parse_args(argv)
    if args.command == "env":
        return env(args.device)
    if args.command == "verify":
        if not args.path.exists():
            ap.error(f"{args.path} does not exist")
        return verify(args.path, args.device)
    return report(args.path)


if __name__ == "__main__":
    sys.exit(main())
