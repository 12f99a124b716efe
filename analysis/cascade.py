"""Cascade detection against a control (docs/science.md#shedding): onset, peak, time to peak,
amplification, recovered weights and the excess over a matched control, per prune event and per shed
line.

A *cascade* is a rise of the shed fraction S(t) well above the same quantity in a control run (same
retraining, nothing pruned, the same line) within a window after the prune event. Our rule, with
every constant a parameter: an event shows a cascade on a line when its excess E(t) = S_run(t) -
S_control(t) reaches ``min_excess`` within ``window`` of the event. Onset is the first step where
E(t) reaches
``onset_excess``; the peak is the step of the largest S_run in the window. Run and control are
aligned by steps since their events (an iterative run's later events are compared with the control's
only event).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from shedding.analysis.events import event_index
from shedding.analysis.lines import Line
from shedding.analysis.shed import peak, shed_curves

DEFAULT_WINDOW = "5ep"


def window_steps(ds: xr.Dataset, window: int | str | None) -> int | None:
    """Resolve a window (steps, a step string such as ``5ep``, or None/'round' for the whole
    round); a window in epochs needs :func:`iterations_per_epoch` (ValueError, one line, without
    it)."""
    if window is None or window == "round":
        return None
    if isinstance(window, str):
        from shedding.steps import Step

        step = Step.parse(window)
        ipe = iterations_per_epoch(ds)
        if ipe is None and step.ep:
            raise ValueError(
                f"window {window}: {ds.attrs.get('path', 'a run')} does not say how many steps "
                "an epoch has; give the window in steps (e.g. 300it) or 'round'"
            )
        return step.iterations(ipe or 0)
    return int(window)


def iterations_per_epoch(ds: xr.Dataset) -> int | None:
    """Steps in an epoch: the store's ``iterations_per_epoch`` attribute, else the one whole number
    of steps per epoch between its recorded epochs (``epoch_step`` against ``epoch``; a run recorded
    outside the trainer), else None."""
    ipe = ds.attrs.get("iterations_per_epoch")
    if ipe is not None:
        return int(ipe)
    if "epoch_step" not in ds.coords or ds.sizes.get("epoch", 0) < 2:
        return None
    d_epoch = np.diff(np.asarray(ds["epoch"].values, dtype=np.int64))
    d_step = np.diff(np.asarray(ds["epoch_step"].values, dtype=np.int64))
    if (d_epoch <= 0).any() or (d_step <= 0).any() or (d_step % d_epoch).any():
        return None
    per = np.unique(d_step // d_epoch)
    return int(per[0]) if len(per) == 1 else None


def _relative(curves: xr.Dataset) -> xr.Dataset:
    """Curves indexed by steps since the event."""
    return curves.assign_coords(step=curves.step.values - int(curves.attrs["event_step"]))


def summarize_event(
    run_curves: xr.Dataset,
    control_curves: xr.Dataset | None,
    pruned: int,
    window: int | None,
    min_excess: float,
    onset_excess: float,
) -> xr.Dataset:
    """Scalar and per-layer statistics of one event on one line from its curves (see
    :func:`shed_curves`).

    All steps in the result are absolute (the run's own); the window is in steps after the event.
    """
    ev_step = int(run_curves.attrs["event_step"])
    rel = _relative(run_curves)
    win = rel if window is None else rel.sel(step=rel.step[(rel.step > 0) & (rel.step <= window)])
    g = win.shed_fraction_global
    peak_rel, peak_value = peak(g)
    shed_at_peak = float(win.shed_count_global.sel(step=peak_rel)) if peak_rel >= 0 else np.nan
    nan = float("nan")
    out = xr.Dataset(
        {
            "peak_step": peak_rel + ev_step if peak_rel >= 0 else -1,
            "time_to_peak": peak_rel,
            "peak_shed_fraction": peak_value,
            "final_shed_fraction": float(rel.shed_fraction_global.values[-1])
            if rel.step.size
            else nan,
            "amplification": shed_at_peak / pruned if pruned > 0 else nan,
            "shed_events": int(win.shed_events.sum()),
            "recovered_events": int(win.recover_events.sum()),
            "pruned": pruned,
            "eligible": int(run_curves.eligible.sum()),
            "peak_shed_fraction_layer": win.shed_fraction.max("step"),
        }
    )
    if control_curves is None:
        return out.assign(
            onset_step=-1,
            excess_peak=nan,
            excess_amplification=nan,
            excess_peak_step=-1,
            final_excess=nan,
            control_peak_shed_fraction=nan,
            excess_peak_layer=xr.full_like(out.peak_shed_fraction_layer, np.nan),
        )
    excess = _excess(win, rel, _relative(control_curves), ev_step, onset_excess)
    # the survivors shed beyond what the control sheds, per weight pruned
    excess["excess_amplification"] = (
        excess["excess_peak"] * int(out.eligible) / pruned if pruned > 0 else nan
    )
    return out.assign(excess)


def _excess(
    win: xr.Dataset, rel: xr.Dataset, crel: xr.Dataset, ev_step: int, onset_excess: float
) -> dict[str, object]:
    """The excess variables of :func:`summarize_event`: the run's curves in the window (``win``)
    and over the round (``rel``) against the control's (``crel``), all by steps since the event."""
    common = np.intersect1d(win.step.values, crel.step.values)
    if common.size == 0:
        raise ValueError(
            "the run and its control share no steps after the event; they are not comparable"
        )
    ex = win.shed_fraction_global.sel(step=common) - crel.shed_fraction_global.sel(step=common)
    ex_layer = (win.shed_fraction.sel(step=common) - crel.shed_fraction.sel(step=common)).max(
        "step"
    )
    ex_rel, ex_value = peak(ex)
    onset_idx = np.flatnonzero(ex.values >= onset_excess)
    all_common = np.intersect1d(rel.step.values, crel.step.values)
    final_ex = (
        float(
            rel.shed_fraction_global.sel(step=all_common[-1])
            - crel.shed_fraction_global.sel(step=all_common[-1])
        )
        if all_common.size
        else float("nan")
    )
    _, ctrl_peak = peak(crel.shed_fraction_global.sel(step=common))
    return dict(
        onset_step=int(common[onset_idx[0]]) + ev_step if onset_idx.size else -1,
        excess_peak=ex_value,
        excess_peak_step=ex_rel + ev_step,
        final_excess=final_ex,
        control_peak_shed_fraction=ctrl_peak,
        excess_peak_layer=ex_layer,
        run_at_excess_peak=float(win.shed_fraction_global.sel(step=ex_rel)),
        control_at_excess_peak=float(crel.shed_fraction_global.sel(step=ex_rel)),
    )


def _rule(window: int | None, min_excess: float, onset_excess: float, denominator: str) -> str:
    span = "the round" if window is None else f"{window} steps"
    return (
        f"cascade when S_run - S_control reaches {min_excess:g} within {span} of the event "
        f"(S = shed / {denominator} survivors; onset: first step the excess reaches "
        f"{onset_excess:g})"
    )


def _verdict(s: xr.Dataset, min_excess: float, has_control: bool) -> tuple[str, str]:
    if not has_control:
        return "no control", (
            "no control run given: retraining alone sheds, so S(t) without a control "
            "cannot show a cascade"
        )
    ex = float(s.excess_peak)
    verdict = "cascade" if ex >= min_excess else "no cascade"
    evidence = (
        f"peak excess {ex:+.3f} at step {int(s.excess_peak_step)} "
        f"(run {float(s.run_at_excess_peak):.3f} "
        f"vs control {float(s.control_at_excess_peak):.3f}); threshold {min_excess:g}"
    )
    return verdict, evidence


def cascade_summary(
    run: xr.Dataset,
    control: xr.Dataset | None,
    event: int = 0,
    min_excess: float = 0.05,
    onset_excess: float = 0.01,
    window: int | str | None = DEFAULT_WINDOW,
    denominator: str = "eligible",
    line: Line | None = None,
) -> xr.Dataset:
    """Statistics of one event on one line (default: the recorded line), against ``control`` when
    given.

    Returns ``onset_step``, ``peak_step``, ``time_to_peak``, ``peak_shed_fraction``,
    ``amplification`` (shed count at the peak / weights pruned), ``shed_events``,
    ``recovered_events``, ``excess_peak``, ``excess_amplification`` (the excess at its peak × the
    eligible survivors / weights pruned: the survivors shed beyond the control per weight pruned),
    ``excess_peak_step``, per-layer ``peak_shed_fraction_layer`` and ``excess_peak_layer`` (all
    within the window: a step count or an OpenLTH step string such as ``5ep``; None or 'round' is
    the whole round),
    ``final_shed_fraction`` and ``final_excess`` at the round's end, and attrs ``verdict``,
    ``evidence`` and ``rule``. Without a control the verdict is ``no control`` and the excess
    variables are NaN.
    """
    event = event_index(run, event)
    w = window_steps(run, window)
    run_curves = shed_curves(run, event, line, denominator=denominator).compute()
    ctrl_curves = None
    if control is not None:
        line = Line(line.kind, line.value) if line is not None else None
        if line is None or line.is_recorded(run):
            ctrl_curves = shed_curves(control, 0, line, denominator=denominator).compute()
        else:
            values = run_curves.line_value.values
            ci = line.recorded_index(control)
            same = ci is not None and np.allclose(
                control.line_value.isel(event=0, line=ci).values, values, rtol=1e-6
            )
            # the control is measured against the run's line: its own counts if it recorded those
            # values
            ctrl_curves = (
                shed_curves(control, 0, line, denominator=denominator)
                if same
                else shed_curves(
                    control, 0, Line("abs", 1.0), line_values=values, denominator=denominator
                )
            )
            ctrl_curves = ctrl_curves.compute()
    pruned = int(run.event_pruned.isel(event=event).sum())
    out = summarize_event(run_curves, ctrl_curves, pruned, w, min_excess, onset_excess)
    verdict, evidence = _verdict(out, min_excess, control is not None)
    out.attrs.update(
        verdict=verdict,
        evidence=evidence,
        rule=_rule(w, min_excess, onset_excess, denominator),
        line=run_curves.attrs["line"],
        resolution=run_curves.attrs["resolution"],
        event=event,
    )
    return out.compute()


def detect_cascades(
    run: xr.Dataset,
    control: xr.Dataset | None = None,
    lines: list[Line] | None = None,
    min_excess: float = 0.05,
    onset_excess: float = 0.01,
    window: int | str | None = DEFAULT_WINDOW,
    denominator: str = "eligible",
) -> xr.Dataset:
    """Every prune event of ``run`` on every line: the :func:`cascade_summary` variables over
    (event, line), plus ``verdict`` and ``evidence`` string arrays. Lines other than the recorded
    one need magnitudes.
    """
    lines = lines or [Line("gmp", float(run.attrs.get("alpha", 1.0)))]
    rows = []
    for event in range(run.sizes["event"]):
        per_line = []
        for line in lines:
            s = cascade_summary(
                run, control, event, min_excess, onset_excess, window, denominator, line
            )
            s = s.assign(
                verdict=s.attrs["verdict"],
                evidence=s.attrs["evidence"],
                resolution=s.attrs["resolution"],
            )
            per_line.append(s)
        rows.append(
            xr.concat(
                per_line, dim=xr.DataArray([ln.label for ln in lines], dims="line", name="line")
            )
        )
    out = xr.concat(
        rows, dim=xr.DataArray(np.arange(run.sizes["event"]), dims="event", name="event")
    )
    out.attrs.update(rule=_rule(window_steps(run, window), min_excess, onset_excess, denominator))
    return out
