"""What a TensorBoard export of a run store holds besides its histograms
(:mod:`shedding.reports.tensorboard_histograms`): its scalar series and text summary, as arrays and
strings (no I/O; ``shedding export RUN --tensorboard DIR`` writes them, docs/tensorboard.md).

Scalars, by the store's own steps: the global and per-layer shed fraction S(t) and the global shed
and recovery crossings (:func:`shedding.analysis.shed_fraction`), the excess of S over a control
run (:func:`excess`, from :func:`shedding.analysis.shed.shed_curves`), the loss and learning rate of
every step, and the epoch table's training and test accuracy and loss at each epoch's end step.

Store steps below 0 are the original training; TensorBoard's are at least 0, so every step is
shifted by :func:`step_offset`. Rows a running or crashed run has not committed are left out.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import xarray as xr

from shedding.analysis.controls import is_control
from shedding.analysis.io import run_name
from shedding.analysis.shed import shed_curves, shed_fraction
from shedding.reports.tensorboard_histograms import HIST_TAG, histogram_words, last_step

STEP_COORDS = ("step", "epoch_step", "event_step", "record_step", "hist_step", "sample_step")
EPOCH_VARIABLES = ("train_accuracy", "train_loss", "test_accuracy", "test_loss")


def step_offset(runs: Iterable[xr.Dataset]) -> int:
    """The shift that makes every step of every run at least 0: minus the smallest step of any step
    coordinate (0 when none is negative). Runs exported together share it, so they line up."""
    lows = [int(np.min(ds[c].values)) for ds in runs for c in STEP_COORDS if c in ds and ds[c].size]
    return max(0, -min(lows, default=0))


def _series(values: xr.DataArray, steps: np.ndarray, last: float, tag: str) -> xr.DataArray:
    """A 1-D series over ``step`` with its non-finite and uncommitted points left out."""
    v = np.asarray(values.values, dtype=np.float64)
    s = np.asarray(steps, dtype=np.int64)
    keep = np.isfinite(v) & (s <= last)
    return xr.DataArray(v[keep], dims="step", coords={"step": s[keep]}, name=tag)


def check_control(run: xr.Dataset, control: xr.Dataset) -> None:
    """ValueError (one line) unless ``control`` is an unpruned control run with the layers of
    ``run`` (the same names and sizes), so that the excess of one over the other means something."""
    if not is_control(control):
        raise ValueError(
            f"{run_name(control)} is not a control run (one recorded with --prune-method none)"
        )
    mine = list(zip(map(str, run.layer.values), map(int, run.layer_size.values), strict=True))
    theirs = list(
        zip(map(str, control.layer.values), map(int, control.layer_size.values), strict=True)
    )
    if mine != theirs:
        raise ValueError(
            f"{run_name(control)} has other layers than {run_name(run)} "
            f"({len(theirs)} layers of {sum(n for _, n in theirs)} weights against {len(mine)} "
            f"of {sum(n for _, n in mine)}, or other names); it cannot be its control"
        )


def excess(run: xr.Dataset, control: xr.Dataset, denominator: str = "eligible") -> xr.DataArray:
    """E(t) = S_run(t) - S_control(t) over the run's retraining steps, globally, on the recorded
    line.

    As in :mod:`shedding.analysis.cascade`, each prune event's curve is aligned with the control's
    (its only event) by steps since the event, at the steps both have; the result is indexed by the
    run's own steps. ValueError when the two share no step after an event.
    """
    ctrl = shed_curves(control, 0, denominator=denominator).shed_fraction_global.compute()
    c_rel = ctrl.assign_coords(step=ctrl.step.values - int(control.event_step.values[0]))
    parts = []
    for e in range(run.sizes["event"]):
        curve = shed_curves(run, e, denominator=denominator).shed_fraction_global.compute()
        ev_step = int(run.event_step.values[e])
        rel = curve.assign_coords(step=curve.step.values - ev_step)
        common = np.intersect1d(rel.step.values, c_rel.step.values)
        if common.size == 0 and rel.step.size:
            raise ValueError(
                f"{run_name(run)} and {run_name(control)} share no steps after event {e}; "
                "they are not comparable"
            )
        diff = rel.sel(step=common) - c_rel.sel(step=common)
        parts.append(diff.assign_coords(step=common + ev_step))
    return xr.concat(parts, dim="step").rename("excess")


def scalar_series(
    ds: xr.Dataset, control: xr.Dataset | None = None, denominator: str = "eligible"
) -> dict[str, xr.DataArray]:
    """Tag -> series over the store's steps (``step`` coordinate; NaN and uncommitted points left
    out): ``shed/S``, ``shed/shed_events``, ``shed/recovered_events``, ``shed/excess`` (when
    ``control`` is given and ``ds`` is not a control itself), ``shed_layer/<layer>``,
    ``train/loss``, ``train/lr`` and ``epoch/<variable>`` at each epoch's end step."""
    last = last_step(ds)
    out: dict[str, xr.DataArray] = {}
    if ds.sizes.get("event", 0) and np.any(np.asarray(ds.step_round.values) >= 0):
        f = shed_fraction(ds, denominator).compute()
        steps = f.step.values
        out["shed/S"] = _series(f.shed_fraction_global, steps, last, "shed/S")
        for name, var in (
            ("shed_events", "shed_events_global"),
            ("recovered_events", "recover_events_global"),
        ):
            out[f"shed/{name}"] = _series(f[var], steps, last, f"shed/{name}")
        if control is not None and not is_control(ds):
            ex = excess(ds, control, denominator)
            out["shed/excess"] = _series(ex, ex.step.values, last, "shed/excess")
        for layer in f.layer.values:
            tag = f"shed_layer/{layer}"
            out[tag] = _series(f.shed_fraction.sel(layer=layer), steps, last, tag)
    for var, tag in (("loss", "train/loss"), ("lr", "train/lr")):
        out[tag] = _series(ds[var], ds.step.values, last, tag)
    for var in EPOCH_VARIABLES:
        tag = f"epoch/{var}"
        out[tag] = _series(ds[var], ds.epoch_step.values, last, tag)
    return out


