"""The recorder: a training callback that writes a run's timeline into its :class:`RunStore`.

The experiment tells it when a phase starts (:meth:`Recorder.begin_phase`) and when a prune event
happens (:meth:`Recorder.begin_event`); the training loop calls its hooks. Per-step values are staged on
the device and moved to the host once per chunk; every array is written in whole chunks.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from shedding.pruning.masks import flat
from shedding.recording.layout import Layer, Timeline
from shedding.recording.shed_counter import ShedCounter
from shedding.recording.store import RunStore
from shedding.training.loop import Callback, TrainState

EPOCH_VARS = ("train_accuracy", "train_loss", "test_accuracy", "test_loss")


class Recorder(Callback):
    """Writes loss, LR, shed crossings, magnitude snapshots, events and epoch metrics."""

    def __init__(self, store: RunStore, layers: list[Layer], timeline: Timeline,
                 params: dict[str, torch.nn.Parameter], magnitude_dtype: str, device: torch.device) -> None:
        self.store = store
        self.tl = timeline
        self.params = params
        self.np_dtype = np.dtype(magnitude_dtype)
        self.device = device
        layer_ids = torch.cat([torch.full((layer.size,), i, dtype=torch.int64)
                               for i, layer in enumerate(layers)]).to(device)
        self.counter = ShedCounter(layer_ids, len(layers))
        self.n_layers = len(layers)
        self._record_set = {int(s): i for i, s in enumerate(timeline.record_steps)}
        self._event_steps = set(int(s) for s in timeline.event_step)
        self.w_loss = store.writer("loss")
        self.w_lr = store.writer("lr")
        self.w_counts = [store.writer(n) for n in ("shed_count", "shed_events", "recover_events")]
        self.w_mag = store.writer("magnitude") if len(timeline.record_steps) else None
        self.w_hist = store.writer("magnitude_hist") if len(timeline.hist_steps) else None
        self._hist_set = {int(s): i for i, s in enumerate(timeline.hist_steps)}
        if self.w_hist is not None:
            lo = float(store.group["hist_bin_lo"][0])
            hi = float(store.group["hist_bin_hi"][-1])
            self._hist = (lo, store.group["hist_bin"].shape[0] / (hi - lo), store.group["hist_bin"].shape[0])
        self._staged_loss: list[torch.Tensor] = []
        self._staged_counts: list[torch.Tensor] = []
        self._staged_lr: list[float] = []
        self.step_base = 0
        self.epoch_index = 0
        self.phase = "retrain"
        self.counting = False
        n_ev, n_ep = timeline.n_events, len(timeline.epoch)
        self.events: dict[str, np.ndarray] = {
            "event_round": np.full(n_ev, -1, np.int16),
            "event_sparsity": np.full(n_ev, np.nan), "event_tau": np.full(n_ev, np.nan),
            "event_line": np.full(n_ev, np.nan),
            "event_pruned": np.full((n_ev, self.n_layers), -1, np.int64),
            "event_survivors": np.full((n_ev, self.n_layers), -1, np.int64),
            "event_eligible": np.full((n_ev, self.n_layers), -1, np.int64),
            "event_below": np.full((n_ev, self.n_layers), -1, np.int64),
            "event_test_accuracy": np.full(n_ev, np.nan),
            "event_final_test_accuracy": np.full(n_ev, np.nan),
        }
        self.epochs: dict[str, np.ndarray] = {k: np.full(n_ep, np.nan) for k in EPOCH_VARS}
        self.last_step_written: int | None = None
        self.flush_seconds = 0.0

    # ------------------------------------------------------------------ driven by the experiment
    def begin_phase(self, phase: str, step_base: int, epoch_index: int) -> None:
        """The next ``train`` call's step k is global step ``step_base + k``; its epochs start at index."""
        self.phase = phase
        self.step_base = step_base
        self.epoch_index = epoch_index
        self.counting = phase == "retrain"

    @torch.no_grad()
    def begin_event(self, index: int, round: int, masks: dict[str, torch.Tensor], pre_prune: torch.Tensor,
                    pruned_per_layer: np.ndarray, sparsity: float, tau: float, line: float,
                    test_accuracy: float) -> None:
        """Record prune event ``index`` from the model's current (post-prune, start-of-round) weights."""
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
        self.store.write_rows("mask", index, alive.bool().cpu().numpy())
        self.store.write_rows("pre_prune_magnitude", index, pre_prune.float().cpu().numpy())
        self._write_tables()
        self._snapshot(step, mag)

    def end_round(self, index: int, test_accuracy: float) -> None:
        """Record the test accuracy at the end of event ``index``'s retraining round."""
        self.events["event_final_test_accuracy"][index] = test_accuracy
        self._write_tables()

    # ------------------------------------------------------------------ callback hooks
    def _wants(self, g: int) -> bool:
        return (g in self._record_set or g in self._hist_set) and g not in self._event_steps

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
        else:
            self._staged_counts.append(torch.zeros(3, self.n_layers, dtype=torch.int64, device=self.device))
        self.last_step_written = g
        if self._wants(g):
            self._snapshot(g, mag if mag is not None else self._flat_abs())
        end = self.w_lr.pos + len(self._staged_lr)
        if end % self.w_lr.chunk == 0 or end == self.w_lr.rows:
            self._drain_steps()  # a step chunk is complete: move it to the host and write it

    def on_epoch_end(self, state: TrainState) -> None:
        for k in EPOCH_VARS:
            if k in state.metrics:
                self.epochs[k][self.epoch_index] = state.metrics[k]
        self.epoch_index += 1
        self.flush()

    # ------------------------------------------------------------------ writing
    def _flat_abs(self) -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1) for p in self.params.values()]).abs().float()

    @torch.no_grad()
    def _histogram(self, step: int, mag: torch.Tensor) -> None:
        """Per-layer counts of non-zero |w| in equal log10 bins, on the device; one bincount for all layers."""
        if self.w_hist is None or step not in self._hist_set or self._hist_set[step] < self.w_hist.pos:
            return
        lo, scale, nb = self._hist
        nz = mag > 0
        bins = ((torch.log10(mag[nz]) - lo) * scale).floor().clamp_(0, nb - 1).to(torch.int64)
        counts = torch.bincount(bins + self.counter.layer_ids[nz] * nb, minlength=self.n_layers * nb)
        self.w_hist.append(counts.reshape(1, self.n_layers, nb).to(torch.int32).cpu().numpy())

    def _snapshot(self, step: int, mag: torch.Tensor) -> None:
        self._histogram(step, mag)
        if self.w_mag is None or step not in self._record_set:
            return
        idx = self._record_set[step]
        if idx < self.w_mag.pos:
            return  # already on disk (a resumed run starts at a snapshot it wrote before)
        if idx != self.w_mag.pos:
            raise RuntimeError(f"snapshot for step {step} out of order (expected row {self.w_mag.pos})")
        self.w_mag.append(mag.to("cpu").numpy().astype(self.np_dtype, copy=False)[None])

    def _drain_steps(self) -> None:
        if not self._staged_lr:
            return
        t0 = time.perf_counter()
        self.w_loss.append(torch.stack(self._staged_loss).cpu().numpy())
        self.w_lr.append(np.asarray(self._staged_lr, dtype=np.float64))
        counts = torch.stack(self._staged_counts).cpu().numpy().astype(np.int32)  # (n, 3, L)
        for j, w in enumerate(self.w_counts):
            w.append(counts[:, j, :])
        self._staged_loss, self._staged_lr, self._staged_counts = [], [], []
        self.flush_seconds += time.perf_counter() - t0

    def _write_tables(self) -> None:
        for k, v in self.events.items():
            self.store.write_whole(k, v)
        for k, v in self.epochs.items():
            self.store.write_whole(k, v)

    def committed_step(self) -> int | None:
        """Largest step up to which every per-step row and snapshot is on disk."""
        if self.w_lr.pos == 0:
            return None
        frontier = int(self.tl.steps[self.w_lr.pos - 1])
        for w, steps in ((self.w_mag, self.tl.record_steps), (self.w_hist, self.tl.hist_steps)):
            if w is not None and w.pos < len(steps):
                frontier = min(frontier, int(steps[w.pos]) - 1)
        return frontier

    def flush(self) -> None:
        """Write everything staged (partial chunks whole) and update the committed step."""
        t0 = time.perf_counter()
        self._drain_steps()
        for w in (self.w_loss, self.w_lr, *self.w_counts, self.w_mag, self.w_hist):
            if w is not None:
                w.flush()
        self._write_tables()
        self.store.set_attrs(last_committed_step=self.committed_step())
        self.flush_seconds += time.perf_counter() - t0

    # ------------------------------------------------------------------ resume
    def state_dict(self) -> dict[str, Any]:
        """What a resumed run needs to continue recording bitwise as an uninterrupted one would."""
        return {"eligible": self.counter.eligible.cpu() if self.counter.eligible is not None else None,
                "prev_below": self.counter.prev_below.cpu() if self.counter.prev_below is not None else None,
                "line": self.counter.line, "epoch_index": self.epoch_index, "events": self.events,
                "epochs": self.epochs, "flush_seconds": self.flush_seconds}

    def load_state_dict(self, state: dict[str, Any], step: int) -> None:
        """Restore :meth:`state_dict` and put every writer just after global ``step``."""
        dev = self.device
        self.counter.eligible = state["eligible"].to(dev) if state["eligible"] is not None else None
        self.counter.prev_below = state["prev_below"].to(dev) if state["prev_below"] is not None else None
        self.counter.line = state["line"]
        self.epoch_index = state["epoch_index"]
        self.events, self.epochs = state["events"], state["epochs"]
        self.flush_seconds = state["flush_seconds"]
        self._staged_loss, self._staged_lr, self._staged_counts = [], [], []
        step_rows = int(np.searchsorted(self.tl.steps, step, side="right"))
        for w in (self.w_loss, self.w_lr, *self.w_counts):
            w.seek(step_rows)
        for w, steps in ((self.w_mag, self.tl.record_steps), (self.w_hist, self.tl.hist_steps)):
            if w is not None:
                w.seek(int(np.searchsorted(steps, step, side="right")))

    def close(self, status: str, **attrs: Any) -> None:
        """Flush, set the run status (complete, failed, interrupted) and release the lock."""
        try:
            self.flush()
        finally:
            self.store.set_attrs(status=status, finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"), **attrs)
            self.store.release()
