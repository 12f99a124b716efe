"""The shed fraction S(t) and amplification (docs/science.md#shedding), from recorded counts or
magnitudes.

Denominator (our choice, configurable): by default S divides the shed count by the *eligible*
survivors, those at or above the line at the event; survivors already below it can never be shed,
and dividing by all survivors would deflate the control run (20% of its weights start below a 20%
line) and manufacture a cascade. ``denominator="survivors"`` gives the literal shed / survivors.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from shedding.analysis.events import event_index

DENOMINATORS = ("eligible", "survivors")


def steps_of_round(ds: xr.Dataset, event: int | None = None, dim: str = "step") -> np.ndarray:
    """Positions along ``dim`` (``step`` or ``record_step``) of a round's rows; all retraining rows
    if None."""
    rounds = np.asarray((ds.step_round if dim == "step" else ds.record_round).values)
    return np.flatnonzero(rounds >= 0 if event is None else rounds == event)


def _per_step_event_table(ds: xr.Dataset, name: str) -> xr.DataArray:
    """``ds[name]`` (event, layer) looked up at each step's event (its round; pretraining rows get
    0)."""
    rounds = np.clip(np.asarray(ds.step_round.values), 0, None).astype(int)
    table = ds[
        name
    ].load()  # (event, layer): tiny; indexing it lazily would make one dask chunk per step
    return table.isel(event=xr.DataArray(rounds, dims="step"))


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
    out = xr.Dataset(
        {
            "shed_fraction": count / den.where(den > 0),
            "shed_fraction_global": count.sum("layer")
            / den.sum("layer").where(den.sum("layer") > 0),
            "shed_count_global": count.sum("layer"),
            "shed_events_global": sub.shed_events.sum("layer"),
            "recover_events_global": sub.recover_events.sum("layer"),
            "denominator_global": den.sum("layer"),
        }
    )
    out.attrs.update(denominator=denominator, alpha=ds.attrs.get("alpha"))
    return out


def amplification(ds: xr.Dataset, event: int = 0, window: int | None = None) -> xr.Dataset:
    """A = (shed count at the peak) / (count pruned at the event); per layer too.

    The peak is the step with the largest global shed count in the event's round, or within
    ``window`` steps of the event. A is NaN for the control (nothing pruned).
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
    return xr.Dataset(
        {
            "amplification": (total.isel(step=peak_idx) / pruned_total.where(pruned_total > 0)),
            "amplification_layer": at_peak / pruned.where(pruned > 0),
            "peak_step": peak_step,
            "shed_at_peak": total.isel(step=peak_idx),
            "pruned": pruned_total,
        }
    )


def _layer_sum(flags: xr.DataArray, ds: xr.Dataset) -> xr.DataArray:
    """Sum a (..., weight) array per layer (weights of a layer are contiguous)."""
    parts = []
    for start, size in zip(ds.layer_start.values, ds.layer_size.values, strict=True):
        parts.append(flags.isel(weight=slice(int(start), int(start + size))).sum("weight"))
    return xr.concat(parts, dim=ds.layer)


def shed_from_magnitude(
    ds: xr.Dataset, event: int = 0, alpha: float | None = None, line: float | None = None
) -> xr.Dataset:
    """Recompute shed counts at the snapshot steps of an event's round, for any line (needs
    magnitudes).

    The line is ``line`` when given, else ``alpha * tau`` of the event (``alpha`` defaults to the
    run's).
    Eligible weights: kept by the event's mask and at or above the line in the snapshot at the event
    step.
    Returns ``shed_count(record_step, layer)``, ``eligible(layer)``, ``below(layer)`` and the global
    S.
    """
    if "magnitude" not in ds:
        raise ValueError(
            "this run has no magnitude snapshots; shed counts for other lines need them"
        )
    tau = float(ds.event_tau.isel(event=event))
    if line is None:
        line = (alpha if alpha is not None else float(ds.attrs.get("alpha", 1.0))) * tau
    line = np.float32(line)  # compared in float32, as the recorder does on the device
    ev_step = int(ds.event_step.isel(event=event))
    mag = ds.magnitude.isel(record_step=steps_of_round(ds, event, "record_step"))
    mask = ds["mask"].isel(event=event).astype(bool)
    start = ds.magnitude.sel(record_step=ev_step)
    eligible = mask & (start >= line)
    below_start = mask & (start < line)
    shed = eligible & (mag < line)
    count = _layer_sum(shed, ds)
    elig = _layer_sum(eligible, ds)
    out = xr.Dataset(
        {
            "shed_count": count,
            "eligible": elig,
            "below": _layer_sum(below_start, ds),
            "shed_fraction_global": count.sum("layer") / elig.sum("layer"),
        }
    )
    out.attrs.update(line=line, tau=tau, event=event)
    return out


