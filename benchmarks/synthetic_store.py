"""Synthetic run stores of any size: valid ``shedding`` stores filled with a random walk, not
trained.

``synthesize(path, n_weights, n_snapshots)`` creates the store with :meth:`RunStore.create` (the
same arrays, chunks, codecs and attributes as a recorded run: one GMP event at step 0 followed by
``n_snapshots`` retraining steps, every step recorded) and fills it chunk by chunk:

* start magnitudes |w| ~ lognormal; event 0 is a global-magnitude prune of exactly half of them
  (``mask``); ``pre_prune_magnitude`` holds the start magnitudes and ``event_tau`` = ``event_line``
  the GMP cut value (midpoint between the largest pruned and the smallest kept magnitude, as
  ``gmp_threshold``);
* ``magnitude`` is a multiplicative random walk from the post-prune magnitudes with a downward
  drift, so some survivors cross the line (and some cross back); pruned weights stay exactly 0;
* the per-step counts (``shed_count``, ``shed_events``, ``recover_events``) and the event tables are
  the exact counts of those magnitudes (what the recorder's counter would have written), so analyses
  that recount from ``magnitude`` agree with them; ``loss``, ``lr`` and the epoch metrics are simple
  curves.

Memory is bounded by the Zarr chunk, not by the store: the magnitudes are generated one weight-chunk
column at a time, walking through the steps one chunk of rows at a time, and each block is written
as one whole chunk. Besides that block (and a few boolean blocks of its shape) only one snapshot's
worth of per-weight state is held: the start magnitudes and the mask, ``n_weights * 5`` bytes
(plus, while the GMP cut is found, one int64 index per weight). ``ChunkWriter`` (whose buffer spans
every weight of ``chunk_steps`` rows) writes the per-step arrays; ``magnitude`` is written with
chunk-aligned assignments, each covering exactly one chunk, so no chunk is ever written partially or
read back either.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np

from shedding.recording.layout import Layer, Timeline, build_layers, build_timeline
from shedding.recording.store import RunStore

SPARSITY = 0.5  # fraction pruned by the synthetic GMP event
ALPHA = 1.0  # shed line = ALPHA * tau
START_MEDIAN = 0.02  # median |w| at the start
START_SIGMA = 0.8  # log-space spread of the start magnitudes
DRIFT_TOTAL = -0.4  # mean change of log|w| over the whole run (weight decay pulling survivors down)
NOISE_TOTAL = 0.3  # std of the change of log|w| over the whole run (random-walk noise)


def _shape(size: int, conv: bool) -> tuple[int, ...]:
    """A plausible tensor shape with ``size`` elements: (out, in, 3, 3) for conv layers, else (out,
    in)."""
    if conv and size % 9 == 0:
        return (*_shape(size // 9, False), 3, 3)
    a = 1
    for d in range(1, math.isqrt(size) + 1):
        if size % d == 0:
            a = d
    return (size // a, a)


def synthetic_layers(n_weights: int, layers: int = 8) -> list[Layer]:
    """``layers`` tensors (fewer if there are fewer weights) whose sizes sum to ``n_weights``.

    Sizes follow a CNN's profile, small at both ends and large in the middle (relative sizes
    1, 2, 4, ..., 4, 2, 1); the last tensor is a fully connected one.
    """
    if n_weights < 1:
        raise ValueError("n_weights must be positive")
    n_l = max(1, min(layers, n_weights))
    rel = np.array([2.0 ** min(i, n_l - 1 - i) for i in range(n_l)])
    bounds = np.floor(np.cumsum(rel) / rel.sum() * n_weights).astype(np.int64)
    bounds[-1] = n_weights
    for i in range(n_l):  # every layer gets at least one weight
        lo = (bounds[i - 1] if i else 0) + 1
        bounds[i] = min(max(bounds[i], lo), n_weights - (n_l - 1 - i))
    sizes = np.diff(np.concatenate([[0], bounds]))
    named = [
        (f"conv{i + 1}.weight" if i < n_l - 1 else "fc.weight", _shape(int(s), i < n_l - 1))
        for i, s in enumerate(sizes)
    ]
    return build_layers(named)


def _gmp(start: np.ndarray) -> tuple[np.ndarray, float]:
    """Keep mask pruning exactly ``round(SPARSITY * n)`` smallest magnitudes, and the cut value
    tau."""
    n = len(start)
    k = int(round(SPARSITY * n))
    mask = np.ones(n, dtype=bool)
    if k <= 0:
        return mask, float(start.min()) / 2.0
    if k >= n:
        mask[:] = False
        return mask, float(start.max())
    order = np.argpartition(start, k - 1)
    mask[order[:k]] = False
    tau = (float(start[order[:k]].max()) + float(start[order[k:]].min())) / 2.0
    return mask, tau


def _segments(layers: list[Layer], c0: int, c1: int) -> tuple[np.ndarray, np.ndarray]:
    """For weight columns [c0, c1): local start offset and layer index of each layer piece
    inside."""
    starts = np.array([layer.start for layer in layers])
    ends = starts + np.array([layer.size for layer in layers])
    ids = np.flatnonzero((ends > c0) & (starts < c1))
    return np.maximum(starts[ids], c0) - c0, ids


def _attrs(
    n_weights: int, n_snapshots: int, n_l: int, chunk_steps: int, dtype: str, seed: int, ipe: int
) -> dict:
    """The run attributes of a synthetic store (its parameters under ``config.synthetic``)."""
    synthetic = {
        "n_weights": n_weights,
        "n_snapshots": n_snapshots,
        "layers": n_l,
        "chunk_steps": chunk_steps,
        "dtype": dtype,
        "seed": seed,
        "sparsity": SPARSITY,
        "start_median": START_MEDIAN,
        "start_sigma": START_SIGMA,
        "drift_total": DRIFT_TOTAL,
        "noise_total": NOISE_TOTAL,
    }
    return {
        "config": {"synthetic": synthetic},
        "synthetic": True,
        "seed": seed,
        "versions": {},
        "device": "none",
        "iterations_per_epoch": ipe,
        "T": n_snapshots,
        "t": n_snapshots,
        "rounds": 1,
        "method": "gmp",
        "technique": "synthetic",
        "control": False,
        "alpha": ALPHA,
        "dataset": "synthetic",
        "model": "synthetic",
        "schedule_offset": None,
        "shed_definition": "a survivor at or above the line alpha*tau at its event is shed at "
        "step s while |w(s)| < alpha*tau; tau is the GMP cut value at the event's sparsity",
    }


def synthesize(
    path: str | Path,
    n_weights: int,
    n_snapshots: int,
    layers: int = 8,
    chunk_steps: int = 64,
    dtype: str = "float32",
    seed: int = 0,
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Create and fill a complete synthetic run store at ``path``; return the path.

    ``n_snapshots`` retraining steps after one GMP event at step 0, every step recorded, so
    ``magnitude`` has ``n_snapshots + 1`` rows of ``n_weights`` values (``dtype``: float32 or
    float16).
    """
    path = Path(path)
    if n_snapshots < 1:
        raise ValueError("n_snapshots must be at least 1")
    lay = synthetic_layers(n_weights, layers)
    ipe = max(1, n_snapshots // 4)
    tl = build_timeline(
        T=n_snapshots,
        t=n_snapshots,
        rounds=1,
        every=1,
        iterations_per_epoch=ipe,
        record_pretrain=False,
    )
    attrs = _attrs(n_weights, n_snapshots, len(lay), chunk_steps, dtype, seed, ipe)
    started = time.time()
    store = RunStore.create(path, lay, tl, attrs, dtype, chunk_steps, overwrite=overwrite)
    try:
        _fill(store, lay, tl, n_weights, n_snapshots, np.dtype(dtype), seed, progress)
    except BaseException as e:
        store.set_attrs(status="failed", error=f"{type(e).__name__}: {e}".splitlines()[0])
        store.release()
        raise
    store.set_attrs(
        status="complete",
        last_committed_step=int(tl.steps[-1]),
        final_test_accuracy=float("nan"),
        seconds=time.time() - started,
        finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )
    store.release()
    return path


def _start_magnitudes(n_w: int, wchunk: int, seed: int) -> np.ndarray:
    """Lognormal start magnitudes, generated per column block (no float64 temporary of
    n_weights)."""
    start = np.empty(n_w, dtype=np.float32)
    for b, c0 in enumerate(range(0, n_w, wchunk)):
        c1 = min(c0 + wchunk, n_w)
        z = np.random.default_rng([seed, 0, b]).standard_normal(c1 - c0, dtype=np.float32)
        start[c0:c1] = np.exp(np.float32(math.log(START_MEDIAN)) + np.float32(START_SIGMA) * z)
    return start


class _Tally:
    """The exact counts of the stored magnitudes, accumulated one block at a time: per step
    (1..n_s) and layer the shed weights, shed events and recover events; per layer the event's
    eligible survivors and the survivors below the line."""

    def __init__(self, n_s: int, n_l: int, line: float) -> None:
        self.line = line
        self.shed = np.zeros((n_s, n_l), dtype=np.int64)
        self.down = np.zeros((n_s, n_l), dtype=np.int64)
        self.up = np.zeros((n_s, n_l), dtype=np.int64)
        self.eligible = np.zeros(n_l, dtype=np.int64)
        self.below0 = np.zeros(n_l, dtype=np.int64)
        self._elig = self._prev = np.zeros(0, dtype=bool)

    def add(
        self, block: np.ndarray, keep: np.ndarray, a: int, seg: np.ndarray, seg_layer: np.ndarray
    ) -> None:
        """Count rows [a, a + len(block)) of one weight-chunk column (``a`` 0 starts a column)."""
        line = self.line
        if a == 0:  # the event's eligible set, from the stored step-0 values as analyses see them
            self._elig = keep & (block[0] >= line)
            self._prev = np.zeros(block.shape[1], dtype=bool)
            self.eligible[seg_layer] += np.add.reduceat(self._elig, seg, dtype=np.int64)
            self.below0[seg_layer] += np.add.reduceat(keep & ~self._elig, seg, dtype=np.int64)
        below = self._elig & (block < line)
        before = np.concatenate([self._prev[None], below[:-1]])
        self._prev = below[-1].copy()
        lo = max(a, 1)  # step 0 has no per-step row
        rows = slice(lo - 1, a + len(block) - 1)
        for out, flags in (
            (self.shed, below),
            (self.down, below & ~before),
            (self.up, before & ~below),
        ):
            out[rows, seg_layer] += np.add.reduceat(flags[lo - a :], seg, axis=1, dtype=np.int64)


def _walk(
    rng: np.random.Generator,
    logm: np.ndarray,
    n_rows: int,
    sigma: float,
    drift: float,
    start: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """The next ``n_rows`` steps of the random walk of log|w| from ``logm`` (the last row so far):
    (magnitudes, new last row of log|w|). ``start`` (first rows only): the post-prune magnitudes,
    stored exactly as row 0."""
    buf = rng.standard_normal((n_rows, len(logm)), dtype=np.float32)
    buf *= np.float32(sigma)
    buf += np.float32(drift)
    if start is not None:
        buf[0] = 0.0  # step 0: the post-prune start itself
    np.cumsum(buf, axis=0, out=buf)
    buf += logm
    logm = buf[-1].copy()
    np.exp(buf, out=buf)
    if start is not None:
        buf[0] = start  # exactly, not exp(log(.))
    return buf, logm


def _print_progress(name: str, done: float, t0: float, gigabytes: float) -> None:
    """One progress line on standard error, overwriting the previous one."""
    eta = (time.perf_counter() - t0) * (1 - done) / done
    print(
        f"\rsynthesizing {name}: {done:6.1%} of {gigabytes:.2f} GB, {eta:5.0f} s left",
        end="",
        file=sys.stderr,
        flush=True,
    )


def _write_magnitudes(
    store: RunStore,
    lay: list[Layer],
    start: np.ndarray,
    mask: np.ndarray,
    tally: _Tally,
    dtype: np.dtype,
    seed: int,
    progress: bool,
) -> None:
    """Write ``magnitude`` one whole chunk at a time (weight-chunk columns, then row chunks),
    counting every block into ``tally``."""
    arr = store.group["magnitude"]
    n_r, n_w = arr.shape  # n_s + 1 snapshots: steps 0..n_s
    n_s = n_r - 1
    rchunk, wchunk = arr.chunks
    drift = DRIFT_TOTAL / n_s
    sigma = NOISE_TOTAL / math.sqrt(n_s)
    n_blocks = -(-n_w // wchunk)
    t0 = time.perf_counter()
    for b, c0 in enumerate(range(0, n_w, wchunk)):
        c1 = min(c0 + wchunk, n_w)
        seg, seg_layer = _segments(lay, c0, c1)
        keep = mask[c0:c1]
        logm = np.log(start[c0:c1])
        rng = np.random.default_rng([seed, 1, b])
        for a in range(0, n_r, rchunk):
            e = min(a + rchunk, n_r)
            buf, logm = _walk(rng, logm, e - a, sigma, drift, start[c0:c1] if a == 0 else None)
            buf *= keep
            block = buf.astype(dtype, copy=False)
            # exactly one chunk (the edge chunks: all of their in-bounds part)
            arr[a:e, c0:c1] = block
            tally.add(block, keep, a, seg, seg_layer)
            del buf, block
            if progress:
                gigabytes = n_r * n_w * dtype.itemsize / 1e9
                _print_progress(store.path.name, (b + e / n_r) / n_blocks, t0, gigabytes)
    if progress:
        print(file=sys.stderr)


def _write_step_arrays(store: RunStore, n_s: int, seed: int, tally: _Tally) -> None:
    """The per-step arrays, through the whole-chunk writer: loss and lr curves and the counts."""
    steps = np.arange(1, n_s + 1)
    x = steps / n_s
    rng = np.random.default_rng([seed, 2])
    loss = 0.3 + 1.2 * np.exp(-4 * x) + 0.05 * rng.standard_normal(n_s)
    lr = 0.05 * 0.5 * (1 + np.cos(np.pi * (steps - 1) / n_s))  # cosine over the round
    for name, values in (
        ("loss", loss.clip(0.01).astype(np.float32)),
        ("lr", lr),
        ("shed_count", tally.shed),
        ("shed_events", tally.down),
        ("recover_events", tally.up),
    ):
        w = store.writer(name)
        w.append(values.astype(w.array.dtype))
        w.flush()


def _write_tables(
    store: RunStore, lay: list[Layer], tl: Timeline, mask: np.ndarray, tau: float, tally: _Tally
) -> None:
    """The event tables (exact counts) and simple epoch metric curves."""
    sizes = np.array([layer.size for layer in lay])
    survivors = np.add.reduceat(mask, [layer.start for layer in lay], dtype=np.int64)
    n_ep = len(tl.epoch)
    ep_x = np.arange(1, n_ep + 1) / max(n_ep, 1)
    tables = {
        "event_round": np.array([0], dtype=np.int16),
        "event_sparsity": np.array([1.0 - mask.sum() / len(mask)]),
        "event_tau": np.array([tau]),
        "event_line": np.array([tally.line]),
        "event_pruned": (sizes - survivors)[None],
        "event_survivors": survivors[None],
        "event_eligible": tally.eligible[None],
        "event_below": tally.below0[None],
        "event_test_accuracy": np.array([0.80]),
        "event_final_test_accuracy": np.array([0.90]),
        "train_accuracy": 0.85 + 0.1 * ep_x,
        "train_loss": 0.3 + 1.2 * np.exp(-4 * ep_x),
        "test_accuracy": 0.82 + 0.08 * ep_x,
        "test_loss": 0.35 + 1.2 * np.exp(-4 * ep_x),
    }
    for name, values in tables.items():
        store.write_whole(name, values)


def _fill(
    store: RunStore,
    lay: list[Layer],
    tl: Timeline,
    n_w: int,
    n_s: int,
    dtype: np.dtype,
    seed: int,
    progress: bool,
) -> None:
    """Write every array of a freshly created store, magnitudes one whole chunk at a time."""
    start = _start_magnitudes(n_w, store.group["magnitude"].chunks[1], seed)
    mask, tau = _gmp(start)
    store.write_rows("mask", 0, mask)
    store.write_rows("pre_prune_magnitude", 0, start)
    tally = _Tally(n_s, len(lay), ALPHA * tau)
    _write_magnitudes(store, lay, start, mask, tally, dtype, seed, progress)
    _write_step_arrays(store, n_s, seed, tally)
    _write_tables(store, lay, tl, mask, tau, tally)
