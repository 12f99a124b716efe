"""The periodic probes: magnitude snapshots, per-layer histograms and sampled trajectories.

Each probe records the flat magnitudes at its own steps of the timeline. Its rows are staged on the
device (copied, cast to the store's dtype) and handed to the writer thread a block at a time
(:class:`Handover`): once their chunk is complete, the recording is done, or they pass
``STAGE_BYTES``. The writers' own positions belong to the writer thread; ``next`` counts the rows
the training thread has produced.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from shedding.recording.encoding import Log8Encoder
from shedding.recording.io_thread import IOThread
from shedding.recording.reductions import key_counts, key_dtype
from shedding.recording.store import ChunkWriter, RunStore

TORCH_DTYPES = {np.dtype(k): getattr(torch, k) for k in ("float32", "float16", "uint8", "int32")}
# rows of a periodic recording wait on the device until a chunk is full or they reach this
STAGE_BYTES = 4 << 20


class Handover:
    """What every probe shares: the store, its writer thread and the training device."""

    def __init__(self, store: RunStore, io: IOThread | None, device: torch.device) -> None:
        self.store, self.device = store, device
        self.io = io  # None until the recorder starts its writer thread

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` in the writer thread, after everything handed over before."""
        self.io.submit(fn, *args)

    def to_host(self, tensor: torch.Tensor, dtype: np.dtype) -> Callable[[], np.ndarray]:
        """The writer's host copy of ``tensor``, a fresh one (a stack of staged rows, never a reused
        buffer): on CUDA a non-blocking copy into pinned memory and the event to wait on."""
        tensor = tensor.to(TORCH_DTYPES[dtype])  # cast where the data is (halves a float16 copy)
        if tensor.device.type == "cuda":
            host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
            host.copy_(tensor, non_blocking=True)
            done = torch.cuda.Event()
            done.record()
            return lambda: (done.synchronize(), host.numpy())[1]
        array = tensor.numpy()
        return lambda: array


