"""The recorder: a training callback that writes a run's timeline into its :class:`RunStore`.

The experiment tells it when a phase starts (:meth:`Recorder.begin_phase`) and when a prune event
happens (:meth:`Recorder.begin_event`); the training loop calls its hooks. Per-step values are
staged on the device and moved to the host once per chunk; snapshots are copied to the host (into
pinned memory with non-blocking copies on CUDA) and handed to a background writer
(:mod:`shedding.recording.io_thread`) that compresses and writes whole chunks while the next steps
run. The writer thread owns every store write, so they happen in order; the training thread keeps
its own row counters.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from shedding.lines import Line
from shedding.pruning.masks import flat
from shedding.recording.encoding import Log8Encoder
from shedding.recording.io_thread import IOThread
from shedding.recording.layout import Layer, Timeline
from shedding.recording.names import read_names
from shedding.recording.reductions import key_counts, key_dtype
from shedding.recording.shed_counter import ShedCounter
from shedding.recording.store import ChunkWriter, RunStore
from shedding.training.loop import Callback, TrainState

EPOCH_VARS = ("train_accuracy", "train_loss", "test_accuracy", "test_loss")
_TORCH_DTYPES = {np.dtype(k): getattr(torch, k) for k in ("float32", "float16", "uint8", "int32")}
_NOT_YET = object()  # no last_committed_step written yet by this recorder
STAGE_BYTES = (
    4 << 20
)  # rows of a periodic recording wait on the device until a chunk is full or they reach this


class _Periodic:
    """One periodic recording (magnitude snapshots, histograms or samples): its writers and step
    rows.

    ``next`` counts the rows the training thread has produced; the last of them may still be staged
    (kept on the device, one list per writer) until :meth:`Recorder._drain` hands them to the writer
    thread in one block. The writers' own positions belong to that thread.
    """

    def __init__(
        self, writers: list[ChunkWriter], steps: np.ndarray, dtypes: list[np.dtype]
    ) -> None:
        self.writers = writers
        self.steps = steps
        self.dtypes = dtypes
        self.rows = {int(s): i for i, s in enumerate(steps)}
        self.next = 0
        self.staged: list[list[torch.Tensor]] = [[] for _ in writers]
        self.staged_bytes = 0

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

    def frontier(self) -> int | None:
        """The last step before this recording's first unwritten row (writer thread), or None if all
        written."""
        pos = self.writers[0].pos
        return int(self.steps[pos]) - 1 if pos < len(self.steps) else None

    def seek(self, step: int) -> None:
        """Resume just after global ``step``: the next row to hand over (training thread)."""
        self.next = int(np.searchsorted(self.steps, step, side="right"))
        self.staged = [[] for _ in self.writers]
        self.staged_bytes = 0


class Recorder(Callback):
    """Writes loss, LR, shed crossings, magnitude snapshots, events and epoch metrics."""

    def __init__(
        self,
        store: RunStore,
        layers: list[Layer],
        timeline: Timeline,
        params: dict[str, torch.nn.Parameter],
        magnitude_dtype: str,
        device: torch.device,
        max_pending: int = 8,
    ) -> None:
        self.store = store
        self.tl = timeline
        self.params = params
        self.log8 = magnitude_dtype == "log8"
        self.np_dtype = np.dtype("float16" if self.log8 else magnitude_dtype)
        self.device = device
        layer_ids = torch.cat(
            [torch.full((layer.size,), i, dtype=torch.int64) for i, layer in enumerate(layers)]
        ).to(device)
        self.layer_ids = layer_ids
        self.counter = ShedCounter(layer_ids, len(layers))
        self.n_layers = len(layers)
        self.layer_starts = [layer.start for layer in layers]
        self.layer_sizes = [layer.size for layer in layers]
        self.extra_lines = (
            [Line.parse(t) for t in read_names(store.group["line"])]
            if "line" in store.group
            else []
        )
        self.extra_counters = [ShedCounter(layer_ids, len(layers)) for _ in self.extra_lines]
        self._event_steps = set(int(s) for s in timeline.event_step)
        self.w_loss = store.writer("loss")
        self.w_lr = store.writer("lr")
        self.w_counts = [store.writer(n) for n in ("shed_count", "shed_events", "recover_events")]
        self.w_line_counts = (
            [
                store.writer(n)
                for n in ("line_shed_count", "line_shed_events", "line_recover_events")
            ]
            if self.extra_lines
            else []
        )
        # the periodic recordings this run has, each with its writers (log8 adds the per-layer tops)
        self.snapshots = self.hist = self.samples = None
        if len(timeline.record_steps):
            self._encoder = Log8Encoder(self.layer_sizes, layer_ids) if self.log8 else None
            names = ["magnitude_code", "magnitude_top"] if self.log8 else ["magnitude"]
            dtypes = [np.dtype(np.uint8), np.dtype(np.float32)] if self.log8 else [self.np_dtype]
            self.snapshots = _Periodic(
                [store.writer(n) for n in names], timeline.record_steps, dtypes
            )
        if len(timeline.hist_steps):
            self.hist = _Periodic(
                [store.writer("magnitude_hist")], timeline.hist_steps, [np.dtype(np.int32)]
            )
        if "sample_magnitude" in store.group:
            self.samples = _Periodic(
                [store.writer("sample_magnitude")], timeline.sample_steps, [self.np_dtype]
            )
            self._sample_index = torch.as_tensor(
                np.asarray(store.group["sample_weight"][:]), device=device
            )
        self.periodic = [p for p in (self.snapshots, self.hist, self.samples) if p is not None]
        if self.hist is not None:
            lo = float(store.group["hist_bin_lo"][0])
            hi = float(store.group["hist_bin_hi"][-1])
            self._hist = (
                lo,
                store.group["hist_bin"].shape[0] / (hi - lo),
                store.group["hist_bin"].shape[0],
            )
            self._hist_over(None)
        n_weights = sum(self.layer_sizes)
        same_dtype = all(p.dtype == torch.float32 for p in params.values())
        self._flat = (
            torch.empty(n_weights, dtype=torch.float32, device=device) if same_dtype else None
        )
        self._staged_loss: list[torch.Tensor] = []
        self._staged_counts: list[torch.Tensor] = []
        self._staged_line_counts: list[torch.Tensor] = []
        self._staged_lr: list[float] = []
        self.step_base = 0
        self.epoch_index = 0
        self.phase = "retrain"
        self.counting = False
        n_ev, n_ep = timeline.n_events, len(timeline.epoch)
        self.events: dict[str, np.ndarray] = {
            "event_round": np.full(n_ev, -1, np.int16),
            "event_sparsity": np.full(n_ev, np.nan),
            "event_tau": np.full(n_ev, np.nan),
            "event_line": np.full(n_ev, np.nan),
            "event_pruned": np.full((n_ev, self.n_layers), -1, np.int64),
            "event_survivors": np.full((n_ev, self.n_layers), -1, np.int64),
            "event_eligible": np.full((n_ev, self.n_layers), -1, np.int64),
            "event_below": np.full((n_ev, self.n_layers), -1, np.int64),
            "event_test_accuracy": np.full(n_ev, np.nan),
            "event_final_test_accuracy": np.full(n_ev, np.nan),
        }
        if self.extra_lines:
            shape = (n_ev, len(self.extra_lines), self.n_layers)
            self.events.update(
                line_value=np.full(shape, np.nan), line_eligible=np.full(shape, -1, np.int64)
            )
        self.epochs: dict[str, np.ndarray] = {k: np.full(n_ep, np.nan) for k in EPOCH_VARS}
        self.io = IOThread(max_pending)
        self._tables_written: dict[str, np.ndarray] = {}  # the tables as last handed to the writer
        self._committed_written: object = _NOT_YET  # last_committed_step as last written
        self._steps_next = 0  # per-step rows handed to the writer so far
        self._closed = False

    # ------------------------------------------------------------------ driven by the experiment
    def begin_phase(self, phase: str, step_base: int, epoch_index: int) -> None:
        """The next ``train`` call's step k is global step ``step_base + k``; its epochs start at
        index."""
        self.phase = phase
        self.step_base = step_base
        self.epoch_index = epoch_index
        self.counting = phase == "retrain"

    @torch.no_grad()
    def begin_event(
        self,
        index: int,
        round: int,
        masks: dict[str, torch.Tensor],
        pre_prune: torch.Tensor,
        pruned_per_layer: np.ndarray,
        sparsity: float,
        tau: float,
        line: float,
        test_accuracy: float,
    ) -> None:
        """Record prune event ``index`` from the model's current (post-prune, start-of-round)
        weights."""
        step = int(self.tl.event_step[index])
        mag = self._flat_abs()
        alive = flat(masks).to(self.device)
        survivors, eligible, below = (t.cpu().numpy() for t in self.counter.start(mag, alive, line))
        ev = self.events
        ev["event_round"][index] = round
        ev["event_sparsity"][index] = sparsity
        ev["event_tau"][index] = tau
        ev["event_line"][index] = line
        ev["event_pruned"][index] = pruned_per_layer
        ev["event_survivors"][index] = survivors
        ev["event_eligible"][index] = eligible
        ev["event_below"][index] = below
        ev["event_test_accuracy"][index] = test_accuracy
        for j, (ln, counter) in enumerate(zip(self.extra_lines, self.extra_counters, strict=True)):
            values = ln.layer_values(mag, alive, self.layer_starts, self.layer_sizes, tau, sparsity)
            per_weight = torch.as_tensor(values, dtype=torch.float32, device=self.device)[
                self.counter.layer_ids
            ]
            _, elig, _ = counter.start(mag, alive, per_weight)
            ev["line_value"][index, j] = values
            ev["line_eligible"][index, j] = elig.cpu().numpy()
        if self.hist is not None:
            self._hist_over(alive.bool())
        self.io.submit(self.store.write_rows, "mask", index, alive.bool().cpu().numpy())
        pre_dtype = self.store.group["pre_prune_magnitude"].dtype
        self.io.submit(
            self.store.write_rows,
            "pre_prune_magnitude",
            index,
            pre_prune.float().cpu().numpy().astype(pre_dtype),
        )
        self._write_tables()
        self._snapshot(step, mag)

    @torch.no_grad()
    def shed_now(self) -> torch.Tensor:
        """Flat bool over the prunable weights: the current event's eligible survivors below its
        line now, the set the shed count counts (cascade-aware pruning removes it at the next
        event)."""
        if self.counter.eligible is None:
            raise RuntimeError("no prune event yet")
        return self.counter.below_now(self._flat_abs())

    def set_timeline(self, timeline: Timeline) -> None:
        """Switch to ``timeline``, a prefix of the current one (cascade-aware pruning reached its
        target early): the store and its writers are cut to it, in order with everything already
        handed to the writer."""
        from shedding.recording.layout import is_prefix

        if not is_prefix(timeline, self.tl):
            raise ValueError("the new timeline is not a prefix of the recorder's")
        self._drain_steps()
        self.tl = timeline
        self._event_steps = set(int(s) for s in timeline.event_step)
        for p, steps in (
            (self.snapshots, timeline.record_steps),
            (self.hist, timeline.hist_steps),
            (self.samples, timeline.sample_steps),
        ):
            if p is not None:
                p.steps = steps
                p.rows = {int(s): i for i, s in enumerate(steps)}
        n_ev, n_ep = timeline.n_events, len(timeline.epoch)
        self.events = {k: v[:n_ev] for k, v in self.events.items()}
        self.epochs = {k: v[:n_ep] for k, v in self.epochs.items()}
        sizes = [
            (w, len(timeline.steps))
            for w in (self.w_loss, self.w_lr, *self.w_counts, *self.w_line_counts)
        ]
        for p in self.periodic:
            sizes += [(w, len(p.steps)) for w in p.writers]

        def cut() -> None:  # writer thread
            for w, rows in sizes:
                w.truncate(rows)
            self.store.truncate(timeline)

        self.io.submit(cut)

    def end_round(self, index: int, test_accuracy: float) -> None:
        """Record the test accuracy at the end of event ``index``'s retraining round."""
        self.events["event_final_test_accuracy"][index] = test_accuracy
        self._write_tables()

    # ------------------------------------------------------------------ callback hooks
    def _wants(self, g: int) -> bool:
        return g not in self._event_steps and any(g in p.rows for p in self.periodic)

    def on_train_start(self, state: TrainState) -> None:
        g = self.step_base + state.step
        if self._wants(g):
            self._snapshot(g, self._flat_abs())

    @torch.no_grad()
    def on_step_end(self, state: TrainState) -> None:
        g = self.step_base + state.step
        self._staged_loss.append(state.loss.float().reshape(()))
        self._staged_lr.append(state.lr)
        mag = None
        if self.counting:
            mag = self._flat_abs()
            self._staged_counts.append(self.counter.update(mag))
            if self.extra_lines:
                self._staged_line_counts.append(
                    torch.stack([c.update(mag) for c in self.extra_counters])
                )
        else:
            self._staged_counts.append(
                torch.zeros(3, self.n_layers, dtype=torch.int64, device=self.device)
            )
            if self.extra_lines:
                self._staged_line_counts.append(
                    torch.zeros(
                        len(self.extra_lines),
                        3,
                        self.n_layers,
                        dtype=torch.int64,
                        device=self.device,
                    )
                )
        if self._wants(g):
            self._snapshot(g, mag if mag is not None else self._flat_abs())
        end = self._steps_next + len(self._staged_lr)
        if end % self.w_lr.chunk == 0 or end == len(self.tl.steps):
            # a step chunk is complete: move it to the host and hand it to the writer
            self._drain_steps()

    def on_epoch_end(self, state: TrainState) -> None:
        for k in EPOCH_VARS:
            if k in state.metrics:
                self.epochs[k][self.epoch_index] = state.metrics[k]
        self.epoch_index += 1
        self.flush()

    # ------------------------------------------------------------------ writing
    def _flat_abs(self) -> torch.Tensor:
        """|w| of every prunable weight, flat in layer order, as float32: a buffer the next call
        overwrites."""
        views = [p.detach().reshape(-1) for p in self.params.values()]
        if self._flat is None:
            return torch.cat(views).abs_().float()
        return torch.cat(views, out=self._flat).abs_()

    def _to_host(self, tensor: torch.Tensor, dtype: np.dtype) -> Any:
        """The writer's host copy of ``tensor``, a fresh one (a stack of staged rows, never a reused
        buffer): on
        CUDA a non-blocking copy into pinned memory and the event to wait on."""
        tensor = tensor.to(
            _TORCH_DTYPES[dtype]
        )  # cast where the data is (fast, halves a float16 copy)
        if tensor.device.type == "cuda":
            host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
            host.copy_(tensor, non_blocking=True)
            done = torch.cuda.Event()
            done.record()
            return lambda: (done.synchronize(), host.numpy())[1]
        array = tensor.numpy()
        return lambda: array

    def _hist_over(self, alive: torch.Tensor | None) -> None:
        """Histogram the ``alive`` weights from now on (all weights before the first event): pruned
        weights are 0 in every recorded state (the mask is applied after each update), so they never
        enter the histogram."""
        nb = self._hist[2]
        index = None if alive is None else torch.nonzero(alive).reshape(-1)
        layers = self.layer_ids if index is None else self.layer_ids[index]
        n = layers.numel()
        # keys layer * nb + bin, and n_layers * nb for a dropped value; counted sync-free on CUDA
        # (key_counts)
        dtype = key_dtype(self.n_layers * nb + 1, sync_free=self.device.type == "cuda")
        self._hist_index = index
        self._hist_offset = (layers * nb).to(dtype)
        self._hist_buf = (
            torch.empty(n, device=self.device),
            torch.empty(n, dtype=dtype, device=self.device),
        )

    @torch.no_grad()
    def _histogram(self, step: int, mag: torch.Tensor) -> None:
        """Per-layer counts of non-zero |w| in equal log10 bins, on the device; one count of keys
        for all layers."""
        if self.hist is None or not self.hist.due(step):
            return
        lo, scale, nb = self._hist
        total = self.n_layers * nb
        values, keys = self._hist_buf
        if self._hist_index is not None:
            mag = torch.index_select(mag, 0, self._hist_index, out=values)
        dropped = ~(mag > 0)  # zeros (and NaN) go to a dropped bin
        logs = torch.log10(mag, out=values).sub_(lo).mul_(scale).floor_().clamp_(0, nb - 1)
        keys.copy_(logs).add_(self._hist_offset).masked_fill_(dropped, total)
        counts = key_counts(keys, total + 1)[:total]
        self._stage(self.hist, [counts.reshape(self.n_layers, nb)])

    def _sample(self, step: int, mag: torch.Tensor) -> None:
        """The sampled subset's magnitudes, gathered on the device."""
        if self.samples is None or not self.samples.due(step):
            return
        self._stage(self.samples, [mag[self._sample_index]])

    def _snapshot(self, step: int, mag: torch.Tensor) -> None:
        self._histogram(step, mag)
        self._sample(step, mag)
        if self.snapshots is None or not self.snapshots.due(step):
            return
        self._stage(self.snapshots, list(self._encoder(mag)) if self.log8 else [mag])

    def _stage(self, p: _Periodic, rows: list[torch.Tensor]) -> None:
        """Keep one row per writer of ``p`` (copied, cast to the store's dtype, on the device); hand
        the staged rows over once their chunk is complete, the recording is done, or they pass
        ``STAGE_BYTES``."""
        for staged, row, dtype in zip(p.staged, rows, p.dtypes, strict=True):
            staged.append(
                row.to(_TORCH_DTYPES[dtype], copy=True)
            )  # the recorder's buffers are reused
            p.staged_bytes += staged[-1].numel() * staged[-1].element_size()
        p.next += 1
        if (
            p.next % p.writers[0].chunk == 0
            or p.next == len(p.steps)
            or p.staged_bytes >= STAGE_BYTES
        ):
            self._drain(p)

    def _drain(self, p: _Periodic) -> None:
        """Hand ``p``'s staged rows to the writer thread as one block per writer."""
        if not p.staged[0]:
            return
        hosts = [
            self._to_host(torch.stack(staged), dtype)
            for staged, dtype in zip(p.staged, p.dtypes, strict=True)
        ]
        writers = p.writers
        self.io.submit(lambda: [w.append(h()) for w, h in zip(writers, hosts, strict=True)])
        p.staged = [[] for _ in writers]
        p.staged_bytes = 0

    def _drain_steps(self) -> None:
        for p in self.periodic:
            self._drain(p)
        if not self._staged_lr:
            return
        # device -> host without a sync on CUDA: the writer thread waits for the copies
        loss = self._to_host(torch.stack(self._staged_loss), np.dtype(np.float32))
        lr = np.asarray(self._staged_lr, dtype=np.float64)
        counts = self._to_host(torch.stack(self._staged_counts), np.dtype(np.int32))  # (n, 3, L)
        line_counts = (
            self._to_host(torch.stack(self._staged_line_counts), np.dtype(np.int32))
            if self.extra_lines
            else None
        )  # (n, lines, 3, L)
        self.io.submit(self._append_steps, loss, lr, counts, line_counts)
        self._steps_next += len(lr)
        self._staged_loss, self._staged_lr, self._staged_counts, self._staged_line_counts = (
            [],
            [],
            [],
            [],
        )

    def _append_steps(
        self, loss: Any, lr: np.ndarray, counts: Any, line_counts: Any
    ) -> None:  # writer thread
        loss, counts = loss(), counts()
        line_counts = line_counts() if line_counts is not None else None
        self.w_loss.append(loss)
        self.w_lr.append(lr)
        for j, w in enumerate(self.w_counts):
            w.append(counts[:, j, :])
        for j, w in enumerate(self.w_line_counts):
            w.append(line_counts[:, :, j, :])

    def _write_tables(self) -> None:
        """Hand the event and epoch tables that changed since this recorder last handed them over to
        the writer (each rewritten whole; a flush at an epoch's end and another at close used to
        rewrite all of them twice)."""
        last = self._tables_written
        tables = {
            k: v.copy()
            for k, v in (*self.events.items(), *self.epochs.items())  # frozen for the writer
            if k not in last or not _same(last[k], v)
        }
        if tables:
            self.io.submit(lambda: [self.store.write_whole(k, v) for k, v in tables.items()])
            last.update(
                tables
            )  # only once handed over: Ctrl-C may interrupt a submit waiting on a full queue

    def committed_step(self) -> int | None:
        """Largest step up to which every per-step row and snapshot is on disk (call in the writer
        thread)."""
        if self.w_lr.pos == 0:
            return None
        frontier = int(self.tl.steps[self.w_lr.pos - 1])
        for p in self.periodic:
            if (f := p.frontier()) is not None:
                frontier = min(frontier, f)
        return frontier

    def _flush_writers(self) -> None:  # writer thread
        for w in (
            self.w_loss,
            self.w_lr,
            *self.w_counts,
            *self.w_line_counts,
            *(w for p in self.periodic for w in p.writers),
        ):
            w.flush()
        committed = self.committed_step()
        if (
            committed != self._committed_written
        ):  # each write of the root attributes rewrites all the metadata
            self.store.set_attrs(last_committed_step=committed)
            self._committed_written = committed

    def flush(self) -> None:
        """Hand everything staged to the writer, then have it write partial chunks whole and
        commit."""
        self._drain_steps()
        self._write_tables()
        self.io.submit(self._flush_writers)

    def sync(self) -> None:
        """Wait until the writer has written everything handed to it (raises its error if it
        failed)."""
        self.io.sync()

    # ------------------------------------------------------------------ resume
    def state_dict(self) -> dict[str, Any]:
        """What a resumed run needs to continue recording bitwise as an uninterrupted one would."""
        # everything produced so far goes to the writer before the checkpoint that follows
        self._drain_steps()
        return {
            "counters": [c.state_dict() for c in (self.counter, *self.extra_counters)],
            "epoch_index": self.epoch_index,
            # rows produced so far: a row at the checkpoint's own step may come after it (an event's
            # snapshot)
            "steps_next": self._steps_next,
            "periodic_next": [p.next for p in self.periodic],
            "events": {k: v.copy() for k, v in self.events.items()},
            "epochs": {k: v.copy() for k, v in self.epochs.items()},
        }

    def _positions(self, state: dict[str, Any], step: int) -> tuple[int, list[int]]:
        """(per-step rows, each periodic recording's rows) produced up to global ``step`` by
        :meth:`state_dict`
        ``state`` (older checkpoints without the counts: the rows up to ``step``)."""
        steps_next = state.get(
            "steps_next", int(np.searchsorted(self.tl.steps, step, side="right"))
        )
        periodic = state.get("periodic_next") or [
            int(np.searchsorted(p.steps, step, side="right")) for p in self.periodic
        ]
        return steps_next, list(periodic)

    def rows_at(self, state: dict[str, Any], step: int) -> dict[str, int]:
        """Rows of each array that a resume from :meth:`state_dict` ``state`` at global ``step``
        keeps."""
        steps_next, periodic = self._positions(state, step)
        rows = {
            w.array.basename: steps_next
            for w in (self.w_loss, self.w_lr, *self.w_counts, *self.w_line_counts)
        }
        for p, n in zip(self.periodic, periodic, strict=True):
            rows.update({w.array.basename: n for w in p.writers})
        return rows

    def load_state_dict(self, state: dict[str, Any], step: int) -> None:
        """Restore :meth:`state_dict` and put every writer just after global ``step``."""
        for counter, saved in zip(
            (self.counter, *self.extra_counters), state["counters"], strict=True
        ):
            counter.load_state_dict(saved, self.device)
        self.epoch_index = state["epoch_index"]
        self.events, self.epochs = state["events"], state["epochs"]
        self._staged_loss, self._staged_lr, self._staged_counts, self._staged_line_counts = (
            [],
            [],
            [],
            [],
        )
        self._steps_next, periodic = self._positions(state, step)
        for p, n in zip(self.periodic, periodic, strict=True):
            p.seek(step)
            p.next = n

        def seek() -> None:  # writer thread
            for w in (self.w_loss, self.w_lr, *self.w_counts, *self.w_line_counts):
                w.seek(self._steps_next)
            for p in self.periodic:
                for w in p.writers:
                    w.seek(p.next)

        self.io.submit(seek)
        self.io.sync()

    def close(self, status: str, **attrs: Any) -> None:
        """Flush, set the run status (complete, failed, interrupted), stop the writer, release the
        lock.

        If the writer itself failed (a disk error, say), what it had committed stays readable and
        the status is still set when the store allows it. A second call only sets the status.
        """
        if self._closed:
            self.store.set_attrs(status=status, **attrs)
            return
        self._closed = True
        try:
            if self.io.error is None:
                self.flush()
                self.io.sync()
        finally:
            self.io.close()
            extra = {
                "writer_wait_seconds": self.io.wait_seconds,
                "recorder_flush_seconds": self.io.busy_seconds,
            }
            if self.io.error is not None and status == "complete":
                status = "failed"
            try:
                self.store.set_attrs(
                    status=status, finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"), **extra, **attrs
                )
            finally:
                self.store.release()


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Bitwise equal, shape and dtype included (so -0.0 is not 0.0, and NaN is NaN)."""
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


class NullRecorder(Callback):
    """The recorder's interface, writing nothing: what ranks other than 0 of a torchrun launch use.

    It keeps ``epoch_index`` as :class:`Recorder` does; ``io.submit`` and ``store.set_attrs``
    discard their calls.
    """

    def __init__(self, timeline: Timeline | None = None) -> None:
        self.epoch_index = 0
        self.tl = timeline
        self.io = self.store = (
            self  # recorder.io.submit(...) and recorder.store.set_attrs(...) do nothing
        )

    def set_timeline(self, timeline: Timeline) -> None:
        """Follows rank 0's timeline (a cascade-aware run cut to the events it used)."""
        self.tl = timeline

    def submit(self, *args: Any, **kwargs: Any) -> None:
        """Discarded (stands in for ``io.submit``)."""

    def set_attrs(self, *args: Any, **kwargs: Any) -> None:
        """Discarded (stands in for ``store.set_attrs``)."""

    def begin_phase(self, phase: str, step_base: int, epoch_index: int) -> None:
        self.epoch_index = epoch_index

    def begin_event(self, *args: Any, **kwargs: Any) -> None:
        pass

    def end_round(self, index: int, test_accuracy: float) -> None:
        pass

    def on_epoch_end(self, state: TrainState) -> None:
        self.epoch_index += 1

    def flush(self) -> None:
        pass

    def sync(self) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {"epoch_index": self.epoch_index}

    def load_state_dict(self, state: dict[str, Any], step: int) -> None:
        self.epoch_index = state["epoch_index"]

    def close(self, status: str, **attrs: Any) -> None:
        pass
