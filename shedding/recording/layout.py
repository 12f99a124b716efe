"""The store's timeline: every coordinate of a run is known before it starts.

Step convention (docs/store-format.md): step ``s`` is the state after ``s`` retraining updates.
Step 0 is the state right after the first prune event, before any retraining update. Round ``r``
retrains over steps ``(b_r, b_r + n_r]`` after its prune event at step ``b_r`` (``n_r = t`` and
``b_r = r * t`` for one-shot and iterative pruning; gradual and cascade-aware schedules have shorter
rounds between events).
Per-step quantities at step ``s`` describe update ``s`` and the state after it, so they run
from 1. When the original training is recorded too, its update ``j`` (1..T) is step ``j - T`` (so
-T+1..0) and its snapshots are at ``-T, ...``, below 0. A snapshot at an event step holds the
post-prune weights; the weights the event pruned are in ``pre_prune_magnitude``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Layer:
    """One prunable tensor: its parameter name, shape and place in the flat ``weight`` index."""

    name: str
    shape: tuple[int, ...]
    start: int

    @property
    def size(self) -> int:
        """Weights in the layer."""
        return int(np.prod(self.shape))


@dataclass(frozen=True)
class Timeline:
    """Step, snapshot, histogram, epoch and event coordinates of one run."""

    steps: np.ndarray  # every per-step row
    step_round: np.ndarray
    record_steps: np.ndarray  # magnitude snapshot steps (empty: no snapshots)
    record_round: np.ndarray
    epoch: np.ndarray  # epoch numbers (cumulative; <= 0 for original training)
    epoch_step: np.ndarray
    epoch_round: np.ndarray
    event_step: np.ndarray
    T: int
    t: int
    iterations_per_epoch: int
    hist_steps: np.ndarray = field(
        default_factory=lambda: np.zeros(0, dtype=np.int64)
    )  # histogram steps
    hist_round: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int16))
    sample_steps: np.ndarray = field(
        default_factory=lambda: np.zeros(0, dtype=np.int64)
    )  # sampled-subset steps
    sample_round: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int16))

    @property
    def step_rows(self) -> dict[str, int]:
        """The rows of the per-step and periodic dimensions (what a growable store is made with
        room for: :func:`~shedding.recording.open_recorder.capacity`)."""
        return {
            "step": len(self.steps),
            "record_step": len(self.record_steps),
            "hist_step": len(self.hist_steps),
            "sample_step": len(self.sample_steps),
        }

    @property
    def n_events(self) -> int:
        """Prune events in the timeline."""
        return len(self.event_step)


def _periodic_steps(
    T: int, starts: np.ndarray, lengths: np.ndarray, every: int, record_pretrain: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Steps every ``every`` steps of each round, each event step and the last step (none when
    ``every`` is 0), and their rounds."""
    if every <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int16)
    rec: set[int] = set(range(-T, 0, every)) if record_pretrain else set()
    for b, n in zip(starts, lengths, strict=True):
        rec.update(range(int(b), int(b) + int(n), every))
        rec.add(int(b))
    rec.add(int(starts[-1] + lengths[-1]))
    steps = np.array(sorted(rec), dtype=np.int64)
    # A row's round: the last event at or before it (an event step belongs to the round it starts).
    rnd = np.where(
        steps < 0, -1, np.clip(np.searchsorted(starts, steps, side="right") - 1, 0, None)
    )
    return steps, rnd.astype(np.int16)


def build_timeline(
    T: int,
    t: int,
    rounds: int,
    every: int,
    iterations_per_epoch: int,
    record_pretrain: bool,
    hist_every: int = 0,
    sample_every: int = 0,
    lengths: list[int] | None = None,
) -> Timeline:
    """Every coordinate for ``rounds`` rounds of ``t`` retraining steps (or rounds of the given
    ``lengths``; optionally T original-training steps before): magnitude snapshots every ``every``
    steps, per-layer histograms every ``hist_every`` steps and sampled weights every
    ``sample_every`` steps (0: none)."""
    ipe = iterations_per_epoch
    lens = np.asarray(lengths if lengths is not None else [t] * rounds, dtype=np.int64)
    events = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    steps: list[np.ndarray] = []
    step_round: list[np.ndarray] = []
    ep_step: list[int] = []
    ep_round: list[int] = []
    n_pre_epochs = 0
    if record_pretrain:
        steps.append(np.arange(-T + 1, 1))
        step_round.append(np.full(T, -1))
        n_pre_epochs = T // ipe
        ep_step += [-T + e * ipe for e in range(1, n_pre_epochs + 1)]
        ep_round += [-1] * n_pre_epochs
    for r, (b, n) in enumerate(zip(events, lens, strict=True)):
        steps.append(np.arange(b + 1, b + n + 1))
        step_round.append(np.full(int(n), r))
        ep_step += [int(b) + e * ipe for e in range(1, int(n) // ipe + 1)]
        ep_round += [r] * (int(n) // ipe)
    record_steps, record_round = _periodic_steps(T, events, lens, every, record_pretrain)
    hist_steps, hist_round = _periodic_steps(T, events, lens, hist_every, record_pretrain)
    sample_steps, sample_round = _periodic_steps(T, events, lens, sample_every, record_pretrain)
    n_ep = len(ep_step)
    return Timeline(
        steps=np.concatenate(steps).astype(np.int64),
        step_round=np.concatenate(step_round).astype(np.int16),
        record_steps=record_steps,
        record_round=record_round,
        epoch=np.arange(1 - n_pre_epochs, n_ep - n_pre_epochs + 1, dtype=np.int64)[:n_ep],
        epoch_step=np.array(ep_step, dtype=np.int64),
        epoch_round=np.array(ep_round, dtype=np.int16),
        event_step=events,
        T=T,
        t=t,
        iterations_per_epoch=ipe,
        hist_steps=hist_steps,
        hist_round=hist_round,
        sample_steps=sample_steps,
        sample_round=sample_round,
    )


def sample_weights(layers: list[Layer], per_layer: int, seed: int) -> np.ndarray:
    """Flat indices of a fixed random subset: ``per_layer`` weights of each layer (all of a smaller
    one), sorted."""
    rng = np.random.default_rng(seed)
    out = [
        layer.start
        + np.sort(rng.choice(layer.size, size=min(per_layer, layer.size), replace=False))
        for layer in layers
    ]
    return np.concatenate(out).astype(np.int64) if out else np.zeros(0, dtype=np.int64)


def build_layers(named_shapes: list[tuple[str, tuple[int, ...]]]) -> list[Layer]:
    """Layers in order with their start offsets in the flat weight index."""
    out, start = [], 0
    for name, shape in named_shapes:
        layer = Layer(name, tuple(int(s) for s in shape), start)
        out.append(layer)
        start += layer.size
    return out
