"""The minimal training loop (OpenLTH style): everything else happens in callbacks.

``train`` runs ``num_steps`` optimizer steps. Step ``k`` (0-based) uses batch ``k % len(loader)`` of
data epoch ``data_epoch_offset + k // len(loader)`` and learning rate ``schedule(k)``. Callbacks see
a :class:`TrainState` at fixed points; masking, evaluation and recording are all callbacks.

Under torchrun (a loader with ``world_size`` > 1) the model runs in DistributedDataParallel on this
rank's shard of each global batch. Each rank's loss is its shard's summed loss times ``world_size /
n`` (``n`` the global batch), so DDP's average over the ranks is the gradient of the global batch's
mean loss, also when the last batch splits unevenly. The loss and accuracy the callbacks see are
summed over the ranks: the global batch's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from shedding import distributed, interrupts
from shedding.data.loader import BatchLoader
from shedding.training.schedules import LRSchedule


class DivergedError(RuntimeError):
    """The training loss became NaN or infinite; the message names the phase and the step."""


@dataclass
class TrainState:
    """What callbacks can read (and, for ``metrics``, write)."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    num_steps: int
    iterations_per_epoch: int
    phase: str = "train"
    round: int = -1
    step: int = 0  # optimizer steps completed in this call of train()
    epoch: int = 0  # completed epochs in this call of train()
    lr: float = 0.0
    loss: torch.Tensor | None = None
    batch_correct: torch.Tensor | None = None
    batch_size: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)


class Callback:
    """Base class: override any hook. Hooks run in list order."""

    def on_train_start(self, state: TrainState) -> None:
        """Before the first step."""

    def before_optimizer_step(self, state: TrainState) -> None:
        """After ``backward()``, before ``optimizer.step()`` (gradients are available)."""

    def on_step_end(self, state: TrainState) -> None:
        """After ``optimizer.step()``; ``state.step`` counts the steps done so far."""

    def on_epoch_end(self, state: TrainState) -> None:
        """After each complete epoch; ``state.epoch`` counts the epochs done so far."""

    def on_train_end(self, state: TrainState) -> None:
        """After the last step."""


def train(
    model: torch.nn.Module,
    loader: BatchLoader,
    optimizer: torch.optim.Optimizer,
    schedule: LRSchedule,
    num_steps: int,
    callbacks: Sequence[Callback] = (),
    *,
    phase: str = "train",
    round: int = -1,
    data_epoch_offset: int = 0,
    mixed_precision: bool = False,
    start_step: int = 0,
) -> TrainState:
    """Train ``model`` for ``num_steps`` steps with cross-entropy; return the final state.

    ``start_step`` (a multiple of the epoch length) resumes a run: the steps before it count as
    done, so the learning rate and the data order continue exactly where an uninterrupted run would
    be.
    """
    ipe = len(loader)
    if start_step % ipe:
        raise ValueError(
            f"start_step {start_step} is not at an epoch boundary (epochs of {ipe} steps)"
        )
    state = TrainState(
        model,
        optimizer,
        num_steps,
        ipe,
        phase=phase,
        round=round,
        step=start_step,
        epoch=start_step // ipe,
    )
    world = loader.world_size
    net = distributed.wrap(model) if world > 1 else model  # callbacks see the plain model
    step = _Step(net, loader, optimizer, schedule, callbacks, mixed_precision)
    for cb in callbacks:
        cb.on_train_start(state)
    model.train()
    finite = _FiniteWatch()
    while state.step < num_steps:
        batches = 0
        for x, y in loader.epoch(data_epoch_offset + state.epoch):
            step(state, x, y, batches)
            batches += 1
            finite.step(state)
            if world == 1:
                # Ctrl-C and SIGTERM stop here, between steps (torchrun: at the epoch's end)
                interrupts.check()
            if state.step >= num_steps:
                break
        if batches < ipe:
            break  # a partial last epoch: no epoch-end hooks
        state.epoch += 1
        finite.finish(state)
        for cb in callbacks:
            cb.on_epoch_end(state)
        if world > 1 and distributed.stop_requested(interrupts.requested() is not None):
            # every rank stops here
            raise KeyboardInterrupt("a stop was requested on one of the ranks")
        model.train()
    finite.finish(state)
    for cb in callbacks:
        cb.on_train_end(state)
    return state


