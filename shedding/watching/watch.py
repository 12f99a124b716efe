"""``shedding.watch``: record any PyTorch model and training loop into a run store.

::

    with shedding.watch(model, "runs/mine.zarr", optimizer=opt, seed=0, condition="gmp-0.5") as rec:
        ...  # train: each opt.step() is one recorded step
        prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=0.5)
        rec.prune_event()  # the masks of torch.nn.utils.prune's buffers
        ...  # retrain

The store is the one the built-in trainer writes (docs/store-format.md), growable because the run's
length is not known in advance (:mod:`shedding.recording.open_recorder`), so ``shedding analyze``,
``compare``, the reports and ``xarray.open_zarr`` read it unchanged.
"""

from __future__ import annotations

import math
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from shedding.pruning.masks import flat, gmp_threshold, sparsity_of
from shedding.recording.layout import build_layers, sample_weights
from shedding.recording.open_recorder import OpenRecorder, capacity
from shedding.recording.store import RunStore
from shedding.watching.event_masks import (
    Masks,
    apply_given,
    check_no_revival,
    current_masks,
    load_masks,
)
from shedding.watching.watched import Watched, WatchError, watched_weights

PROFILES = {  # what each profile records, beyond the per-step shed counts and scalars
    "summary": {},
    "sample": {"samples": 1},
    "full": {"snapshots": 1},
}
SHED_DEFINITION = (
    "a survivor at or above the line alpha*tau at its event is shed at step s while |w(s)| < "
    "alpha*tau; tau is the GMP cut value at the event's sparsity"
)


class Watch:
    """A watched run (made by :func:`watch`): call :meth:`step` (or let the optimizer's hook do
    it), :meth:`log`, :meth:`epoch` and :meth:`prune_event`; :meth:`close` ends it."""

    def __init__(self, weights: list[Watched], alpha: float, control: bool | None) -> None:
        self.weights = weights
        self._rec: OpenRecorder = None  # type: ignore[assignment]  # set by watch()
        self._alpha = alpha
        self._control = control
        self._masks: Masks = {w.name: torch.ones_like(w.read(), dtype=torch.bool) for w in weights}
        self._pruned_any = False
        self._masked: set[str] = set()  # plain weights with pruned entries (read times the mask)
        self._hook: Any = None
        self._optimizer: torch.optim.Optimizer | None = None
        self._closed = False
        self._started = time.time()
        self.step_seconds = 0.0  # time spent recording steps on the training thread

    def effective(self) -> list[torch.Tensor]:
        """The watched weights as the pruned model has them: ``orig * mask`` when
        reparametrised; a plain weight times the last event's mask (a loop that zeroes pruned
        weights after ``optimizer.step()`` has not done so yet when the step is recorded)."""
        return [
            w.read() * self._masks[w.name] if w.name in self._masked else w.read()
            for w in self.weights
        ]

    # ------------------------------------------------------------------ steps
    def attach(self, optimizer: torch.optim.Optimizer) -> None:
        """Count each ``optimizer.step()`` as a recorded step (its LR is the first group's)."""
        self._optimizer = optimizer
        self._hook = optimizer.register_step_post_hook(lambda *_: self.step())

    def step(self, loss: torch.Tensor | float | None = None, lr: float | None = None) -> None:
        """One update was made (called by the optimizer's hook when ``optimizer=`` was given)."""
        if lr is None and self._optimizer is not None:
            lr = float(self._optimizer.param_groups[0]["lr"])
        if loss is not None and not torch.is_tensor(loss):
            loss = torch.tensor(float(loss))
        t0 = time.perf_counter()
        self._rec.step(loss, math.nan if lr is None else lr)
        self.step_seconds += time.perf_counter() - t0

    def log(self, loss: torch.Tensor | float | None = None, lr: float | None = None) -> None:
        """The loss (a tensor is kept on its device: no host sync) and/or LR of the update just
        made; call it after ``optimizer.step()`` and before the next one."""
        if not self._rec.log(loss, lr):
            raise WatchError(
                "log() before any step, or after epoch()/prune_event(): nothing to set"
            )

    def epoch(self, **metrics: float) -> None:
        """An epoch ended: ``train_accuracy``, ``train_loss``, ``test_accuracy``, ``test_loss``."""
        self._rec.epoch({k: float(v) for k, v in metrics.items()})

    # ------------------------------------------------------------------ events
    @torch.no_grad()
    def prune_event(
        self,
        masks: Masks | str | Path | None = None,
        sparsity: float | None = None,
        test_accuracy: float = math.nan,
        before: Masks | None = None,
    ) -> None:
        """Record a prune event now.

        Masks come from ``masks`` (a dict ``{"layer.weight": mask}`` or a file of one, applied
        with ``torch.nn.utils.prune.custom_from_mask``), else from the ``*_mask`` buffers of
        ``torch.nn.utils.prune``, else from the weights' exact zeros. The line is ``alpha * tau``,
        tau being the global-magnitude cut value at ``sparsity`` (default: the sparsity the masks
        reach) over the weights before this event; an event that prunes nothing (a control)
        records the line of ``sparsity``. ``before``: the weights the masks were computed from, by
        watched name (default: the ``*_orig`` values, or the weights, as they are now), for a loop
        that changed them since (a lottery-ticket reset).
        """
        pre = _before(self.weights, before)
        if masks is not None:
            apply_given(self.weights, load_masks(masks))
        new = current_masks(self.weights, self._masks)
        check_no_revival(self._masks, new)
        for name in new:
            pre[name] = pre[name] * self._masks[name]
        achieved = sparsity_of(new)
        target = achieved if sparsity is None else float(sparsity)
        if not 0.0 <= target < 1.0:
            raise WatchError(f"sparsity={target} is not in [0, 1)")
        tau = gmp_threshold(pre, self._masks, target)
        pruned = np.array([int((self._masks[k] & ~new[k]).sum()) for k in new])
        self._pruned_any = self._pruned_any or bool(pruned.sum())
        self._masks = new
        self._masked = {
            w.name for w in self.weights if not w.reparametrised and not bool(new[w.name].all())
        }
        index = self._rec.n_events
        pre_flat = flat(pre).abs()
        self._rec.begin_event(
            index, index, new, pre_flat, pruned, achieved, tau, self._alpha * tau, test_accuracy
        )
        control = self._control if self._control is not None else not self._pruned_any
        self._rec.set_attrs(control=control, line_sparsity=target if index == 0 else None)

    def round_end(self, test_accuracy: float) -> None:
        """The test accuracy at the end of the last prune event's retraining round."""
        if self._rec.n_events == 0:
            raise WatchError("round_end() before any prune_event()")
        self._rec.end_round(self._rec.n_events - 1, float(test_accuracy))

    # ------------------------------------------------------------------ end
    def close(self, status: str = "complete") -> None:
        """Record the last state, trim the store to what was written and set its status."""
        if self._closed:
            return
        self._closed = True
        if self._hook is not None:
            self._hook.remove()
        try:
            if status == "complete":
                self._rec.finish()
        finally:
            self._rec.close(
                status, seconds=time.time() - self._started, watch_step_seconds=self.step_seconds
            )

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: Any) -> None:
        if kind is None:
            self.close("complete")
        else:
            self.close("interrupted" if issubclass(kind, KeyboardInterrupt) else "failed")


