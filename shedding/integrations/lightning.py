"""Record a Lightning fit with :func:`shedding.watch`: :class:`ShedCallback`.

::

    from lightning.pytorch import Trainer
    from lightning.pytorch.callbacks import ModelPruning
    from shedding.integrations.lightning import ShedCallback

    pruning = ModelPruning("l1_unstructured", amount=0.5, apply_pruning=lambda epoch: epoch == 5)
    trainer = Trainer(max_epochs=20, callbacks=[pruning, ShedCallback("runs/a.zarr", seed=0)])

Needs ``lightning`` (``pip install shedding[lightning]``); ``import shedding`` does not. What is
recorded, and why the order of the callbacks does not matter, is in docs/integrations.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback, ModelPruning

from shedding.integrations.metric_names import epoch_metrics
from shedding.integrations.session import WatchSession, close_status
from shedding.watching.event_masks import Masks
from shedding.watching.watch import Watch

WRAPPED = ("apply_pruning", "make_pruning_permanent")


class ShedCallback(Callback):
    """Records the fit into a run store at ``path``: each optimizer step (of the first
    optimizer), the training loss of each step, the epochs' metrics, and a prune event each time
    a ``ModelPruning`` callback prunes or ``torch.nn.utils.prune`` masks change.

    ``seed``, ``condition`` and ``control`` are what ``shedding analyze`` groups runs and matches
    controls by; other keyword arguments go to :func:`shedding.watch` (``profile``, ``every``,
    ``params``, ``dtype``, ``overwrite`` ...).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        seed: int = 0,
        condition: str = "watched",
        control: bool | None = None,
        **watch_kwargs: Any,
    ) -> None:
        super().__init__()
        kwargs = {"seed": seed, "condition": condition, "control": control, **watch_kwargs}
        self.session = WatchSession(path, kwargs)
        self._loss: torch.Tensor | None = None
        self._validated = False
        self._wrapped: list[tuple[ModelPruning, dict[str, Any]]] = []

    @property
    def state_key(self) -> str:
        """One key per store, so that several of these callbacks can run in one trainer."""
        return self._generate_state_key(path=str(self.session.path))

    @property
    def watch(self) -> Watch | None:
        """The watched run (None before the fit starts, and on ranks other than zero)."""
        return self.session.watch

    def prune_event(
        self,
        masks: Masks | str | Path | None = None,
        sparsity: float | None = None,
        test_accuracy: float = math.nan,
    ) -> None:
        """Ask for a prune event (see :meth:`shedding.watching.watch.Watch.prune_event`), for
        pruning this callback does not notice by itself or for a control's event
        (``prune_event(sparsity=0.5)``). It is recorded before the next training step, or at the
        end of the epoch or of the fit, whichever comes first; call it from a hook of the fit."""
        self.session.request_event(masks, sparsity, test_accuracy)

    # ------------------------------------------------------------------ start
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Start watching the module, counting the steps of the trainer's first optimizer."""
        if not trainer.is_global_zero:
            return
        self.session.start(pl_module)
        if trainer.optimizers:
            self.session.attach(trainer.optimizers[0])
        for callback in trainer.callbacks:
            if isinstance(callback, ModelPruning):
                self._wrap(callback)

    def _wrap(self, pruning: ModelPruning) -> None:
        """Bracket the pruning calls of ``pruning`` (instance attributes, undone at the end)."""
        saved = {k: pruning.__dict__[k] for k in WRAPPED if k in pruning.__dict__}
        apply, permanent = pruning.apply_pruning, pruning.make_pruning_permanent
        session = self.session

        def apply_pruning(amount: int | float) -> None:
            session.before_pruning()
            apply(amount)
            session.after_pruning()

        def make_pruning_permanent(module: torch.nn.Module) -> None:
            session.sync()  # record a pending event while its mask buffers still exist
            permanent(module)

        pruning.apply_pruning = apply_pruning  # type: ignore[method-assign]
        pruning.make_pruning_permanent = make_pruning_permanent  # type: ignore[method-assign]
        self._wrapped.append((pruning, saved))

    def _unwrap(self) -> None:
        for pruning, saved in self._wrapped:
            for name in WRAPPED:
                if name in saved:
                    setattr(pruning, name, saved[name])
                else:
                    pruning.__dict__.pop(name, None)
        self._wrapped.clear()

    # ------------------------------------------------------------------ steps and epochs
    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        """Record a prune event made since the last step."""
        self.session.sync()

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        """The step's loss, kept on its device. Under automatic optimisation each micro-batch's
        ``loss`` output is already divided by ``accumulate_grad_batches``, so the sum over the
        micro-batches of an update is its mean loss; under manual optimisation the last one."""
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if isinstance(loss, torch.Tensor):
            loss = loss.detach()
            accumulate = pl_module.automatic_optimization and self._loss is not None
            self._loss = self._loss + loss if accumulate else loss
        if self.session.log_loss(self._loss):
            self._loss = None

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """A new epoch: no validation has run in it yet."""
        self._validated = False

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Validation ran in this epoch, so its metrics are this epoch's."""
        if not trainer.sanity_checking:
            self._validated = True

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """The epoch's metrics (validation ones only when validation ran in this epoch), then a
        prune event made at this epoch's end."""
        metrics = epoch_metrics(trainer.callback_metrics)
        if not self._validated:
            metrics = {k: v for k, v in metrics.items() if not k.startswith("test_")}
        self.session.epoch(metrics)
        self._loss = None
        self.session.sync()

    # ------------------------------------------------------------------ end
    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Record a prune event made at the last epoch's end."""
        self.session.sync()

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Close the store: complete."""
        self._unwrap()
        self.session.close("complete")

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        """Close the store: interrupted (Ctrl-C) or failed."""
        self._unwrap()
        self.session.close(close_status(exception))

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Close a store that neither the fit's end nor an exception closed."""
        self._unwrap()
        if self.session.active:
            self.session.close("failed")
