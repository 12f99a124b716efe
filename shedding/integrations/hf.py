"""Record a Hugging Face ``Trainer`` run with :func:`shedding.watch`: :class:`ShedTrainerCallback`.

::

    from shedding.integrations.hf import ShedTrainerCallback

    with ShedTrainerCallback("runs/a.zarr", seed=0, condition="gmp-0.5") as shed:
        trainer = Trainer(model=model, args=args, train_dataset=data, callbacks=[shed])
        trainer.train()

Needs ``transformers`` (``pip install shedding[hf]``); ``import shedding`` does not. What is
recorded is in docs/integrations.md.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from shedding.integrations.metric_names import epoch_metrics
from shedding.integrations.session import WatchSession, close_status
from shedding.watching.event_masks import Masks
from shedding.watching.watch import Watch


class ShedTrainerCallback(TrainerCallback):
    """Records ``Trainer.train()`` into a run store at ``path``: each optimizer step, the loss
    the trainer logs, the epochs' metrics, and a prune event whenever ``torch.nn.utils.prune``
    masks change between steps (or at :meth:`prune_event`).

    ``seed``, ``condition`` and ``control`` are what ``shedding analyze`` groups runs and matches
    controls by; other keyword arguments go to :func:`shedding.watch`. With
    ``close_at_train_end=False`` the store stays open after ``train()`` returns, so that pruning
    between two ``train()`` calls is one run; :meth:`close` (or leaving the ``with`` block) ends it.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        seed: int = 0,
        condition: str = "watched",
        control: bool | None = None,
        close_at_train_end: bool = True,
        **watch_kwargs: Any,
    ) -> None:
        kwargs = {"seed": seed, "condition": condition, "control": control, **watch_kwargs}
        self.session = WatchSession(path, kwargs)
        self.close_at_train_end = close_at_train_end
        self._losses: list[float] = []  # the training losses logged in this epoch
        self._evaluated: dict[str, float] = {}  # test_* metrics logged in this epoch
        self._epoch_ended = False  # recorded at the next step, event or end (evaluation follows)

    @property
    def watch(self) -> Watch | None:
        """The watched run (None before training starts, and on processes other than the main)."""
        return self.session.watch

    def prune_event(
        self,
        masks: Masks | str | Path | None = None,
        sparsity: float | None = None,
        test_accuracy: float = math.nan,
    ) -> None:
        """Ask for a prune event (see :meth:`shedding.watching.watch.Watch.prune_event`): for
        pruning this callback does not notice by itself (a change of ``torch.nn.utils.prune``
        masks it does) or for a control's event (``prune_event(sparsity=0.5)``). It is recorded
        before the next step, at the end of training or at the next ``train()``, after the row
        of an epoch that just ended."""
        self.session.request_event(masks, sparsity, test_accuracy)

    def close(self, status: str = "complete") -> None:
        """End the run: on success the last epoch and any pending event are recorded; then the
        store is closed with ``status``."""
        if status == "complete":
            self._record_epoch()
        self.session.close(status)

    def __enter__(self) -> ShedTrainerCallback:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, *_: Any
    ) -> None:
        self.close(close_status(error))

    # ------------------------------------------------------------------ trainer events
    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        """Start watching the model (or, on a later ``train()``, record pruning made since)."""
        if not state.is_world_process_zero:
            return
        model: torch.nn.Module = kw["model"]
        if self.session.watch is None:
            self.session.start(model)
        else:
            self.session.sync()
        self.session.attach_model(model)

    def on_step_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        """Record the last epoch and pruning made since the last step."""
        self._record_epoch()
        self.session.sync()

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kw: Any,
    ) -> None:
        """The logged training loss becomes the last step's loss (HF logs the mean since its
        previous log: every step with ``logging_steps=1``); evaluation metrics are kept for the
        epoch."""
        logs = logs or {}
        if "loss" in logs:
            loss = float(logs["loss"])
            self.session.log_loss(loss)
            self._losses.append(loss)
        found = epoch_metrics(logs)
        self._evaluated.update({k: v for k, v in found.items() if k.startswith("test_")})

    def on_epoch_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        """The epoch ended; it is recorded once its evaluation (which follows) is logged."""
        self._epoch_ended = True

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        """Record what is pending and stop counting steps; close unless told to stay open."""
        self._record_epoch()
        self.session.sync()
        self.session.detach()
        if self.close_at_train_end:
            self.close("complete")

    def _record_epoch(self) -> None:
        """Record an ended epoch: ``train_loss`` is the mean of the losses logged in it, the
        ``test_*`` metrics the last evaluation logged in it."""
        if not self._epoch_ended:
            return
        metrics = dict(self._evaluated)
        if self._losses:
            metrics["train_loss"] = sum(self._losses) / len(self._losses)
        self.session.epoch(metrics)
        self._losses, self._evaluated, self._epoch_ended = [], {}, False