@dataclass
class _Step:
    """One optimizer step of :func:`train` on a batch, then the step-end hooks."""

    net: torch.nn.Module  # the model, wrapped in DistributedDataParallel under torchrun
    loader: BatchLoader
    optimizer: torch.optim.Optimizer
    schedule: LRSchedule
    callbacks: Sequence[Callback]
    mixed_precision: bool

    def __call__(self, state: TrainState, x: torch.Tensor, y: torch.Tensor, batch: int) -> None:
        """Train on ``(x, y)``, the epoch's ``batch``-th batch."""
        loader, optimizer, world = self.loader, self.optimizer, self.loader.world_size
        device_type = loader.device.type
        lr = self.schedule(state.step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        amp = self.mixed_precision and device_type == "cuda"
        ctx = torch.autocast(device_type, dtype=torch.bfloat16) if amp else contextlib.nullcontext()
        with ctx:
            out = self.net(x)
            loss = (
                F.cross_entropy(out, y) if world == 1 else F.cross_entropy(out, y, reduction="sum")
            )
        n = loader.global_batch_size(batch)
        optimizer.zero_grad(set_to_none=True)
        (loss if world == 1 else loss * (world / n)).backward()
        for cb in self.callbacks:
            cb.before_optimizer_step(state)
        optimizer.step()
        state.step += 1
        state.lr = lr
        correct = (out.detach().argmax(1) == y).sum()
        if world > 1:
            loss, correct = distributed.batch_totals(loss, correct)
            loss = loss / n
        state.loss = loss.detach()
        state.batch_correct = correct
        state.batch_size = n
        for cb in self.callbacks:
            cb.on_step_end(state)


class _FiniteWatch:
    """A non-finite loss stops training. On the CPU at once. On CUDA without a host sync inside a
    step: each step's flag (the first bad step, 0 while all are finite) is copied into pinned memory
    without blocking and read once that copy is done, a step or two later; elsewhere, and in any
    case, it is read at the epoch's end."""

    def __init__(self) -> None:
        self.flag: torch.Tensor | None = None
        self.host: torch.Tensor | None = None
        self.copied: Any = None  # the CUDA event after the last copy into ``host``

    def step(self, state: TrainState) -> None:
        """Check (or, on CUDA, queue the check of) the step's loss."""
        loss = state.loss
        if loss is None:
            return
        if loss.device.type == "cpu":
            if not bool(torch.isfinite(loss)):
                raise DivergedError(_diverged(state, state.step, float(loss)))
            return
        bad = torch.where(
            torch.isfinite(loss),
            torch.zeros((), dtype=torch.int64, device=loss.device),
            torch.full((), state.step, dtype=torch.int64, device=loss.device),
        )
        self.flag = bad if self.flag is None else torch.where(self.flag > 0, self.flag, bad)
        if loss.device.type != "cuda" or not (self.copied is None or self.copied.query()):
            return
        if self.copied is not None and (first := int(self.host)) > 0:
            raise DivergedError(_diverged(state, first, float("nan")))
        if self.host is None:
            self.host = torch.zeros((), dtype=torch.int64, pin_memory=True)
        self.host.copy_(self.flag, non_blocking=True)
        self.copied = torch.cuda.Event()
        self.copied.record()

    def finish(self, state: TrainState) -> None:
        """At an epoch's or the phase's end (a sync is fine there)."""
        if self.flag is not None and (first := int(self.flag)) > 0:
            raise DivergedError(_diverged(state, first, float("nan")))


def _diverged(state: TrainState, step: int, value: float) -> str:
    what = f"became {value}" if value == value else "became NaN or infinite"
    phase = (
        "original training" if state.phase == "pretrain" else f"{state.phase} (round {state.round})"
    )
    return (
        f"the training loss {what} at step {step} of {phase}: the run diverged; "
        "lower the learning rate"
    )


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader: BatchLoader) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of ``model`` in eval mode over one pass of ``loader``."""
    was_training = model.training
    model.eval()
    correct = torch.zeros((), device=loader.device)
    loss = torch.zeros((), device=loader.device)
    n = 0
    for x, y in loader.epoch(0):
        out = model(x).float()
        loss += F.cross_entropy(out, y, reduction="sum")
        correct += (out.argmax(1) == y).sum()
        n += int(y.shape[0])
        if not distributed.active():  # torchrun: the ranks stop together at an epoch's end
            interrupts.check()
    model.train(was_training)
    return float(correct) / n, float(loss) / n
