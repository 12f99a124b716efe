"""Analysis throughput and peak memory on a synthetic store, against a raw read and decompress of
it.

Run: ``python -m benchmarks.analysis_throughput [--gb 1] [--path DIR] [--keep] [--repeats 3]``.
Synthesises a run store with about ``--gb`` GB of magnitudes (uncompressed; random walk, not
trained; see :mod:`benchmarks.synthetic_store`) in a temporary folder, or reuses ``--path`` when it
holds one, then measures, each in a fresh Python process (so peak RSS of one measurement does not
mix with another's):

* ``raw``: every magnitude chunk read and decompressed with zarr directly and summed (so nothing is
  skipped), two ways: chunk-aligned row blocks ``arr[a:b]`` (zarr decodes a block's chunks
  concurrently) and one chunk at a time on as many threads as dask uses; the faster is the raw
  baseline, the cost any analysis of the store pays;
* ``dask read``: ``open_run(path).magnitude.sum()`` through xarray/dask: the same read, as analyses
  see it;
* ``shed_from_magnitude(open_run(path)).compute()`` and
  ``magnitude_histogram(open_run(path)).compute()``.

Throughput is uncompressed magnitude bytes per second of wall time (opening the store included).
Repeats are interleaved and each time is the median over them (the machine is shared and noisy);
ratios are to the raw read of the same run. Peak memory is the process's maximum RSS
(``getrusage``), shown against the store's uncompressed size: far below 1 means the analysis ran out
of core, bounded by chunks.
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
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RAW = ("raw row blocks", "raw chunks")
ANALYSES = ("shed_from_magnitude", "magnitude_histogram")
KINDS = (*RAW, "dask read", *ANALYSES)
N_WEIGHTS = 1 << 21  # 8 weight chunks of 2**18: a ~2M-weight model, 8 MiB per float32 snapshot
TARGET = 0.5  # analysis throughput / raw read the issue asks for


def _peak_rss() -> int:
    """Peak RSS of this process in bytes.

    ``VmHWM`` belongs to the process's own address space, created at ``exec``; ``ru_maxrss`` is the
    fallback but on Linux it starts from the *parent's* RSS at fork time, which would blur a child's
    measurement.
    """
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def _dask_threads() -> int:
    """The number of threads dask's threaded scheduler uses."""
    import dask
    import dask.system

    return dask.config.get("num_workers", None) or dask.system.CPU_COUNT


def _raw_row_blocks(path: Path) -> float:
    """Sum of the magnitudes read in chunk-aligned row blocks (zarr decodes a block's chunks
    concurrently)."""
    import zarr

    arr = zarr.open_array(str(path / "magnitude"), mode="r")
    step = arr.chunks[0]
    check = 0.0
    for a in range(0, arr.shape[0], step):
        check += float(arr[a : a + step].sum())
    return check


def _raw_chunks(path: Path) -> float:
    """Sum of the magnitudes read one chunk at a time per thread, as many threads as dask uses."""
    from concurrent.futures import ThreadPoolExecutor

    import zarr

    arr = zarr.open_array(str(path / "magnitude"), mode="r")
    (nr, nw), (cr, cw) = arr.shape, arr.chunks
    blocks = [
        (slice(a, a + cr), slice(c, c + cw)) for a in range(0, nr, cr) for c in range(0, nw, cw)
    ]
    with ThreadPoolExecutor(_dask_threads()) as pool:
        return sum(pool.map(lambda b: float(arr[b].sum()), blocks))


