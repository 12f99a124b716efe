"""The recorder: writes a run's timeline into its :class:`RunStore`, dispatching to small probes.

The caller tells it when a phase starts (:meth:`Recorder.begin_phase`), when a prune event happens
(:meth:`Recorder.begin_event`), after each update (:meth:`Recorder.on_step`) and each epoch
(:meth:`Recorder.on_epoch`); our training loop reaches the last two through the callback hooks.
Each probe does one job (:mod:`shedding.recording.probes`: shed counting, the per-step series, the
event rows and tables; :mod:`shedding.recording.periodic`: snapshots, histograms, samples). Per-step
values are staged on the device and moved to the host once per chunk; snapshots are copied to the
host (into pinned memory with non-blocking copies on CUDA) and handed to a background writer
(:mod:`shedding.recording.io_thread`) that compresses and writes whole chunks while the next steps
run. The writer thread owns every store write, so they happen in order; the training thread keeps
its own row counters. The recorder owns the commit point (``last_committed_step``) and the state a
resumed run restarts from.

This class records a store made with its whole timeline (the benchmarks' and tests' fixed
timelines); the built-in trainer and ``shedding.watch`` record a growable store through its
subclass :class:`~shedding.recording.open_recorder.OpenRecorder`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from shedding import storage
from shedding.pruning.masks import flat
from shedding.recording.io_thread import IOThread
from shedding.recording.layout import Layer, Timeline
from shedding.recording.periodic import Handover, Histograms, Periodic, Samples, Snapshots
from shedding.recording.probes import EventRows, ShedLines, StepSeries, Tables
from shedding.recording.store import ChunkWriter, RunStore
from shedding.training.loop import Callback, TrainState

_NOT_YET = object()  # no last_committed_step written yet by this recorder


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
        read: Callable[[], list[torch.Tensor]] | None = None,
    ) -> None:
        self._store = store
        self._tl = timeline
        self._params = params
        # the prunable weights as they are now, in layer order (default: the parameters themselves;
        # a watched model reads them through its modules: shedding.watching)
        self._read = read if read is not None else lambda: list(self._params.values())
        self._device = device
        self._layers = ([layer.start for layer in layers], [layer.size for layer in layers])
        layer_ids = torch.cat(
            [torch.full((layer.size,), i, dtype=torch.int64) for i, layer in enumerate(layers)]
        ).to(device)
        out = self._out = Handover(store, None, device)  # its writer thread starts last
        self._shed = ShedLines(out, layer_ids, len(layers))
        self._series = StepSeries(out, bool(self._shed.lines), len(timeline.steps))
        self._tables = Tables(out, timeline.n_events, len(timeline.epoch), len(layers))
        if self._shed.lines:
            self._tables.add_lines(len(self._shed.lines))
        self._event_rows = EventRows(out)
        self._periodic_probes(magnitude_dtype, layer_ids)
        same_dtype = all(p.dtype == torch.float32 for p in params.values())
        self._flat = (
            torch.empty(sum(self._layers[1]), dtype=torch.float32, device=device)
            if same_dtype
            else None
        )
        self._event_steps = set(int(s) for s in timeline.event_step)
        self._step_base = 0
        self.epoch_index = 0
        self._phase = "retrain"
        self._counting = False
        self._committed_written: object = _NOT_YET  # last_committed_step as last written
        self._closed = False
        # the writer thread, started last (tests and benchmarks hold it back through it)
        self.io = out.io = IOThread(max_pending)

    def _periodic_probes(self, magnitude_dtype: str, layer_ids: torch.Tensor) -> None:
        """The periodic recordings this run has: snapshots, histograms, samples."""
        tl, out = self._tl, self._out
        np_dtype = np.dtype("float16" if magnitude_dtype == "log8" else magnitude_dtype)
        self._snapshots = self._hist = self._samples = None
        if len(tl.record_steps):
            self._snapshots = Snapshots(
                out, tl.record_steps, magnitude_dtype, self._layers[1], layer_ids
            )
        if len(tl.hist_steps):
            self._hist = Histograms(out, tl.hist_steps, layer_ids)
        if "sample_magnitude" in out.store.group:
            self._samples = Samples(out, tl.sample_steps, np_dtype)
        # in this order in the resume state
        self._periodic: list[Periodic] = [
            p for p in (self._snapshots, self._hist, self._samples) if p is not None
        ]

    # ------------------------------------------------------------------ the public interface
    @property
    def timeline(self) -> Timeline:
        """The timeline the store was made with (a growable store's: the rows it starts with)."""
        return self._tl

    def begin_phase(self, phase: str, step_base: int, epoch_index: int) -> None:
        """The next ``train`` call's step k is global step ``step_base + k``; its epochs start at
        index ``epoch_index``. Shed crossings are counted in the ``retrain`` phase only."""
        self._phase = phase
        self._step_base = step_base
        self.epoch_index = epoch_index
        self._counting = phase == "retrain"

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
        step = self._event_step(index)
        mag = self._flat_abs()
        alive = flat(masks).to(self._device)
        counted = self._shed.start(mag, alive, line, tau, sparsity, self._layers)
        self._tables.set_event(
            index,
            {
                "event_round": round,
                "event_sparsity": sparsity,
                "event_tau": tau,
                "event_line": line,
                "event_pruned": pruned_per_layer,
                "event_test_accuracy": test_accuracy,
                **counted,
            },
        )
        if self._hist is not None:
            self._hist.over(alive.bool())
        self._event_rows.write(index, alive, pre_prune)
        self._tables.write()
        self._record_periodic(step, mag)

    @torch.no_grad()
    def on_step(self, step: int, loss: torch.Tensor, lr: float) -> None:
        """After update ``step`` of the current phase (global step ``step_base + step``): its loss
        (a tensor, left on the device) and learning rate."""
        g = self._step_base + step
        mag = self._flat_abs() if self._counting else None
        counts, line_counts = self._shed.update(mag)
        self._series.stage(loss, lr, counts, line_counts)
        if self._wants(g):
            self._record_periodic(g, mag if mag is not None else self._flat_abs())
        if self._series.chunk_done():
            # a step chunk is complete: move it to the host and hand it to the writer
            self._drain()

    def on_epoch(self, metrics: dict[str, float]) -> None:
        """After an epoch: its metrics (``train_accuracy``, ``train_loss``, ``test_accuracy``,
        ``test_loss``; others are ignored), then a flush."""
        self._tables.set_epoch(self.epoch_index, metrics)
        self.epoch_index += 1
        self.flush()

    def end_round(self, index: int, test_accuracy: float) -> None:
        """Record the test accuracy at the end of event ``index``'s retraining round."""
        self._tables.set_event(index, {"event_final_test_accuracy": test_accuracy})
        self._tables.write()

    @torch.no_grad()
    def shed_now(self) -> torch.Tensor:
        """Flat bool over the prunable weights: the current event's eligible survivors below its
        line now, the set the shed count counts (cascade-aware pruning removes it at the next
        event)."""
        return self._shed.below_now(self._flat_abs())

    def set_attrs(self, **attrs: Any) -> None:
        """Set root attributes of the store, in order with everything handed to the writer."""
        self.io.submit(self._store.set_attrs, attrs)

    def checkpoint(self, path: Path, payload: dict[str, Any]) -> None:
        """Save ``payload`` and the recorder's state (key ``recorder``) atomically at ``path`` once
        everything recorded so far is written: what a resumed run restarts from."""
        ckpt = {**payload, "recorder": self.state_dict()}
        self.io.submit(storage.save_atomic, ckpt, path)

    def flush(self) -> None:
        """Hand everything staged to the writer, then have it write partial chunks whole and
        commit."""
        self._drain()
        self._tables.write()
        self.io.submit(self._flush_writers)

    def sync(self) -> None:
        """Wait until the writer has written everything handed to it (raises its error if it
        failed)."""
        self.io.sync()

    def close(self, status: str, **attrs: Any) -> None:
        """Flush, set the run status (complete, failed, interrupted), stop the writer, release the
        lock.

        If the writer itself failed (a disk error, say), what it had committed stays readable and
        the status is still set when the store allows it. A second call only sets the status.
        """
        if self._closed:
            self._store.set_attrs(status=status, **attrs)
            return
        self._closed = True
        try:
            if self.io.error is None:
                self._close_writes()
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
                finished = time.strftime("%Y-%m-%dT%H:%M:%S%z")
                self._store.set_attrs(status=status, finished=finished, **extra, **attrs)
            finally:
                self._store.release()

    def _close_writes(self) -> None:
        """What :meth:`close` hands to the writer before it stops it: a flush."""
        self.flush()

    def abandon(self) -> None:
        """Stop the writer, writing nothing more and setting no status (a resume that failed
        before it started; its caller releases the store)."""
        self.io.close()

    # ------------------------------------------------------------------ resume
    def state_dict(self) -> dict[str, Any]:
        """What a resumed run needs to continue recording bitwise as an uninterrupted one would."""
        # everything produced so far goes to the writer before the checkpoint that follows
        self._drain()
        return {
            "counters": self._shed.state_dict(),
            "epoch_index": self.epoch_index,
            # rows produced so far: a row at the checkpoint's own step may come after it (an event's
            # snapshot)
            "steps_next": self._series.next,
            "periodic_next": [p.next for p in self._periodic],
            **self._tables.state_dict(),
        }

    def rows_at(self, state: dict[str, Any], step: int) -> dict[str, int]:
        """Rows of each array that a resume from :meth:`state_dict` ``state`` at global ``step``
        keeps."""
        steps_next, periodic = self._positions(state, step)
        rows = {w.array.basename: steps_next for w in self._series.writers}
        for p, n in zip(self._periodic, periodic, strict=True):
            rows.update({w.array.basename: n for w in (*p.writers, *p.coord_writers)})
        return rows

    def load_state_dict(self, state: dict[str, Any], step: int) -> None:
        """Restore :meth:`state_dict` and put every writer just after global ``step``."""
        self._shed.load_state_dict(state["counters"])
        self.epoch_index = state["epoch_index"]
        self._tables.load_state_dict(state)
        self._series.clear()
        self._series.next, periodic = self._positions(state, step)
        for p, n in zip(self._periodic, periodic, strict=True):
            p.seek(step, n)
        series, probes = self._series, self._periodic

        def seek() -> None:  # writer thread
            for w in series.writers:
                w.seek(series.next)
            for p in probes:
                for w in (*p.writers, *p.coord_writers):
                    w.seek(p.next)

        self.io.submit(seek)
        self.io.sync()

    def _positions(self, state: dict[str, Any], step: int) -> tuple[int, list[int]]:
        """(per-step rows, each periodic recording's rows) produced up to global ``step`` by
        :meth:`state_dict` ``state`` (older checkpoints without the counts: the rows up to
        ``step``)."""
        steps_next = state.get(
            "steps_next", int(np.searchsorted(self._tl.steps, step, side="right"))
        )
        periodic = state.get("periodic_next") or [
            int(np.searchsorted(p.steps, step, side="right")) for p in self._periodic
        ]
        return steps_next, list(periodic)

    # ------------------------------------------------------------------ the training loop's hooks
    def on_train_start(self, state: TrainState) -> None:
        """The state before a phase's first step, where a periodic recording wants it."""
        g = self._step_base + state.step
        if self._wants(g):
            self._record_periodic(g, self._flat_abs())

    def on_step_end(self, state: TrainState) -> None:
        """:meth:`on_step` from the training loop's state."""
        self.on_step(state.step, state.loss, state.lr)

    def on_epoch_end(self, state: TrainState) -> None:
        """:meth:`on_epoch` from the training loop's state."""
        self.on_epoch(state.metrics)

    # ------------------------------------------------------------------ internals
    def _event_step(self, index: int) -> int:
        """The global step of prune event ``index``."""
        return int(self._tl.event_step[index])

    def _wants(self, g: int) -> bool:
        return g not in self._event_steps and any(g in p.rows for p in self._periodic)

    def _flat_abs(self) -> torch.Tensor:
        """|w| of every prunable weight, flat in layer order, as float32: a buffer the next call
        overwrites."""
        views = [p.detach().reshape(-1) for p in self._read()]
        if self._flat is None:
            return torch.cat(views).abs_().float()
        return torch.cat(views, out=self._flat).abs_()

    def _record_periodic(self, step: int, mag: torch.Tensor) -> None:
        """Every periodic recording due at ``step``."""
        for p in (self._hist, self._samples, self._snapshots):
            if p is not None:
                p.record(step, mag)

    def _drain(self) -> None:
        """Hand every staged row to the writer."""
        for p in self._periodic:
            p.drain()
        self._series.drain()

    def _writers(self) -> list[ChunkWriter]:
        periodic = [w for p in self._periodic for w in (*p.writers, *p.coord_writers)]
        return [*self._series.writers, *periodic]

    def _committed_step(self) -> int | None:
        """Largest step up to which every per-step row and snapshot is on disk (call in the writer
        thread)."""
        pos = self._series.lr.pos
        if pos == 0:
            return None
        frontier = int(self._tl.steps[pos - 1])
        for p in self._periodic:
            if (f := p.frontier()) is not None:
                frontier = min(frontier, f)
        return frontier

    def _flush_writers(self, extra: dict[str, Any] | None = None) -> None:
        """Write every partial chunk whole, then commit (writer thread): ``last_committed_step``
        (and ``extra`` root attributes)."""
        for w in self._writers():
            w.flush()
        committed = self._committed_step()
        # each write of the root attributes rewrites all the metadata
        if committed != self._committed_written or extra:
            self._store.set_attrs(last_committed_step=committed, **(extra or {}))
            self._committed_written = committed


class NullRecorder(Callback):
    """The recorder's interface, writing nothing: what ranks other than 0 of a torchrun launch use.

    It keeps ``epoch_index`` as :class:`Recorder` does.
    """

    def __init__(self) -> None:
        self.epoch_index = 0

    def set_attrs(self, **attrs: Any) -> None:
        """Discarded."""

    def checkpoint(self, path: Path, payload: dict[str, Any]) -> None:
        """Discarded."""

    def begin_phase(self, phase: str, step_base: int, epoch_index: int) -> None:
        """As :class:`Recorder`'s, recording nothing."""
        self.epoch_index = epoch_index

    def begin_event(self, *args: Any, **kwargs: Any) -> None:
        """As :class:`Recorder`'s, recording nothing."""

    def on_step(self, step: int, loss: torch.Tensor, lr: float) -> None:
        """As :class:`Recorder`'s, recording nothing."""

    def on_epoch(self, metrics: dict[str, float]) -> None:
        """As :class:`Recorder`'s, recording nothing."""
        self.epoch_index += 1

    def on_epoch_end(self, state: TrainState) -> None:
        """Counts the epoch."""
        self.on_epoch(state.metrics)

    def end_round(self, index: int, test_accuracy: float) -> None:
        """As :class:`Recorder`'s, recording nothing."""

    def flush(self) -> None:
        """As :class:`Recorder`'s, recording nothing."""

    def finish(self) -> None:
        """As :class:`OpenRecorder`'s, recording nothing."""

    def sync(self) -> None:
        """As :class:`Recorder`'s, recording nothing."""

    def abandon(self) -> None:
        """As :class:`Recorder`'s, recording nothing."""

    def state_dict(self) -> dict[str, Any]:
        """As :class:`Recorder`'s, recording nothing."""
        return {"epoch_index": self.epoch_index}

    def load_state_dict(self, state: dict[str, Any], step: int) -> None:
        """As :class:`Recorder`'s, recording nothing."""
        self.epoch_index = state["epoch_index"]

    def close(self, status: str, **attrs: Any) -> None:
        """As :class:`Recorder`'s, recording nothing."""
