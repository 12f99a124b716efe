"""Analysis throughput and peak memory on a synthetic store, against a raw read and decompress of it.

Run: ``python -m benchmarks.analysis_throughput [--gb 1] [--path DIR] [--keep] [--repeats 3]``.
Synthesises a run store with about ``--gb`` GB of magnitudes (uncompressed; random walk, not trained; see
:mod:`benchmarks.synthetic_store`) in a temporary folder, or reuses ``--path`` when it holds one, then
measures, each in a fresh Python process (so peak RSS of one measurement does not mix with another's):

* ``raw``: every magnitude chunk read and decompressed with zarr directly (chunk-aligned row blocks
  ``arr[a:b]``, each summed so nothing is skipped): the floor any analysis of the store pays;
* ``dask read``: ``open_run(path).magnitude.sum()`` through xarray/dask: the same read, as analyses see it;
* ``shed_from_magnitude(open_run(path)).compute()`` and ``magnitude_histogram(open_run(path)).compute()``.

Throughput is uncompressed magnitude bytes per second of wall time (opening the store included). Repeats
are interleaved and each time is the median over them (the machine is shared and noisy); ratios are to
the raw read of the same run. Peak memory is the process's maximum RSS (``getrusage``), shown against the
store's uncompressed size: far below 1 means the analysis ran out of core, bounded by chunks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("raw", "dask read", "shed_from_magnitude", "magnitude_histogram")
N_WEIGHTS = 1 << 21  # 8 weight chunks of 2**18: a ~2M-weight model, 8 MiB per float32 snapshot
TARGET = 0.5  # analysis throughput / raw read the issue asks for


def _rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def measure(kind: str, path: Path) -> dict:
    """Run one measurement in this process; its time, peak RSS and a checksum of the result."""
    import dask
    import dask.system
    import zarr

    from analysis import magnitude_histogram, open_run, shed_from_magnitude

    base = _rss_bytes()
    t0 = time.perf_counter()
    if kind == "raw":
        arr = zarr.open_array(str(path / "magnitude"), mode="r")
        step = arr.chunks[0]
        check = 0.0
        for a in range(0, arr.shape[0], step):
            check += float(arr[a : a + step].sum())
    elif kind == "dask read":
        check = float(open_run(path).magnitude.sum().compute())
    elif kind == "shed_from_magnitude":
        check = float(shed_from_magnitude(open_run(path)).compute().shed_count.sum())
    elif kind == "magnitude_histogram":
        check = float(magnitude_histogram(open_run(path)).compute().sum())
    else:
        raise ValueError(kind)
    seconds = time.perf_counter() - t0
    return {"kind": kind, "seconds": seconds, "peak_rss": _rss_bytes(), "base_rss": base, "check": check,
            "dask_threads": dask.config.get("num_workers", None) or dask.system.CPU_COUNT,
            "scheduler": str(dask.config.get("scheduler", "threads (default)"))}


def _in_subprocess(kind: str, path: Path) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.analysis_throughput", "--measure", kind, "--path", str(path)]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{kind} measurement failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _machine() -> str:
    import dask
    import numpy as np
    import xarray as xr
    import zarr

    cpu = platform.processor() or platform.machine()
    try:
        names = [ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"machine: {cpu}, {cores} cores, {ram / 2**30:.1f} GiB RAM, load average {load}; "
            f"python {platform.python_version()}, numpy {np.__version__}, zarr {zarr.__version__}, "
            f"xarray {xr.__version__}, dask {dask.__version__}")


def main() -> None:
    """Parse options, synthesise or reuse the store, measure every kind, print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gb", type=float, default=1.0, help="uncompressed magnitude size to synthesise, GB (1e9 B)")
    ap.add_argument("--path", type=Path, default=None, help="store to reuse, or where to synthesise it")
    ap.add_argument("--keep", action="store_true", help="keep the synthesised store")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repeats; times are medians")
    ap.add_argument("--weights", type=int, default=N_WEIGHTS, help="weights per snapshot")
    ap.add_argument("--chunk-steps", type=int, default=64)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float16"])
    ap.add_argument("--measure", choices=KINDS, help=argparse.SUPPRESS)  # internal: one measurement
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.path)))
        return

    from benchmarks.synthetic_store import synthesize

    print(_machine())
    tmp = None
    path = args.path
    if path is None:
        tmp = Path(tempfile.mkdtemp(prefix="shedding-throughput-"))
        path = tmp / "synthetic.zarr"
    synth_s = None
    try:
        if not (path / "zarr.json").exists():
            itemsize = 2 if args.dtype == "float16" else 4
            n_snapshots = max(1, round(args.gb * 1e9 / (args.weights * itemsize)) - 1)
            t0 = time.perf_counter()
            synthesize(path, args.weights, n_snapshots, chunk_steps=args.chunk_steps, dtype=args.dtype)
            synth_s = time.perf_counter() - t0
        rows = run(path, args.repeats, synth_s)
    finally:
        if tmp is not None and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp is not None:
            print(f"kept: {path}")
    _print(rows)


def run(path: Path, repeats: int, synth_s: float | None) -> list[tuple[str, str]]:
    """Measure every kind ``repeats`` times, interleaved; the table's rows."""
    import zarr

    arr = zarr.open_array(str(path / "magnitude"), mode="r")
    uncompressed = arr.nbytes
    on_disk = _folder_bytes(path / "magnitude")
    results: dict[str, list[dict]] = {k: [] for k in KINDS}
    for _ in range(repeats):
        for kind in KINDS:
            results[kind].append(_in_subprocess(kind, path))
    first = results["shed_from_magnitude"][0]
    print(f"store: {path}; magnitude {arr.shape[0]} snapshots x {arr.shape[1]:,} weights {arr.dtype}, "
          f"chunks {arr.chunks}; {uncompressed / 1e9:.2f} GB uncompressed, {on_disk / 1e9:.2f} GB on disk "
          f"(x{uncompressed / on_disk:.2f} compression)" + (f"; synthesised in {synth_s:.0f} s" if synth_s else ""))
    print(f"dask scheduler: {first['scheduler']}, {first['dask_threads']} threads; "
          f"zarr async concurrency {zarr.config.get('async.concurrency')}; "
          f"median of {repeats} interleaved repeats, each in a fresh process")
    secs = {k: statistics.median(r["seconds"] for r in v) for k, v in results.items()}
    raw = secs["raw"]
    rows: list[tuple[str, str]] = []
    for kind in KINDS:
        mbs = uncompressed / secs[kind] / 1e6
        ratio = raw / secs[kind]
        mark = "" if kind in ("raw", "dask read") else ("  (target >= 0.5: met)" if ratio >= TARGET
                                                         else "  (target >= 0.5: NOT met)")
        rows.append((f"{kind}: throughput", f"{mbs:8.0f} MB/s  {secs[kind]:7.2f} s"))
        if kind != "raw":
            rows.append((f"{kind}: throughput / raw", f"{ratio:8.3f}{mark}"))
    for kind in KINDS:
        peak = max(r["peak_rss"] for r in results[kind])
        base = max(r["base_rss"] for r in results[kind])
        rows.append((f"{kind}: peak RSS / uncompressed store",
                     f"{peak / uncompressed:8.3f}  (peak {peak / 2**20:,.0f} MiB, after imports "
                     f"{base / 2**20:,.0f} MiB; store {uncompressed / 2**20:,.0f} MiB)"))
    return rows


def _print(rows: list[tuple[str, str]]) -> None:
    width = max(len(r[0]) for r in rows)
    for what, value in rows:
        print(f"{what:<{width}}  {value}")


if __name__ == "__main__":
    main()