def _analysis(kind: str, path: Path, phases: dict[str, float], t0: float) -> float:
    """Open the store and run the dask read or an analysis; a checksum of the result. Phase
    times go into ``phases``."""
    from shedding.analysis import magnitude_histogram, open_run, shed_from_magnitude

    ds = open_run(path)
    phases["open_run"] = time.perf_counter() - t0
    if kind == "dask read":
        return float(ds.magnitude.sum().compute())
    if kind == "shed_from_magnitude":
        return float(shed_from_magnitude(ds).compute().shed_count.sum())
    if kind == "magnitude_histogram":
        t1 = time.perf_counter()
        h = magnitude_histogram(ds)  # computes the range (max, smallest non-zero): one full read
        phases["range pass"] = time.perf_counter() - t1
        t1 = time.perf_counter()
        check = float(h.compute().sum())
        phases["histogram pass"] = time.perf_counter() - t1
        return check
    raise ValueError(kind)


def _task_seconds(prof: Any) -> list[list]:
    """Summed task seconds by task-name prefix (over every thread): [name, tasks, seconds],
    busiest first."""
    tasks: dict[str, list[float]] = {}
    for r in prof.results:
        key = r.key[0] if isinstance(r.key, tuple) else r.key
        entry = tasks.setdefault(str(key).rsplit("-", 1)[0], [0, 0.0])
        entry[0] += 1
        entry[1] += r.end_time - r.start_time
    return sorted(([k, int(n), s] for k, (n, s) in tasks.items()), key=lambda x: -x[2])


def measure(kind: str, path: Path, profile: bool = False) -> dict:
    """Run one measurement in this process: its time (and phases), peak RSS and a checksum of the
    result."""
    import contextlib

    import dask

    base = _peak_rss()
    phases: dict[str, float] = {}
    prof = None
    if profile:
        from dask.diagnostics import Profiler

        prof = Profiler()
    t0 = time.perf_counter()
    with prof if prof is not None else contextlib.nullcontext():
        if kind == "raw row blocks":
            check = _raw_row_blocks(path)
        elif kind == "raw chunks":
            check = _raw_chunks(path)
        else:
            check = _analysis(kind, path, phases, t0)
    seconds = time.perf_counter() - t0
    out = {
        "kind": kind,
        "seconds": seconds,
        "phases": phases,
        "peak_rss": _peak_rss(),
        "base_rss": base,
        "check": check,
        "dask_threads": _dask_threads(),
        "scheduler": str(dask.config.get("scheduler", "threads (default)")),
    }
    if prof is not None:
        out["tasks"] = _task_seconds(prof)
    return out


def _in_subprocess(kind: str, path: Path, profile: bool = False) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.analysis_throughput",
        "--measure",
        kind,
        "--path",
        str(path),
    ]
    cmd += ["--profile"] if profile else []
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
        names = [
            ln.split(":", 1)[1].strip()
            for ln in open("/proc/cpuinfo")
            if ln.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"machine: {cpu}, {cores} cores, {ram / 2**30:.1f} GiB RAM, load average {load}; "
        f"python {platform.python_version()}, numpy {np.__version__}, zarr {zarr.__version__}, "
        f"xarray {xr.__version__}, dask {dask.__version__}"
    )