def peak(da: xr.DataArray, dim: str = "step") -> tuple[int, float]:
    """(coordinate of the maximum, maximum) of a 1-D DataArray, NaN-aware."""
    values = np.asarray(da.values, dtype=float)
    if values.size == 0 or np.all(np.isnan(values)):
        return -1, float("nan")
    i = int(np.nanargmax(values))
    return int(da[dim].values[i]), float(values[i])


def _round_rows(ds: xr.Dataset, event: int, dim: str) -> np.ndarray:
    """Rows of an event's round along ``dim``; for snapshots, without the event's own (start)
    snapshot."""
    rows = steps_of_round(ds, event, dim)
    if dim == "record_step":
        ev_step = int(ds.event_step.isel(event=event))
        rows = rows[np.asarray(ds.record_step.values)[rows] != ev_step]
    return rows


_COUNTS = ("shed_count", "shed_events", "recover_events")


def _device_line_counts(ds: xr.Dataset, event: int, extra: int) -> tuple[xr.Dataset, np.ndarray]:
    """Counts of an extra line the recorder counted on the device every step, and its values."""
    rows = steps_of_round(ds, event)
    out = xr.Dataset({k: ds[f"line_{k}"].isel(step=rows, line=extra, drop=True) for k in _COUNTS})
    out["eligible"] = ds.line_eligible.isel(event=event, line=extra, drop=True)
    out["below"] = ds.event_survivors.isel(event=event, drop=True) - out["eligible"]
    values = np.asarray(ds.line_value.isel(event=event, line=extra).values, dtype=float)
    return out, values


def _recorded_counts(ds: xr.Dataset, event: int) -> tuple[xr.Dataset, np.ndarray]:
    """The recorder's per-step counts of the recorded line, and the line's value per layer."""
    rows = steps_of_round(ds, event)
    sub = ds[list(_COUNTS)].isel(step=rows)
    out = xr.Dataset({k: sub[k] for k in _COUNTS})
    out["eligible"] = ds.event_eligible.isel(event=event, drop=True)
    out["below"] = ds.event_below.isel(event=event, drop=True)
    values = np.full(ds.sizes["layer"], float(ds.event_line.isel(event=event)))
    return out, values


def _snapshot_counts(ds: xr.Dataset, event: int, values: np.ndarray) -> xr.Dataset:
    """Counts against the line ``values`` (one per layer), recounted from the magnitude snapshots
    of the event's round."""
    rows = _round_rows(ds, event, "record_step")
    ev_step = int(ds.event_step.isel(event=event))
    mags = ds.magnitude.isel(record_step=rows)
    start_all = ds.magnitude.sel(record_step=ev_step)
    mask_all = ds["mask"].isel(event=event).astype(bool)
    parts: dict[str, list[xr.DataArray]] = {k: [] for k in (*_COUNTS, "eligible", "below")}
    for i, (s0, n) in enumerate(zip(ds.layer_start.values, ds.layer_size.values, strict=True)):
        sl = slice(int(s0), int(s0 + n))
        mag, start, mask = mags.isel(weight=sl), start_all.isel(weight=sl), mask_all.isel(weight=sl)
        line_i = np.float32(values[i])  # compared in float32, as the recorder does on the device
        elig = mask & (start >= line_i)
        below = elig & (mag < line_i)
        prev = below.shift(record_step=1, fill_value=False)
        parts["shed_count"].append(below.sum("weight"))
        parts["shed_events"].append((below & ~prev).sum("weight"))
        parts["recover_events"].append((prev & ~below).sum("weight"))
        parts["eligible"].append(elig.sum("weight"))
        parts["below"].append((mask & (start < line_i)).sum("weight"))
    out = xr.Dataset({k: xr.concat(v, dim=ds.layer) for k, v in parts.items()})
    return out.rename(record_step="step").transpose("step", "layer")


