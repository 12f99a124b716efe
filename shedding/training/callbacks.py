"""Standard callbacks: keep pruned weights at zero, evaluate per epoch, save checkpoints, show
progress."""

from __future__ import annotations

from collections.abc import Callable

import torch

from shedding import distributed
from shedding.data.loader import BatchLoader
from shedding.pruning.masks import Masks
from shedding.training.loop import Callback, TrainState, evaluate


class MaskCallback(Callback):
    """Pruned weights stay exactly zero: gradients are masked before each step and weights after it.

    With the gradient of a pruned weight at zero (and the weight itself zero), SGD's weight-decay
    term and momentum buffer and Adam's moments stay zero for it, so the optimizer state never
    revives it.

    Under torchrun every rank takes rank 0's masks at the start (they are computed from identical
    weights with a seeded generator, so they should agree anyway; this makes sure).
    """

    def __init__(self, params: dict[str, torch.nn.Parameter], masks: Masks) -> None:
        self.params = params
        self.masks = {k: masks[k].to(device=p.device, dtype=p.dtype) for k, p in params.items()}

    @torch.no_grad()
    def on_train_start(self, state: TrainState) -> None:
        if distributed.active():
            for m in self.masks.values():
                torch.distributed.broadcast(m, src=0)
        for (
            k,
            p,
        ) in self.params.items():  # weights start masked, so weight decay never fills momentum
            p.mul_(self.masks[k])

    def before_optimizer_step(self, state: TrainState) -> None:
        for k, p in self.params.items():
            if p.grad is not None:
                p.grad.mul_(self.masks[k])

    @torch.no_grad()
    def on_step_end(self, state: TrainState) -> None:
        for k, p in self.params.items():
            p.mul_(self.masks[k])


class EvalCallback(Callback):
    """At each epoch end: test accuracy/loss and the running training accuracy/loss into
    ``state.metrics``."""

    def __init__(self, test_loader: BatchLoader) -> None:
        self.test_loader = test_loader
        self._reset()

    def _reset(self) -> None:
        # Running sums stay on the device: no host sync per step.
        self._correct: torch.Tensor | float = 0.0
        self._loss: torch.Tensor | float = 0.0
        self._n = 0

    def on_step_end(self, state: TrainState) -> None:
        self._correct = self._correct + state.batch_correct
        self._loss = self._loss + state.loss.float() * state.batch_size
        self._n += state.batch_size

    def on_epoch_end(self, state: TrainState) -> None:
        if not distributed.is_main():  # only rank 0 records; the others have the same weights
            self._reset()
            return
        acc, loss = evaluate(state.model, self.test_loader)
        state.metrics.update(
            test_accuracy=acc,
            test_loss=loss,
            train_accuracy=float(self._correct) / max(self._n, 1),
            train_loss=float(self._loss) / max(self._n, 1),
        )
        self._reset()


class CheckpointCallback(Callback):
    """Keeps copies of the model state at the given step counts (0 = before training)."""

    def __init__(
        self, steps: set[int], sink: Callable[[int, dict[str, torch.Tensor]], None]
    ) -> None:
        self.steps = set(steps)
        self.sink = sink

    def _save(self, state: TrainState) -> None:
        if state.step in self.steps:
            self.sink(
                state.step,
                {k: v.detach().clone().cpu() for k, v in state.model.state_dict().items()},
            )

    def on_train_start(self, state: TrainState) -> None:
        self._save(state)

    def on_step_end(self, state: TrainState) -> None:
        self._save(state)


class ProgressCallback(Callback):
    """Advances a progress callable by one per step (the CLI passes a rich progress bar)."""

    def __init__(self, advance: Callable[[int], None]) -> None:
        self.advance = advance

    def on_step_end(self, state: TrainState) -> None:
        self.advance(1)