def _parser() -> argparse.ArgumentParser:
    """The command line options."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--gb",
        type=float,
        default=1.0,
        help="uncompressed magnitude size to synthesise, GB (1e9 B)",
    )
    ap.add_argument(
        "--path", type=Path, default=None, help="store to reuse, or where to synthesise it"
    )
    ap.add_argument("--keep", action="store_true", help="keep the synthesised store")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repeats; times are medians")
    ap.add_argument("--weights", type=int, default=N_WEIGHTS, help="weights per snapshot")
    ap.add_argument("--chunk-steps", type=int, default=64)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float16"])
    ap.add_argument(
        "--kinds",
        nargs="+",
        choices=KINDS,
        default=list(KINDS),
        metavar="KIND",
        help=f"measurements to run (default: all of {', '.join(KINDS)})",
    )
    ap.add_argument(
        "--profile",
        action="store_true",
        help="then run each analysis once more under dask's Profiler and print where task time "
        "goes",
    )
    ap.add_argument("--measure", choices=KINDS, help=argparse.SUPPRESS)  # internal: one measurement
    return ap


def _synthesise_unless_there(path: Path, args: argparse.Namespace) -> float | None:
    """Synthesise the store at ``path`` unless one is there; the seconds it took, or None."""
    from benchmarks.synthetic_store import synthesize

    if (path / "zarr.json").exists():
        return None
    itemsize = 2 if args.dtype == "float16" else 4
    n_snapshots = max(1, round(args.gb * 1e9 / (args.weights * itemsize)) - 1)
    t0 = time.perf_counter()
    synthesize(path, args.weights, n_snapshots, chunk_steps=args.chunk_steps, dtype=args.dtype)
    return time.perf_counter() - t0


def main() -> None:
    """Parse options, synthesise or reuse the store, measure every kind, print the table."""
    args = _parser().parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.path, args.profile)))
        return

    print(_machine())
    tmp = None
    path = args.path
    if path is None:
        tmp = Path(tempfile.mkdtemp(prefix="shedding-throughput-"))
        path = tmp / "synthetic.zarr"
    try:
        synth_s = _synthesise_unless_there(path, args)
        rows = run(path, args.repeats, synth_s, args.kinds)
        _print(rows)
        if args.profile:
            _profile(path)
    finally:
        if tmp is not None and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp is not None:
            print(f"kept: {path}")


def _speed_rows(
    kinds: list[str], results: dict[str, list[dict]], uncompressed: int
) -> list[tuple[str, str]]:
    """Per kind: median throughput, its ratio to the faster raw read (analyses: against the
    target) and median phase times."""
    secs = {k: statistics.median(r["seconds"] for r in v) for k, v in results.items()}
    raw = min((secs[k] for k in RAW if k in secs), default=float("nan"))
    rows: list[tuple[str, str]] = []
    for kind in kinds:
        mbs = uncompressed / secs[kind] / 1e6
        ratio = raw / secs[kind]
        rows.append((f"{kind}: throughput", f"{mbs:8.0f} MB/s  {secs[kind]:7.2f} s"))
        if raw != raw:  # no raw read measured: no ratios
            pass
        elif kind in ANALYSES:
            mark = f"  (target >= {TARGET}: {'met' if ratio >= TARGET else 'NOT met'})"
            rows.append((f"{kind}: throughput / raw", f"{ratio:8.3f}{mark}"))
        elif kind == "dask read":
            rows.append((f"{kind}: throughput / raw", f"{ratio:8.3f}"))
        phases = {
            p: statistics.median(r["phases"][p] for r in results[kind])
            for p in results[kind][0]["phases"]
        }
        if len(phases) > 1:
            rows.append((f"{kind}: phases", ", ".join(f"{p} {v:.2f} s" for p, v in phases.items())))
    return rows


def _memory_rows(
    kinds: list[str], results: dict[str, list[dict]], uncompressed: int
) -> list[tuple[str, str]]:
    """Per kind the peak RSS against the store's uncompressed size; then the store against the
    machine's RAM."""
    rows: list[tuple[str, str]] = []
    for kind in kinds:
        peak = max(r["peak_rss"] for r in results[kind])
        base = max(r["base_rss"] for r in results[kind])
        rows.append(
            (
                f"{kind}: peak RSS / uncompressed store",
                f"{peak / uncompressed:8.3f}  (peak {peak / 2**20:,.0f} MiB, after imports "
                f"{base / 2**20:,.0f} MiB; store {uncompressed / 2**20:,.0f} MiB)",
            )
        )
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    rows.append(
        (
            "uncompressed store / machine RAM",
            f"{uncompressed / ram:8.3f}  (numpy would hold the whole "
            "magnitude array, plus temporaries of its shape)",
        )
    )
    return rows