class Periodic:
    """One periodic recording: its writers, its steps and the rows staged on the device."""

    coords: tuple[str, str] = ("", "")  # its step and round coordinates

    def __init__(
        self, out: Handover, names: list[str], steps: np.ndarray, dtypes: list[np.dtype]
    ) -> None:
        self.out = out
        self.writers: list[ChunkWriter] = [out.store.writer(n) for n in names]
        self.dtypes = dtypes
        self.set_steps(steps)
        self.next = 0
        self.staged: list[list[torch.Tensor]] = [[] for _ in self.writers]
        self.staged_bytes = 0
        # an open timeline (a growable store): the rows' steps and rounds are appended as they come
        self.open = self.coords[0] in out.store.growth
        self.coord_writers = [out.store.writer(n) for n in self.coords] if self.open else []
        self.coord_rows: list[tuple[int, int]] = []

    def add_step(self, step: int, round: int, mag: torch.Tensor) -> None:
        """Record ``mag`` as a new row at ``step`` of round ``round`` (an open timeline)."""
        if not isinstance(self.steps, list):
            self.steps = list(self.steps)
        self.steps.append(step)  # the writer thread reads it (frontier): appends only
        self.rows[step] = len(self.steps) - 1
        self.coord_rows.append((step, round))
        self.stage(self.rows_of(mag))

    def rewrite_last(self, step: int, round: int, mag: torch.Tensor) -> None:
        """Replace the last row (at ``step``) with ``mag`` in round ``round``: a prune event at the
        step of a row just recorded (an open timeline)."""
        new = zip(self.rows_of(mag), self.dtypes, strict=True)
        rows = [r.to(TORCH_DTYPES[d], copy=True) for r, d in new]
        if self.staged[0]:
            for staged, row in zip(self.staged, rows, strict=True):
                staged[-1] = row
            self.coord_rows[-1] = (step, round)
            return
        hosts = [self.out.to_host(row[None], d) for row, d in zip(rows, self.dtypes, strict=True)]
        writers, coords = self.writers, self.coord_writers

        def rewrite() -> None:  # writer thread
            for w, h in zip(writers, hosts, strict=True):
                w.rewrite_last(h()[0])
            for w, v in zip(coords, (step, round), strict=True):
                w.rewrite_last(np.asarray(v))

        self.out.submit(rewrite)

    def shift(self, delta: int) -> None:
        """Add ``delta`` to every step of this recording (an open timeline at its first event)."""
        self.steps = [s + delta for s in self.steps]
        self.rows = {s: i for i, s in enumerate(self.steps)}
        self.coord_rows = [(s + delta, r) for s, r in self.coord_rows]
        if self.coord_writers:
            self.out.submit(self.coord_writers[0].shift, delta)

    def set_steps(self, steps: np.ndarray) -> None:
        """The steps this recording has rows for (an open timeline: those of its rows so far)."""
        self.steps = steps
        self.rows = {int(s): i for i, s in enumerate(steps)}

    def due(self, step: int) -> bool:
        """True when ``step`` is this recording's next row; False for other steps and rows already
        written."""
        row = self.rows.get(step)
        if row is None or row < self.next:
            # not one of its steps, or already on disk (a resumed run restarts at a written row)
            return False
        if row != self.next:
            raise RuntimeError(f"recording for step {step} out of order (expected row {self.next})")
        return True

    def record(self, step: int, mag: torch.Tensor) -> None:
        """Record the flat magnitudes ``mag`` if ``step`` is this recording's next row."""
        if self.due(step):
            self.stage(self.rows_of(mag))

    def rows_of(self, mag: torch.Tensor) -> list[torch.Tensor]:
        """One row per writer from the flat magnitudes (on the device)."""
        raise NotImplementedError

    def stage(self, rows: list[torch.Tensor]) -> None:
        """Keep one row per writer (copied, cast to the store's dtype, on the device); hand the
        staged rows over once their chunk is complete, the recording is done, or they pass
        ``STAGE_BYTES``."""
        for staged, row, dtype in zip(self.staged, rows, self.dtypes, strict=True):
            # the recorder's buffers are reused
            staged.append(row.to(TORCH_DTYPES[dtype], copy=True))
            self.staged_bytes += staged[-1].numel() * staged[-1].element_size()
        self.next += 1
        if (
            self.next % self.writers[0].chunk == 0
            or (self.next == len(self.steps) and not self.open)
            or self.staged_bytes >= STAGE_BYTES
        ):
            self.drain()

    def drain(self) -> None:
        """Hand the staged rows to the writer thread as one block per writer."""
        if not self.staged[0]:
            return
        hosts = [
            self.out.to_host(torch.stack(staged), dtype)
            for staged, dtype in zip(self.staged, self.dtypes, strict=True)
        ]
        writers = self.writers
        self.out.submit(lambda: [w.append(h()) for w, h in zip(writers, hosts, strict=True)])
        self.staged = [[] for _ in writers]
        self.staged_bytes = 0
        if self.coord_writers:
            steps, rounds = np.asarray(self.coord_rows, dtype=np.int64).T
            for w, values in zip(self.coord_writers, (steps, rounds), strict=True):
                self.out.submit(w.append, values)
            self.coord_rows = []

    def frontier(self) -> int | None:
        """The last step before this recording's first unwritten row (writer thread), or None if all
        written."""
        pos = self.writers[0].pos
        return int(self.steps[pos]) - 1 if pos < len(self.steps) else None

    def seek(self, step: int, next_row: int | None = None) -> None:
        """Resume just after global ``step`` (``next_row``: the row to hand over next, when the
        checkpoint says)."""
        found = int(np.searchsorted(self.steps, step, side="right"))
        self.next = found if next_row is None else next_row
        self.staged = [[] for _ in self.writers]
        self.staged_bytes = 0