def summary_text(
    ds: xr.Dataset, offset: int, control: xr.Dataset | None = None, denominator: str = "eligible"
) -> str:
    """The run's text summary (Markdown): what it is, the step offset, what S and the excess are and
    where the histograms come from. Without a control it says that S(t) alone cannot show a
    cascade."""
    a = ds.attrs
    first = int(ds.event_step.values[0]) + offset if ds.sizes.get("event", 0) else None
    lines = [
        f"**{run_name(ds)}** ({a.get('path')}): {a.get('method')}, {a.get('technique')}, "
        f"seed {a.get('seed')}, status {a.get('status')}",
        f"**steps**: TensorBoard step = store step + {offset}"
        + (f"; the first prune event is at TensorBoard step {first}" if first is not None else "")
        + " (store steps below 0 are the original training).",
        f"**S(t)** (shed/S, shed_layer/*): shed weights / {denominator} survivors of each round's "
        f"prune event, on the recorded line (alpha {a.get('alpha')}).",
    ]
    if control is not None and not is_control(ds):
        lines.append(
            f"**excess** (shed/excess): S_run - S_control against {run_name(control)} "
            f"({control.attrs.get('path')}), aligned by steps since each prune event."
        )
    elif not is_control(ds):
        lines.append(
            "**no control given**: retraining alone sheds, so S(t) without the excess over a "
            "control run cannot show a cascade (export with --control)."
        )
    lines.append(
        f"**histograms** ({HIST_TAG}/*): log10|w| of the non-zero weights per layer, "
        f"from {histogram_words(ds)}."
    )
    return "\n\n".join(lines)