def run(
    path: Path, repeats: int, synth_s: float | None, kinds: list[str] | tuple[str, ...] = KINDS
) -> list[tuple[str, str]]:
    """Measure each of ``kinds`` ``repeats`` times, interleaved; the table's rows."""
    import zarr

    kinds = [k for k in KINDS if k in kinds]
    arr = zarr.open_array(str(path / "magnitude"), mode="r")
    uncompressed = arr.nbytes
    on_disk = _folder_bytes(path / "magnitude")
    print(
        f"store: {path}; magnitude {arr.shape[0]} snapshots x {arr.shape[1]:,} weights "
        f"{arr.dtype}, chunks {arr.chunks}; {uncompressed / 1e9:.2f} GB uncompressed, "
        f"{on_disk / 1e9:.2f} GB on disk (x{uncompressed / on_disk:.2f} compression)"
        + (f"; synthesised in {synth_s:.0f} s" if synth_s else "")
    )
    results: dict[str, list[dict]] = {k: [] for k in kinds}
    for _ in range(repeats):
        for kind in kinds:
            results[kind].append(_in_subprocess(kind, path))
    first = next(iter(results.values()))[0]
    print(
        f"dask scheduler: {first['scheduler']}, {first['dask_threads']} threads; "
        f"zarr async concurrency {zarr.config.get('async.concurrency')}; "
        f"median of {repeats} interleaved repeats, each in a fresh process; "
        "raw = the faster raw read"
    )
    return [
        *_speed_rows(kinds, results, uncompressed),
        *_memory_rows(kinds, results, uncompressed),
    ]


def _profile(path: Path) -> None:
    """Each analysis once more under dask's Profiler: summed task seconds by task name, busiest
    first."""
    for kind in ("dask read", *ANALYSES):
        r = _in_subprocess(kind, path, profile=True)
        total = sum(t[2] for t in r["tasks"])
        print(
            f"profile {kind}: {r['seconds']:.2f} s wall, {total:.2f} s of task time over "
            f"{r['dask_threads']} threads"
            + "".join(f"; {p} {v:.2f} s" for p, v in r["phases"].items())
        )
        for name, n, secs in r["tasks"][:6]:
            print(f"    {name[:56]:<56} {n:5d} tasks {secs:8.2f} s  {secs / total:6.1%}")
    _chunk_costs(path)


def _chunk_costs(path: Path) -> None:
    """Single-thread cost of one chunk: decompress, the shed test, and the histogram kernel and its
    steps."""
    import numpy as np
    import zarr

    from shedding.analysis.distribution import _block_hist

    arr = zarr.open_array(str(path / "magnitude"), mode="r")
    rows, cols = arr.chunks
    r0 = rows if arr.shape[0] > rows else 0  # a chunk away from step 0 when there is one

    def best(f):
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            out = f()
            times.append(time.perf_counter() - t0)
        return min(times) * 1e3, out

    ms_read, block = best(lambda: arr[r0 : r0 + rows, 0:cols])
    edges = np.linspace(-8, 0, 61)
    start, line = block[0], float(np.median(block[0][block[0] > 0]))
    keep = start > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log10(block.astype(np.float64))
        parts = {
            "decompress (zarr)": ms_read,
            "shed test (elig & mag < line).sum": best(
                lambda: ((keep & (start >= line)) & (block < line)).sum(1)
            )[0],
            "_block_hist (whole)": best(lambda: _block_hist(block, edges))[0],
            "  astype(float64) + log10": best(lambda: np.log10(block.astype(np.float64)))[0],
            "  searchsorted(edges, logs)": best(lambda: np.searchsorted(edges, logs, side="right"))[
                0
            ],
        }
    mb = block.nbytes / 1e6
    print(
        f"one chunk ({block.shape[0]} x {block.shape[1]:,}, {mb:.0f} MB), single thread, best of 3:"
    )
    for what, ms in parts.items():
        print(f"    {what:<42} {ms:8.0f} ms  {mb / ms * 1e3:7.0f} MB/s")


def _print(rows: list[tuple[str, str]]) -> None:
    width = max(len(r[0]) for r in rows)
    for what, value in rows:
        print(f"{what:<{width}}  {value}")


if __name__ == "__main__":
    main()