def _before(weights: list[Watched], given: Masks | None) -> Masks:
    """The weights before an event: ``given`` ones (checked) or the stored values now."""
    out = {}
    for w in weights:
        now = w.original().detach()
        if given is not None and w.name in given:
            value = given[w.name].detach()
            shape, expected = tuple(value.shape), tuple(now.shape)
            if shape != expected:
                raise WatchError(f"before[{w.name!r}] has shape {shape}, the weight {expected}")
            now = value.to(now.device, now.dtype)
        out[w.name] = now.clone()
    return out


def watch(
    model: torch.nn.Module,
    path: str | Path,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    seed: int = 0,
    condition: str = "watched",
    control: bool | None = None,
    setting: str | None = None,
    params: list[str] | str | None = None,
    profile: str = "summary",
    every: int = 1,
    dtype: str = "float16",
    hist_every: int = 0,
    sample_per_layer: int = 256,
    lines: list[str] | None = None,
    alpha: float = 1.0,
    chunk_steps: int = 64,
    overwrite: bool = False,
    attrs: dict[str, Any] | None = None,
) -> Watch:
    """Start recording ``model`` into a new run store at ``path`` (see :class:`Watch`).

    ``profile``: ``summary`` (per-step shed counts, loss and LR), ``sample`` (also the magnitudes
    of ``sample_per_layer`` weights per layer every ``every`` steps) or ``full`` (every watched
    weight's magnitude every ``every`` steps, as ``dtype``: float32, float16 or log8);
    ``hist_every`` > 0 adds per-layer magnitude histograms. ``seed``, ``condition`` and
    ``control`` (None: a run whose events prune nothing) are what ``shedding analyze`` groups runs
    and matches controls by; ``setting`` names the training setting (e.g. ``"lr0.1-wd5e-4"``)
    when one analysis holds runs of several, so that each run is matched with the control of its
    own setting. ``params``: names or a regex of the weights to watch (default: every
    Conv, Linear and Conv1D weight).
    """
    if profile not in PROFILES:
        raise WatchError(f"profile={profile!r}: choose one of {', '.join(PROFILES)}")
    if every < 1:
        raise WatchError(f"every={every}: record every 1 step or more")
    weights = watched_weights(model, params)
    tensors = {w.name: w.read().detach() for w in weights}
    layers = build_layers([(k, tuple(t.shape)) for k, t in tensors.items()])
    wanted = {k: every * v for k, v in PROFILES[profile].items()}
    wanted["hist"] = max(0, int(hist_every))
    timeline, growth = capacity(chunk_steps, wanted)
    store = RunStore.create(
        path,
        layers,
        timeline,
        _attrs(model, seed, condition, control, alpha, {"setting": setting, **(attrs or {})}),
        dtype,
        chunk_steps,
        overwrite=overwrite,
        lines=lines,
        sample=sample_weights(layers, sample_per_layer, seed),
        growth=growth,
    )
    device = next(iter(tensors.values())).device
    w = Watch(weights, alpha, control)
    w._rec = recorder = OpenRecorder(
        store, layers, timeline, tensors, dtype, device, wanted, read=w.effective
    )
    recorder.start()
    if optimizer is not None:
        w.attach(optimizer)
    return w


def _version() -> str:
    """This package's version (read from its metadata: the package's root imports this module)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("shedding")
    except PackageNotFoundError:
        return "unknown"


def _attrs(
    model: torch.nn.Module,
    seed: int,
    condition: str,
    control: bool | None,
    alpha: float,
    extra: dict[str, Any] | None,
) -> dict[str, Any]:
    """The root attributes of a watched run's store."""
    return {
        "condition": condition,
        "seed": int(seed),
        "control": bool(control) if control is not None else None,
        "line_sparsity": None,
        "alpha": float(alpha),
        "recorded_by": "shedding.watch",
        "model": type(model).__name__,
        "shed_definition": SHED_DEFINITION,
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "shedding": _version(),
        },
        **(extra or {}),
    }
