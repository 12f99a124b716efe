"""The recorder's other probes: shed counting, the per-step series, the event rows and the event and
epoch tables (the periodic ones are in :mod:`shedding.recording.periodic`).

Each probe does one job and hands its writes to the writer thread through a
:class:`~shedding.recording.periodic.Handover`; :class:`~shedding.recording.recorder.Recorder`
dispatches to them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from shedding.lines import Line
from shedding.recording.names import read_names
from shedding.recording.periodic import Handover
from shedding.recording.shed_counter import ShedCounter
from shedding.recording.store import ChunkWriter

EPOCH_VARS = ("train_accuracy", "train_loss", "test_accuracy", "test_loss")
_FILLS = {"f": np.nan, "i": -1, "u": 0}  # the tables' fill values, by dtype kind


class ShedLines:
    """The shed line and the extra lines (``line``): each event's eligible set, each step's
    per-layer crossings, counted on the device."""

    def __init__(self, out: Handover, layer_ids: torch.Tensor, n_layers: int) -> None:
        group = out.store.group
        self.device = out.device
        self.n_layers = n_layers
        self.lines = [Line.parse(t) for t in read_names(group["line"])] if "line" in group else []
        self.main = ShedCounter(layer_ids, n_layers)
        self.extra = [ShedCounter(layer_ids, n_layers) for _ in self.lines]

    def start(
        self,
        mag: torch.Tensor,
        alive: torch.Tensor,
        line: float,
        tau: float,
        sparsity: float,
        layers: tuple[list[int], list[int]],
    ) -> dict[str, Any]:
        """Start counting at a prune event: the event's table values (``layers``: starts, sizes)."""
        survivors, eligible, below = (t.cpu().numpy() for t in self.main.start(mag, alive, line))
        out: dict[str, Any] = {
            "event_survivors": survivors,
            "event_eligible": eligible,
            "event_below": below,
            "line_value": [],
            "line_eligible": [],
        }
        for ln, counter in zip(self.lines, self.extra, strict=True):
            values = ln.layer_values(mag, alive, *layers, tau, sparsity)
            per_weight = torch.as_tensor(values, dtype=torch.float32, device=self.device)[
                self.main.layer_ids
            ]
            _, elig, _ = counter.start(mag, alive, per_weight)
            out["line_value"].append(values)
            out["line_eligible"].append(elig.cpu().numpy())
        return out

    def update(self, mag: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The step's (3, layers) counts and (lines, 3, layers) extra-line counts; zeros when
        ``mag`` is None (nothing is counted outside retraining)."""
        if mag is None:
            zeros = torch.zeros(3, self.n_layers, dtype=torch.int64, device=self.device)
            if not self.lines:
                return zeros, None
            n = len(self.lines)
            return zeros, torch.zeros(n, 3, self.n_layers, dtype=torch.int64, device=self.device)
        counts = self.main.update(mag)
        if not self.lines:
            return counts, None
        return counts, torch.stack([c.update(mag) for c in self.extra])

    def below_now(self, mag: torch.Tensor) -> torch.Tensor:
        """The current event's eligible survivors below its line now (flat bool)."""
        if self.main.eligible is None:
            raise RuntimeError("no prune event yet")
        return self.main.below_now(mag)

    def state_dict(self) -> list[dict]:
        """Every counter's state."""
        return [c.state_dict() for c in (self.main, *self.extra)]

    def load_state_dict(self, state: list[dict]) -> None:
        """Restore :meth:`state_dict`."""
        for counter, saved in zip((self.main, *self.extra), state, strict=True):
            counter.load_state_dict(saved, self.device)


class StepSeries:
    """The per-step arrays (``loss``, ``lr``, the shed counts and the extra lines' counts): rows
    staged on the device and handed to the writer a chunk at a time."""

    def __init__(self, out: Handover, lines: bool, n_steps: int) -> None:
        self.out = out
        store = out.store
        self.loss, self.lr = store.writer("loss"), store.writer("lr")
        self.counts = [store.writer(n) for n in ("shed_count", "shed_events", "recover_events")]
        names = ("line_shed_count", "line_shed_events", "line_recover_events")
        self.line_counts = [store.writer(n) for n in names] if lines else []
        self.n_steps = n_steps
        self.next = 0  # rows handed to the writer so far
        # an open timeline (a growable store): each row's step and round are appended with it
        self.open = "step" in store.growth
        self.coords = [store.writer(n) for n in ("step", "step_round")] if self.open else []
        self.steps: list[int] = []  # an open timeline's steps (the writer thread reads them)
        self.clear()

    @property
    def writers(self) -> list[ChunkWriter]:
        """Every writer of the series (an open timeline's coordinates included)."""
        return [self.loss, self.lr, *self.counts, *self.line_counts, *self.coords]

    def clear(self) -> None:
        """Forget the staged rows."""
        self._loss: list[torch.Tensor] = []
        self._lr: list[float] = []
        self._counts: list[torch.Tensor] = []
        self._line_counts: list[torch.Tensor] = []
        self._coords: list[tuple[int, int]] = []

    def add_step(self, step: int, round: int) -> None:
        """The next row's step and round (an open timeline; before its :meth:`stage`)."""
        self.steps.append(step)
        self._coords.append((step, round))

    def shift(self, delta: int) -> None:
        """Add ``delta`` to every step so far (an open timeline at its first prune event)."""
        self.steps = [s + delta for s in self.steps]
        self._coords = [(s + delta, r) for s, r in self._coords]
        self.out.submit(self.coords[0].shift, delta)

    def stage(
        self, loss: torch.Tensor, lr: float, counts: torch.Tensor, line_counts: torch.Tensor | None
    ) -> None:
        """Keep one step's row; hand the rows over once a chunk of steps is complete."""
        self._loss.append(loss.float().reshape(()))
        self._lr.append(lr)
        self._counts.append(counts)
        if line_counts is not None:
            self._line_counts.append(line_counts)

    @property
    def n_staged(self) -> int:
        """Rows staged and not yet handed to the writer."""
        return len(self._lr)

    def set_last(self, loss: torch.Tensor | None, lr: float | None) -> bool:
        """Replace the last staged row's loss and/or LR; False when no row is staged."""
        if not self._lr:
            return False
        if loss is not None:
            self._loss[-1] = loss.detach().float().reshape(())
        if lr is not None:
            self._lr[-1] = float(lr)
        return True

    def chunk_done(self) -> bool:
        """Whether the staged rows complete a chunk of steps (or the run's steps)."""
        end = self.next + len(self._lr)
        return end % self.lr.chunk == 0 or (end == self.n_steps and not self.open)

    def drain(self) -> None:
        """Hand the staged rows to the writer (device -> host without a sync on CUDA: the writer
        thread waits for the copies)."""
        if not self._lr:
            return
        to_host = self.out.to_host
        loss = to_host(torch.stack(self._loss), np.dtype(np.float32))
        lr = np.asarray(self._lr, dtype=np.float64)
        counts = to_host(torch.stack(self._counts), np.dtype(np.int32))  # (n, 3, L)
        line_counts = (
            to_host(torch.stack(self._line_counts), np.dtype(np.int32))
            if self.line_counts
            else None
        )  # (n, lines, 3, L)
        self.out.submit(self._append, loss, lr, counts, line_counts)
        if self.open:
            steps, rounds = np.asarray(self._coords, dtype=np.int64).T
            for w, values in zip(self.coords, (steps, rounds), strict=True):
                self.out.submit(w.append, values)
        self.next += len(lr)
        self.clear()

    def _append(self, loss: Any, lr: np.ndarray, counts: Any, line_counts: Any) -> None:
        """Append the rows (writer thread)."""
        loss, counts = loss(), counts()
        line_counts = line_counts() if line_counts is not None else None
        self.loss.append(loss)
        self.lr.append(lr)
        for j, w in enumerate(self.counts):
            w.append(counts[:, j, :])
        for j, w in enumerate(self.line_counts):
            w.append(line_counts[:, :, j, :])


class EventRows:
    """Each prune event's ``mask`` and ``pre_prune_magnitude`` rows."""

    def __init__(self, out: Handover) -> None:
        self.out = out

    def write(self, index: int, alive: torch.Tensor, pre_prune: torch.Tensor) -> None:
        """Hand event ``index``'s rows to the writer."""
        store = self.out.store
        self.out.submit(store.write_rows, "mask", index, alive.bool().cpu().numpy())
        pre_dtype = store.group["pre_prune_magnitude"].dtype
        values = pre_prune.float().cpu().numpy().astype(pre_dtype)
        self.out.submit(store.write_rows, "pre_prune_magnitude", index, values)


class Tables:
    """The event and epoch tables, kept in memory and rewritten whole when they change."""

    def __init__(self, out: Handover, n_events: int, n_epochs: int, n_layers: int) -> None:
        self.out = out
        per_layer = np.full((n_events, n_layers), -1, np.int64)
        self.events: dict[str, np.ndarray] = {
            "event_round": np.full(n_events, -1, np.int16),
            "event_sparsity": np.full(n_events, np.nan),
            "event_tau": np.full(n_events, np.nan),
            "event_line": np.full(n_events, np.nan),
            "event_pruned": per_layer.copy(),
            "event_survivors": per_layer.copy(),
            "event_eligible": per_layer.copy(),
            "event_below": per_layer.copy(),
            "event_test_accuracy": np.full(n_events, np.nan),
            "event_final_test_accuracy": np.full(n_events, np.nan),
        }
        self.epochs: dict[str, np.ndarray] = {k: np.full(n_epochs, np.nan) for k in EPOCH_VARS}
        self._written: dict[str, np.ndarray] = {}  # the tables as last handed to the writer

    def add_lines(self, n_lines: int) -> None:
        """The extra lines' event tables (``line_value``, ``line_eligible``)."""
        n_events, n_layers = self.events["event_pruned"].shape
        shape = (n_events, n_lines, n_layers)
        self.events.update(
            line_value=np.full(shape, np.nan), line_eligible=np.full(shape, -1, np.int64)
        )

    def grow(self, n_events: int, n_epochs: int) -> None:
        """Room for ``n_events`` events and ``n_epochs`` epochs (an open timeline), the new rows
        holding each table's fill value."""
        for table, n in ((self.events, n_events), (self.epochs, n_epochs)):
            for k, v in table.items():
                if len(v) < n:
                    fill = np.full((n - len(v), *v.shape[1:]), _FILLS.get(v.dtype.kind), v.dtype)
                    table[k] = np.concatenate([v, fill])

    def set_event(self, index: int, values: dict[str, Any]) -> None:
        """Event ``index``'s values (names of :attr:`events`; the line tables as lists by line)."""
        for k, v in values.items():
            if k in ("line_value", "line_eligible"):
                for j, row in enumerate(v):
                    self.events[k][index, j] = row
            else:
                self.events[k][index] = v

    def set_epoch(self, index: int, metrics: dict[str, float]) -> None:
        """Epoch ``index``'s metrics (those of :data:`EPOCH_VARS` in ``metrics``; an open
        timeline's epoch coordinates too)."""
        for k in self.epochs:
            if k in metrics:
                self.epochs[k][index] = metrics[k]

    def cut(self, n_events: int, n_epochs: int) -> None:
        """Keep the first ``n_events`` events and ``n_epochs`` epochs."""
        self.events = {k: v[:n_events] for k, v in self.events.items()}
        self.epochs = {k: v[:n_epochs] for k, v in self.epochs.items()}

    def write(self) -> None:
        """Hand the tables that changed since they were last handed over to the writer (each
        rewritten whole; a flush at an epoch's end and another at close used to rewrite all of
        them twice)."""
        last = self._written
        tables = {
            k: v.copy()  # frozen for the writer
            for k, v in (*self.events.items(), *self.epochs.items())
            if k not in last or not _same(last[k], v)
        }
        if tables:
            store = self.out.store
            self.out.submit(lambda: [store.write_whole(k, v) for k, v in tables.items()])
            # only once handed over: Ctrl-C may interrupt a submit waiting on a full queue
            last.update(tables)

    def state_dict(self) -> dict[str, Any]:
        """Copies of both tables."""
        return {
            "events": {k: v.copy() for k, v in self.events.items()},
            "epochs": {k: v.copy() for k, v in self.epochs.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (the tables of a checkpoint)."""
        self.events, self.epochs = state["events"], state["epochs"]


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Bitwise equal, shape and dtype included (so -0.0 is not 0.0, and NaN is NaN)."""
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()