def _with_fractions(
    out: xr.Dataset, ds: xr.Dataset, event: int, values: np.ndarray, denominator: str
) -> xr.Dataset:
    """``out``'s counts with survivors, S per layer and globally, global counts and the line's
    values; (step, layer) order, other coordinates dropped."""
    out["survivors"] = ds.event_survivors.isel(event=event, drop=True)
    den = out["eligible"] if denominator == "eligible" else out["survivors"]
    out["shed_fraction"] = out.shed_count / den.where(den > 0)
    out["shed_count_global"] = out.shed_count.sum("layer")
    out["shed_fraction_global"] = out.shed_count_global / den.sum("layer")
    out["line_value"] = ("layer", values)
    out = out.transpose("step", "layer")
    keep_coords = [c for c in out.coords if c not in ("step", "layer")]
    return out.drop_vars(keep_coords)


def shed_curves(
    ds: xr.Dataset,
    event: int = 0,
    line=None,
    line_values: np.ndarray | None = None,
    denominator: str = "eligible",
) -> xr.Dataset:
    """Shed counts and S(t) of one event's round for one line, per layer and globally.

    ``line`` is an :class:`shedding.analysis.lines.Line` (default: the recorded line, gmp at the
    run's alpha). ``line_values`` (one per layer) overrides the line's own values: a control is
    measured against its pruned run's line this way. The recorded line uses the per-step counts of
    the recorder (every step), as does an extra line the recorder counted on the device
    (``--record-lines``); any other line is recounted from the magnitude snapshots (snapshot
    resolution; needs magnitudes).

    Returns ``shed_count``, ``shed_events``, ``recover_events`` (step, layer), ``eligible``,
    ``survivors``, ``below`` (layer), ``shed_fraction`` (step, layer), ``shed_fraction_global`` and
    ``shed_count_global`` (step), with the line and the resolution in the attributes.
    """
    from shedding.analysis.lines import Line

    if denominator not in DENOMINATORS:
        raise ValueError(f"denominator must be one of {DENOMINATORS}, got {denominator!r}")
    event = event_index(ds, event)
    line = (
        Line(line.kind, line.value)
        if line is not None
        else Line("gmp", float(ds.attrs.get("alpha", 1.0)))
    )
    recorded = line.is_recorded(ds) and line_values is None
    extra = line.recorded_index(ds) if line_values is None and not recorded else None
    resolution = "every step"
    if extra is not None:  # an extra line the recorder counted on the device every step
        out, values = _device_line_counts(ds, event, extra)
    elif recorded:
        out, values = _recorded_counts(ds, event)
    else:
        if "magnitude" not in ds:
            raise ValueError(
                f"line {line.label} needs magnitude snapshots (record them with --record-every N) "
                "or device counts (--record-lines); this run has neither for it"
            )
        values = np.asarray(
            line_values if line_values is not None else line.values(ds, event), dtype=float
        )
        out = _snapshot_counts(ds, event, values)
        resolution = "snapshots"
    out = _with_fractions(out, ds, event, values, denominator)
    out.attrs.update(
        line=line.label,
        resolution=resolution,
        denominator=denominator,
        event=event,
        event_step=int(ds.event_step.isel(event=event)),
    )
    return out
