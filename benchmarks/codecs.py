"""Which Zarr codec and chunk length to store magnitudes with: measured on real recorded magnitudes.

Run: ``python -m benchmarks.codecs [--source digits|resnet20] [--chunks 16 64]``. Records a short
run (every weight every step, float32): ``digits``, the embedded digits CNN retrained after 50% GMP
(133 snapshots x
30,496 weights), or ``resnet20``, ResNet-20 on CIFAR-shaped synthetic data after 50% GMP (65
snapshots x
270,896 weights). It then writes the magnitudes (as float32,
float16 and log8 codes) with each candidate codec and chunk length into a temporary folder and reads
them back, printing bytes per weight-step and write / read throughput (median of 3). The store's
choice (``SNAPSHOT_CODEC`` and
``TIME_MAJOR`` in :mod:`shedding.recording.store`, and the default ``--record-chunk-steps``) is the
one these tables supported; stores record it in ``codec_choice``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import zarr
from zarr.codecs import BloscCodec, TransposeCodec, ZstdCodec

from benchmarks.recording_overhead import _positive

T = [TransposeCodec(order=(1, 0))]  # each weight's steps side by side inside a chunk
CANDIDATES = {  # name: (filters, compressors)
    "zstd 0 (zarr default)": ([], [ZstdCodec(level=0)]),
    "zstd 1": ([], [ZstdCodec(level=1)]),
    "zstd 3": ([], [ZstdCodec(level=3)]),
    "transpose, zstd 1": (T, [ZstdCodec(level=1)]),
    "transpose, zstd 3": (T, [ZstdCodec(level=3)]),
    "transpose, blosc zstd 1 shuffle": (T, [BloscCodec(cname="zstd", clevel=1, shuffle="shuffle")]),
    "blosc zstd 3 shuffle": ([], [BloscCodec(cname="zstd", clevel=3, shuffle="shuffle")]),
    "blosc zstd 3 bitshuffle": ([], [BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle")]),
    "blosc lz4 5 bitshuffle": ([], [BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle")]),
}


def _digits(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """(magnitudes float32 of a real digits retraining, layer of each weight)."""
    from shedding.analysis import open_run
    from shedding.config import RunConfig
    from shedding.experiment import record

    cfg = RunConfig()
    cfg.train.duration, cfg.retrain.duration = "11ep", "11ep"
    cfg.prune.sparsity = 0.5
    cfg.record.every = 1
    ds = open_run(record(cfg, folder / "run.zarr", cache_dir=folder / "cache"))
    return np.asarray(ds.magnitude.values), np.asarray(ds.weight_layer.values)


def _resnet20(folder: Path, steps: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(magnitudes float32 of 64 ResNet-20 steps after 50% GMP, layer of each weight), as the
    overhead benchmark."""
    from benchmarks.recording_overhead import _run, _setup, _variant

    model, params, masks, weights, loader = _setup(
        "resnet20", (3, 32, 32), torch.device("cpu"), 128, steps
    )
    rec = _variant(
        "full every step, float32", folder, params, masks, weights, steps, torch.device("cpu")
    )
    _run(model, params, masks, loader, steps, [rec])
    rec.close("complete")
    group = zarr.open_group(str(folder / "run.zarr"), mode="r")
    return np.asarray(group["magnitude"][:]), np.asarray(group["weight_layer"][:])


def _encodings(mag: np.ndarray, layers: np.ndarray) -> dict[str, np.ndarray]:
    from shedding.recording.encoding import encode_log8

    t = torch.from_numpy(layers.astype(np.int64))
    codes = np.stack(
        [encode_log8(torch.from_numpy(row), t, int(layers.max()) + 1)[0].numpy() for row in mag]
    )
    return {"float32": mag.astype(np.float32), "float16": mag.astype(np.float16), "log8": codes}


def _measure(
    data: np.ndarray, codecs: tuple[list, list], chunk_steps: int, folder: Path, repeats: int = 3
) -> tuple[float, float, float]:
    """(bytes per weight-step, write MB/s, read MB/s) of ``data`` stored with ``codecs`` (filters,
    compressors)."""
    writes, reads, size = [], [], 0
    filters, compressors = codecs
    for r in range(repeats):
        path = folder / f"c{r}.zarr"
        t0 = time.perf_counter()
        arr = zarr.create_array(
            str(path),
            shape=data.shape,
            chunks=(chunk_steps, data.shape[1]),
            dtype=data.dtype,
            filters=filters,
            compressors=compressors,
            fill_value=0,
        )
        if hasattr(
            arr, "with_config"
        ):  # zarr >= 3.1: skip the all-fill-value check, as the store's writers do
            arr = arr.with_config({"write_empty_chunks": True})
        for i in range(0, data.shape[0], chunk_steps):
            arr[i : i + chunk_steps] = data[i : i + chunk_steps]
        writes.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        np.asarray(zarr.open_array(str(path), mode="r")[:]).sum(dtype=np.float64)
        reads.append(time.perf_counter() - t0)
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        shutil.rmtree(path)
    mb = data.nbytes / 1e6
    return size / data.size, mb / statistics.median(writes), mb / statistics.median(reads)


def main() -> None:
    """Measure every codec and chunk length; print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--source", choices=["digits", "resnet20"], default="digits", help="the run to record"
    )
    ap.add_argument(
        "--chunks", type=_positive, nargs="+", default=[16, 64], help="snapshots per chunk to try"
    )
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="shedding-codecs-"))
    try:
        mag, layers = (_digits if args.source == "digits" else _resnet20)(folder)
        print(
            f"{mag.shape[0]} snapshots x {mag.shape[1]:,} weights of a {args.source} run "
            "(50% pruned), median of 3"
        )
        print(
            f"{'encoding':8} {'codec':32} {'chunk':>5} {'B/weight-step':>13} "
            f"{'write MB/s':>11} {'read MB/s':>10}"
        )
        for enc, data in _encodings(mag, layers).items():
            for name, codecs in CANDIDATES.items():
                for chunk_steps in args.chunks:
                    b, w, r = _measure(data, codecs, chunk_steps, folder)
                    print(
                        f"{enc:8} {name:32} {chunk_steps:>5} {b:>13.3f} {w:>11.0f} {r:>10.0f}",
                        flush=True,
                    )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
