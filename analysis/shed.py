"""The shed fraction S(t) and amplification (SCIENCE.md section 4), from recorded counts or magnitudes.

Denominator (our choice, configurable): by default S divides the shed count by the *eligible*
survivors, those at or above the line at the event; survivors already below it can never be shed, and
dividing by all survivors would deflate the control run (20% of its weights start below a 20% line)
and manufacture a cascade. ``denominator="survivors"`` gives the literal shed / survivors.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

DENOMINATORS = ("eligible", "survivors")


def steps_of_round(ds: xr.Dataset, event: int | None = None, dim: str = "step") -> np.ndarray:
    """Positions along ``dim`` (``step`` or ``record_step``) of a round's rows; all retraining rows if None."""
    rounds = np.asarray((ds.step_round if dim == "step" else ds.record_round).values)
    return np.flatnonzero(rounds >= 0 if event is None else rounds == event)


def _per_step_event_table(ds: xr.Dataset, name: str) -> xr.DataArray:
    """``ds[name]`` (event, layer) looked up at each step's event (its round; pretraining rows get 0)."""
    rounds = np.clip(np.asarray(ds.step_round.values), 0, None).astype(int)
    return ds[name].isel(event=xr.DataArray(rounds, dims="step"))


def shed_fraction(ds: xr.Dataset, denominator: str = "eligible") -> xr.Dataset:
    """S(t) per layer and globally, from the per-step counts recorded during retraining.

    Returns a Dataset over the retraining steps with ``shed_fraction(step, layer)``,
    ``shed_fraction_global(step)``, ``shed_count_global(step)`` and the denominators used.
    """
    if denominator not in DENOMINATORS:
        raise ValueError(f"denominator must be one of {DENOMINATORS}, got {denominator!r}")
    retrain = steps_of_round(ds)
    sub = ds[["shed_count", "shed_events", "recover_events"]].isel(step=retrain)
    den_name = "event_eligible" if denominator == "eligible" else "event_survivors"
    den = _per_step_event_table(ds, den_name).isel(step=retrain).assign_coords(step=sub.step)
    count = sub.shed_count
    out = xr.Dataset({
        "shed_fraction": count / den.where(den > 0),
        "shed_fraction_global": count.sum("layer") / den.sum("layer").where(den.sum("layer") > 0),
        "shed_count_global": count.sum("layer"),
        "shed_events_global": sub.shed_events.sum("layer"),
        "recover_events_global": sub.recover_events.sum("layer"),
        "denominator_global": den.sum("layer"),
    })
    out.attrs.update(denominator=denominator, alpha=ds.attrs.get("alpha"))
    return out


def amplification(ds: xr.Dataset, event: int = 0, window: int | None = None) -> xr.Dataset:
    """A = (shed count at the peak) / (count pruned at the event); per layer too.

    The peak is the step with the largest global shed count in the event's round, or within ``window``
    steps of the event. A is NaN for the control (nothing pruned).
    """
    rows = steps_of_round(ds, event)
    if window is not None:
        ev_step = int(ds.event_step.isel(event=event))
        steps = np.asarray(ds.step.values)[rows]
        rows = rows[steps <= ev_step + window]
    s = ds.shed_count.isel(step=rows)
    total = s.sum("layer")
    peak_idx = int(total.argmax("step").compute())
    peak_step = int(s.step[peak_idx])
    pruned = ds.event_pruned.isel(event=event)
    pruned_total = pruned.sum("layer")
    at_peak = s.isel(step=peak_idx)
    return xr.Dataset({
        "amplification": (total.isel(step=peak_idx) / pruned_total.where(pruned_total > 0)),
        "amplification_layer": at_peak / pruned.where(pruned > 0),
        "peak_step": peak_step,
        "shed_at_peak": total.isel(step=peak_idx),
        "pruned": pruned_total,
    })


def _layer_sum(flags: xr.DataArray, ds: xr.Dataset) -> xr.DataArray:
    """Sum a (..., weight) array per layer (weights of a layer are contiguous)."""
    parts = []
    for start, size in zip(ds.layer_start.values, ds.layer_size.values, strict=True):
        parts.append(flags.isel(weight=slice(int(start), int(start + size))).sum("weight"))
    return xr.concat(parts, dim=ds.layer)


def shed_from_magnitude(ds: xr.Dataset, event: int = 0, alpha: float | None = None,
                        line: float | None = None) -> xr.Dataset:
    """Recompute shed counts at the snapshot steps of an event's round, for any line (needs magnitudes).

    The line is ``line`` when given, else ``alpha * tau`` of the event (``alpha`` defaults to the run's).
    Eligible weights: kept by the event's mask and at or above the line in the snapshot at the event step.
    Returns ``shed_count(record_step, layer)``, ``eligible(layer)``, ``below(layer)`` and the global S.
    """
    if "magnitude" not in ds:
        raise ValueError("this run has no magnitude snapshots; shed counts for other lines need them")
    tau = float(ds.event_tau.isel(event=event))
    if line is None:
        line = (alpha if alpha is not None else float(ds.attrs.get("alpha", 1.0))) * tau
    ev_step = int(ds.event_step.isel(event=event))
    mag = ds.magnitude.isel(record_step=steps_of_round(ds, event, "record_step"))
    mask = ds["mask"].isel(event=event).astype(bool)
    start = ds.magnitude.sel(record_step=ev_step)
    eligible = mask & (start >= line)
    below_start = mask & (start < line)
    shed = eligible & (mag < line)
    count = _layer_sum(shed, ds)
    elig = _layer_sum(eligible, ds)
    out = xr.Dataset({
        "shed_count": count,
        "eligible": elig,
        "below": _layer_sum(below_start, ds),
        "shed_fraction_global": count.sum("layer") / elig.sum("layer"),
    })
    out.attrs.update(line=line, tau=tau, event=event)
    return out


def peak(da: xr.DataArray, dim: str = "step") -> tuple[int, float]:
    """(coordinate of the maximum, maximum) of a 1-D DataArray, NaN-aware."""
    values = np.asarray(da.values, dtype=float)
    if values.size == 0 or np.all(np.isnan(values)):
        return -1, float("nan")
    i = int(np.nanargmax(values))
    return int(da[dim].values[i]), float(values[i])
