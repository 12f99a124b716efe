"""The recorder of a run store whose timeline is written as it comes: ``shedding.watch`` (a run of
unknown length) and the built-in trainer (:mod:`shedding.experiment`, through the training loop's
callback hooks; it makes the store with room for its planned rounds, and a cascade-aware run that
reaches its target early just stops recording) record through it, one recording path.

The store is growable (:meth:`RunStore.create` with ``growth``): every timeline dimension (``step``,
``record_step``, ``hist_step``, ``sample_step``, ``event``, ``epoch``) starts one chunk long, grows
by whole chunks as rows arrive, and is trimmed to the rows written when the run closes. The
coordinates of those dimensions are appended with their rows. At each commit the root attribute
``committed_rows`` says how many rows of each dimension are written (the rest of a crashed run's
last chunk holds fill values).

Steps follow the store's convention (docs/store-format.md): before the first prune event, the
updates are original training, numbered from 1; at the first event they are renumbered so that the
event is step 0 (and the original training's steps and epochs are <= 0). Each periodic recording
(snapshots, histograms, samples) takes a row every ``every`` steps counted from the start of the run
and then from each prune event, at each prune event (its post-prune state: a row just taken at the
event's step is replaced), and at the end.

A resumed run (the trainer's ``record --resume``) restores the recorder from its checkpoint
(:meth:`OpenRecorder.state_dict`: the counters, steps and rows so far) and continues the store,
reopened with the same ``growth``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from shedding.recording.layout import Layer, Timeline
from shedding.recording.periodic import Periodic
from shedding.recording.recorder import Recorder
from shedding.recording.store import RunStore
from shedding.training.loop import TrainState

OPEN_DIMS = ("step", "record_step", "hist_step", "sample_step", "event", "epoch")
STEP_CHUNK = 4096  # the per-step arrays' chunk (as a planned run's longest)
TABLE_CHUNK = 64  # events or epochs a chunk of their tables holds


def capacity(
    chunk_steps: int, every: dict[str, int], expected: dict[str, int] | None = None
) -> tuple[Timeline, dict[str, int]]:
    """The timeline a growable store is created with (one chunk of each open dimension, or the
    whole chunks that hold ``expected`` rows of the per-step and periodic dimensions: a run that
    knows its planned length grows no more; dimensions of recordings that are off have no rows)
    and the rows each dimension grows by."""
    units = {
        "step": STEP_CHUNK,
        "record_step": chunk_steps,
        "hist_step": chunk_steps,
        "sample_step": 8 * chunk_steps,
        "event": TABLE_CHUNK,
        "epoch": TABLE_CHUNK,
    }

    def rows(dim: str, on: bool = True) -> np.ndarray:
        chunks = 1
        if expected and dim not in ("event", "epoch"):  # the tables: one chunk, their whole
            chunks = max(1, -(-int(expected.get(dim, 0)) // units[dim]))
        return np.zeros(units[dim] * chunks if on else 0, dtype=np.int64)

    snap, hist, samples = (every.get(k, 0) > 0 for k in ("snapshots", "hist", "samples"))
    tl = Timeline(
        steps=rows("step"),
        step_round=rows("step").astype(np.int16),
        record_steps=rows("record_step", snap),
        record_round=rows("record_step", snap).astype(np.int16),
        epoch=rows("epoch"),
        epoch_step=rows("epoch"),
        epoch_round=rows("epoch").astype(np.int16),
        event_step=rows("event"),
        T=0,
        t=0,
        iterations_per_epoch=1,
        hist_steps=rows("hist_step", hist),
        hist_round=rows("hist_step", hist).astype(np.int16),
        sample_steps=rows("sample_step", samples),
        sample_round=rows("sample_step", samples).astype(np.int16),
    )
    return tl, units


class OpenRecorder(Recorder):
    """Records a run step by step without a planned timeline (see the module's docstring)."""

    def __init__(
        self,
        store: RunStore,
        layers: list[Layer],
        timeline: Timeline,
        params: dict[str, torch.Tensor],
        magnitude_dtype: str,
        device: torch.device,
        every: dict[str, int],
        read: Callable[[], list[torch.Tensor]] | None = None,
        max_pending: int = 8,
    ) -> None:
        super().__init__(
            store, layers, timeline, params, magnitude_dtype, device, max_pending, read=read
        )
        self._tables.cut(0, 0)
        self._tables.events.update(event=np.zeros(0, np.int64), event_step=np.zeros(0, np.int64))
        self._tables.epochs.update(
            epoch=np.zeros(0, np.int64),
            epoch_step=np.zeros(0, np.int64),
            epoch_round=np.zeros(0, np.int16),
        )
        self._every: list[tuple[Periodic, int]] = []
        for p, key in (
            (self._snapshots, "snapshots"),
            (self._hist, "hist"),
            (self._samples, "samples"),
        ):
            if p is not None:
                p.set_steps(np.zeros(0, dtype=np.int64))
                self._every.append((p, int(every[key])))
        self.step_now = 0  # updates so far (renumbered at the first prune event)
        self.round = -1
        self._anchor = 0  # the step periodic recordings count from
        self.n_events = 0
        self._epoch_offset = 0  # original-training epochs (numbered <= 0 from the first event)
        self._nan = torch.full((), math.nan, device=device)
        self._rows_written: dict[str, int] | None = None  # committed_rows as last written

    # ------------------------------------------------------------ the built-in trainer's hooks
    def begin_phase(self, phase: str, step_base: int, epoch_index: int) -> None:
        """The built-in trainer starts a phase: the steps and epochs are counted here (the first
        phase of a run takes the periodic recordings' first rows: :meth:`start`)."""
        self._phase = phase
        if phase == "pretrain" and self.step_now == 0 and not self._series.steps:
            self.start()

    def on_train_start(self, state: TrainState) -> None:
        """Nothing: the rows before a phase's first step are taken by :meth:`start` and
        :meth:`begin_event`."""

    def on_step(self, step: int, loss: torch.Tensor, lr: float) -> None:
        """:meth:`step` from the training loop (``step``: the phase's, not needed here)."""
        self.step(loss, lr)

    def on_epoch(self, metrics: dict[str, float]) -> None:
        """:meth:`epoch` from the training loop."""
        self.epoch(metrics)

    # ------------------------------------------------------------------ the run
    @torch.no_grad()
    def start(self) -> None:
        """Record the state before the first update (the periodic recordings' first rows)."""
        mag = self._flat_abs()
        for p, _ in self._every:
            p.add_step(0, self.round, mag)

    @torch.no_grad()
    def step(self, loss: torch.Tensor | None = None, lr: float = math.nan) -> None:
        """One update was made: count crossings and take the periodic rows due now; ``loss`` and
        ``lr`` can follow (:meth:`log`) until the next step."""
        if self._series.n_staged and self._series.chunk_done():
            self.flush()  # a complete chunk of steps (its last row no longer open to log())
        self.step_now += 1
        g = self.step_now
        due = [p for p, every in self._every if (g - self._anchor) % every == 0]
        mag = self._flat_abs() if self._counting or due else None  # none needed before an event
        counts, line_counts = self._shed.update(mag if self._counting else None)
        self._series.add_step(g, self.round)
        value = self._nan if loss is None else loss.detach().to(self._device, non_blocking=True)
        self._series.stage(value, lr, counts, line_counts)
        for p in due:
            p.add_step(g, self.round, mag)

    def log(self, loss: torch.Tensor | float | None = None, lr: float | None = None) -> bool:
        """Set the loss and/or LR of the last update; False when its row is already handed over."""
        if loss is not None and not torch.is_tensor(loss):
            loss = torch.tensor(float(loss))
        if loss is not None:
            loss = loss.detach().to(self._device, non_blocking=True)  # the staged rows' device
        return self._series.set_last(loss, lr)

    def epoch(self, metrics: dict[str, float]) -> None:
        """An epoch ended at this step: its metrics (train/test accuracy and loss), then a
        flush."""
        n = self.epoch_index + 1
        self._tables.grow(self.n_events, n)
        number = n - self._epoch_offset
        coords = {"epoch": number, "epoch_step": self.step_now, "epoch_round": self.round}
        self._tables.set_epoch(self.epoch_index, {**metrics, **coords})
        self.epoch_index = n
        self.flush()

    @torch.no_grad()
    def begin_event(self, index: int, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """Prune event ``index`` at this step (see :meth:`Recorder.begin_event`); the first one
        renumbers the steps so far (it is step 0) and starts the shed counting."""
        if index != self.n_events:
            raise ValueError(f"prune event {index} out of order (expected {self.n_events})")
        if index == 0:
            self._renumber(-self.step_now)
        self.round, self._anchor, self.n_events = index, self.step_now, index + 1
        self._counting = True
        self._tables.grow(self.n_events, self.epoch_index)
        self._tables.set_event(index, {"event": index, "event_step": self.step_now})
        super().begin_event(index, *args, **kwargs)
        self.flush()  # a commit point

    def _renumber(self, delta: int) -> None:
        """Shift every step and epoch so far by ``delta`` (the first event becomes step 0)."""
        self._series.shift(delta)
        for p, _ in self._every:
            p.shift(delta)
        epochs = self._tables.epochs
        epochs["epoch_step"] = epochs["epoch_step"] + delta
        epochs["epoch"] = epochs["epoch"] - self.epoch_index
        self._epoch_offset = self.epoch_index
        self.step_now += delta

    def _event_step(self, index: int) -> int:
        return self.step_now

    def _record_periodic(self, step: int, mag: torch.Tensor) -> None:
        """The event's rows: each periodic recording's row at ``step``, replacing one taken at this
        step before the event pruned."""
        for p, _ in self._every:
            if p.steps and p.steps[-1] == step:
                p.rewrite_last(step, self.round, mag)
            else:
                p.add_step(step, self.round, mag)

    def flush(self) -> None:
        """As :meth:`Recorder.flush`, then the commit says how many rows of each dimension hold
        data (and the store's metadata follows a growth)."""
        self._drain()
        self._tables.write()
        rows = {"event": self.n_events, "epoch": self.epoch_index}
        self.io.submit(self._commit, rows)

    def _commit(self, rows: dict[str, int]) -> None:  # writer thread
        for w in self._writers():
            w.flush()
        if self._store.grown:
            self._store.consolidate()
            self._store.grown = False
        rows = {"step": self._series.lr.pos, **rows}
        for p, _ in self._every:
            rows[p.coords[0]] = p.writers[0].pos
        self._commit_rows(rows)

    def _commit_rows(self, rows: dict[str, int]) -> None:  # writer thread
        """Commit (:meth:`Recorder._flush_writers`); the root attributes are rewritten only when
        the committed step or ``committed_rows`` changed."""
        changed = rows != self._rows_written
        self._rows_written = dict(rows)
        self._flush_writers({"committed_rows": rows} if changed else None)

    def _committed_step(self) -> int | None:
        pos = self._series.lr.pos
        if pos == 0:
            return None
        frontier = int(self._series.steps[pos - 1])
        for p, _ in self._every:
            if (f := p.frontier()) is not None:
                frontier = min(frontier, f)
        return frontier

    # ------------------------------------------------------------------ resume
    def state_dict(self) -> dict[str, Any]:
        """As :meth:`Recorder.state_dict`, with the open timeline's counters and the steps of the
        rows written so far (key ``open``)."""
        state = super().state_dict()  # drains: every row so far has its step in the lists
        state["open"] = {
            "step_now": self.step_now,
            "round": self.round,
            "anchor": self._anchor,
            "n_events": self.n_events,
            "epoch_offset": self._epoch_offset,
            "counting": self._counting,
            "steps": np.asarray(self._series.steps, dtype=np.int64),
            "periodic_steps": [np.asarray(p.steps, dtype=np.int64) for p, _ in self._every],
        }
        return state

    def load_state_dict(self, state: dict[str, Any], step: int) -> None:
        """Restore :meth:`state_dict`: the counters, then every writer (coordinates included) just
        after the rows the checkpoint had produced."""
        if "open" not in state:
            raise ValueError("not the state of a recorder of a growable store")
        o = state["open"]
        self.step_now, self.round, self._anchor = o["step_now"], o["round"], o["anchor"]
        self.n_events, self._epoch_offset = o["n_events"], o["epoch_offset"]
        self._series.steps = [int(s) for s in o["steps"]]
        for (p, _), steps in zip(self._every, o["periodic_steps"], strict=True):
            p.set_steps([int(s) for s in steps])
            p.coord_rows = []
        super().load_state_dict(state, step)
        self._counting = o["counting"]

    @torch.no_grad()
    def finish(self) -> None:
        """The last state: each periodic recording's row at the last step, unless it has one."""
        mag = self._flat_abs()
        for p, _ in self._every:
            if not p.steps or p.steps[-1] != self.step_now:
                p.add_step(self.step_now, self.round, mag)

    def _close_writes(self) -> None:
        """At close (:meth:`Recorder.close`): flush, then trim every open dimension to the rows
        written."""
        self.flush()
        sizes = {"step": self._series.next, "event": self.n_events, "epoch": self.epoch_index}
        for p, _ in self._every:
            sizes[p.coords[0]] = p.next
        self.io.submit(self._store.trim, sizes)
        self.io.submit(self._commit_rows, sizes)
