"""What the framework callbacks share: one :func:`shedding.watch` run that a callback starts when
training starts and closes when it ends, with steps counted by an optimizer hook and prune events
taken from pruning calls or from changed ``torch.nn.utils.prune`` masks.

A pruning call a callback wraps (Lightning's ``ModelPruning.apply_pruning``) is bracketed by
:meth:`WatchSession.before_pruning` (the weights the masks are computed from) and
:meth:`WatchSession.after_pruning`; the event itself is recorded at the next :meth:`sync`, which the
callbacks call before each training step and at the ends of epochs and of training. Waiting lets
code that runs right after the pruning (a lottery-ticket reset of the survivors) finish first, so
the event's weights are those retraining starts from, as in the built-in trainer.
"""

from __future__ import annotations

import math
import weakref
from pathlib import Path
from typing import Any

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from shedding.integrations.mask_changes import MaskTracker
from shedding.watching.event_masks import Masks
from shedding.watching.watch import Watch, watch
from shedding.watching.watched import WatchError

Weights = dict[str, torch.Tensor]


class WatchSession:
    """A watched run driven by a framework callback (see the module's docstring)."""

    def __init__(self, path: str | Path, watch_kwargs: dict[str, Any]) -> None:
        self.path = Path(path)
        self._kwargs = watch_kwargs
        self.watch: Watch | None = None
        self._tracker: MaskTracker | None = None
        self._hooks: list[Any] = []
        self._before: Weights | None = None
        self._pending = False
        self._request: dict[str, Any] = {}  # what request_event() asked for
        self._loggable = False  # a step was made since the last log, epoch or event
        self._events = 0
        self._round_accuracy: float | None = None
        self.closed = False

    # ------------------------------------------------------------------ start and steps
    def start(self, model: torch.nn.Module) -> Watch:
        """Start watching ``model`` (once: a callback records one run)."""
        if self.watch is not None:
            raise WatchError(
                f"this callback already recorded {self.path}; give each run its own callback"
            )
        self.watch = watch(model, self.path, **self._kwargs)
        self._tracker = MaskTracker(self.watch.weights)
        return self.watch

    @property
    def active(self) -> bool:
        """Whether a run is being recorded now."""
        return self.watch is not None and not self.closed

    def attach(self, optimizer: torch.optim.Optimizer) -> None:
        """Count each step of ``optimizer`` as a recorded step."""
        self._hooks.append(optimizer.register_step_post_hook(lambda opt, *_: self._stepped(opt)))

    def attach_model(self, model: torch.nn.Module) -> None:
        """Count each step of any optimizer that updates ``model``'s parameters (for frameworks
        that wrap their optimizer or do not hand it to callbacks)."""
        params = {id(p) for p in model.parameters()}
        updates: weakref.WeakKeyDictionary[torch.optim.Optimizer, bool] = (
            weakref.WeakKeyDictionary()
        )

        def hook(optimizer: torch.optim.Optimizer, *_: Any) -> None:
            if optimizer not in updates:
                groups = optimizer.param_groups
                updates[optimizer] = any(id(p) in params for g in groups for p in g["params"])
            if updates[optimizer]:
                self._stepped(optimizer)

        self._hooks.append(register_optimizer_step_post_hook(hook))

    def detach(self) -> None:
        """Stop counting steps."""
        for handle in self._hooks:
            handle.remove()
        self._hooks.clear()

    def _stepped(self, optimizer: torch.optim.Optimizer) -> None:
        if self.active:
            self.watch.step(lr=float(optimizer.param_groups[0]["lr"]))  # type: ignore[union-attr]
            self._loggable = True

    def log_loss(self, loss: torch.Tensor | float | None) -> bool:
        """If a step was made since the last call, epoch or event: set its loss (when given) and
        say True; else False (the loss belongs to a step still to come)."""
        if not (self.active and self._loggable):
            return False
        if loss is not None:
            self.watch.log(loss=loss)  # type: ignore[union-attr]
        self._loggable = False
        return True

    # ------------------------------------------------------------------ events
    def before_pruning(self) -> None:
        """A pruning call starts: keep the weights it computes its masks from."""
        if self.active and self._before is None:
            self._before = {
                w.name: w.original().detach().clone()
                for w in self.watch.weights  # type: ignore[union-attr]
            }

    def after_pruning(self) -> None:
        """A pruning call ended: its event is recorded at the next :meth:`sync`."""
        if self.active:
            self._pending = True

    def request_event(
        self,
        masks: Masks | str | Path | None = None,
        sparsity: float | None = None,
        test_accuracy: float = math.nan,
    ) -> None:
        """Ask for a prune event at the next :meth:`sync` (one asked for inside a callback hook
        then follows the epoch's row whatever the order of the callbacks)."""
        if not self.active:
            raise WatchError("prune_event() outside training: the callback's run is not open")
        self._request = {"masks": masks, "sparsity": sparsity, "test_accuracy": test_accuracy}
        self._pending = True

    def sync(self) -> bool:
        """Record the prune event of a pruning call, or of masks changed by other code; whether
        one was recorded."""
        if not self.active:
            return False
        if self._pending:
            self.prune_event(before=self._before, **self._request)
            return True
        if self._tracker is not None and self._tracker.changed():
            self.prune_event()
            return True
        return False

    def prune_event(
        self,
        masks: Masks | str | Path | None = None,
        sparsity: float | None = None,
        test_accuracy: float = math.nan,
        before: Weights | None = None,
    ) -> None:
        """Record a prune event now (:meth:`shedding.watching.watch.Watch.prune_event`);
        ``before``: the weights the masks were computed from, when they have changed since."""
        if not self.active:
            raise WatchError("prune_event() outside training: the callback's run is not open")
        w: Watch = self.watch  # type: ignore[assignment]
        self._end_round()
        kwargs: dict[str, Any] = {"masks": masks, "sparsity": sparsity}
        if before is not None and not _unchanged(before, w):
            kwargs["before"] = before  # a lottery-ticket reset since the pruning
        w.prune_event(test_accuracy=test_accuracy, **kwargs)
        self._before, self._request, self._pending, self._loggable = None, {}, False, False
        self._events += 1
        if self._tracker is not None:
            self._tracker.reset()

    # ------------------------------------------------------------------ epochs and the end
    def epoch(self, metrics: dict[str, float]) -> None:
        """An epoch ended with these store metrics (``train_loss`` ... ``test_accuracy``)."""
        if not self.active:
            return
        self.watch.epoch(**metrics)  # type: ignore[union-attr]
        self._loggable = False
        if "test_accuracy" in metrics:
            self._round_accuracy = float(metrics["test_accuracy"])

    def _end_round(self) -> None:
        """The last event's round ends: its final test accuracy, when an epoch after it had one."""
        if self._events and self._round_accuracy is not None:
            self.watch.round_end(self._round_accuracy)  # type: ignore[union-attr]
        self._round_accuracy = None

    def close(self, status: str = "complete") -> None:
        """Stop counting; on success record what is pending and the last round's accuracy; then
        close the store with ``status``."""
        if not self.active:
            return
        self.detach()
        try:
            if status == "complete":
                self.sync()
                self._end_round()
        except BaseException:
            status = "failed"
            raise
        finally:
            self.closed = True
            self.watch.close(status)  # type: ignore[union-attr]


def _unchanged(before: Weights, w: Watch) -> bool:
    """Whether the watched weights still hold the values in ``before``."""
    return all(
        x.name not in before or torch.equal(before[x.name], x.original().detach())
        for x in w.weights
    )


def close_status(error: BaseException | None) -> str:
    """The store status for a run that ended with ``error``: interrupted (Ctrl-C), failed or
    complete."""
    if error is None:
        return "complete"
    return "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