class Snapshots(Periodic):
    """Every prunable weight's magnitude: float ``magnitude``, or log8 ``magnitude_code`` and the
    per-layer ``magnitude_top``."""

    coords = ("record_step", "record_round")

    def __init__(
        self,
        out: Handover,
        steps: np.ndarray,
        magnitude_dtype: str,
        layer_sizes: list[int],
        layer_ids: torch.Tensor,
    ) -> None:
        log8 = magnitude_dtype == "log8"
        names = ["magnitude_code", "magnitude_top"] if log8 else ["magnitude"]
        dtypes = [np.dtype(np.uint8), np.dtype(np.float32)] if log8 else [np.dtype(magnitude_dtype)]
        super().__init__(out, names, steps, dtypes)
        self.encoder = Log8Encoder(layer_sizes, layer_ids) if log8 else None

    def rows_of(self, mag: torch.Tensor) -> list[torch.Tensor]:
        """The magnitudes, or their log8 codes and per-layer tops."""
        return list(self.encoder(mag)) if self.encoder is not None else [mag]


class Samples(Periodic):
    """The magnitudes of a fixed subset of weights (``sample_weight``), gathered on the device."""

    coords = ("sample_step", "sample_round")

    def __init__(self, out: Handover, steps: np.ndarray, dtype: np.dtype) -> None:
        super().__init__(out, ["sample_magnitude"], steps, [dtype])
        index = np.asarray(out.store.group["sample_weight"][:])
        self.index = torch.as_tensor(index, device=out.device)

    def rows_of(self, mag: torch.Tensor) -> list[torch.Tensor]:
        """The sampled weights' magnitudes."""
        return [mag[self.index]]


class Histograms(Periodic):
    """Per-layer counts of non-zero |w| in equal log10 bins, on the device; one count of keys for
    all layers."""

    coords = ("hist_step", "hist_round")

    def __init__(self, out: Handover, steps: np.ndarray, layer_ids: torch.Tensor) -> None:
        super().__init__(out, ["magnitude_hist"], steps, [np.dtype(np.int32)])
        group = out.store.group
        lo, hi = float(group["hist_bin_lo"][0]), float(group["hist_bin_hi"][-1])
        self.bins = group["hist_bin"].shape[0]
        self.lo, self.scale = lo, self.bins / (hi - lo)
        self.layer_ids = layer_ids
        self.n_layers = int(group["layer"].shape[0])
        self.over(None)

    def over(self, alive: torch.Tensor | None) -> None:
        """Histogram the ``alive`` weights from now on (all weights before the first event): pruned
        weights are 0 in every recorded state (the mask is applied after each update), so they never
        enter the histogram."""
        nb, device = self.bins, self.out.device
        index = None if alive is None else torch.nonzero(alive).reshape(-1)
        layers = self.layer_ids if index is None else self.layer_ids[index]
        n = layers.numel()
        # keys layer * nb + bin, and n_layers * nb for a dropped value; counted sync-free on CUDA
        # (key_counts)
        dtype = key_dtype(self.n_layers * nb + 1, sync_free=device.type == "cuda")
        self.index = index
        self.offset = (layers * nb).to(dtype)
        self.buffers = (
            torch.empty(n, device=device),
            torch.empty(n, dtype=dtype, device=device),
        )

    @torch.no_grad()
    def rows_of(self, mag: torch.Tensor) -> list[torch.Tensor]:
        """The (layers, bins) counts of the histogrammed weights."""
        nb, total = self.bins, self.n_layers * self.bins
        values, keys = self.buffers
        if self.index is not None:
            mag = torch.index_select(mag, 0, self.index, out=values)
        dropped = ~(mag > 0)  # zeros (and NaN) go to a dropped bin
        logs = (
            torch.log10(mag, out=values).sub_(self.lo).mul_(self.scale).floor_().clamp_(0, nb - 1)
        )
        keys.copy_(logs).add_(self.offset).masked_fill_(dropped, total)
        counts = key_counts(keys, total + 1)[:total]
        return [counts.reshape(self.n_layers, nb)]
