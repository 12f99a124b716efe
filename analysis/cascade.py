"""Cascade against a control (SCIENCE.md section 4): onset, peak, time to peak, amplification, excess.

A *cascade* is a rise of the shed fraction S(t) well above the same quantity in a control run (same
retraining, nothing pruned, same line) within a window after the prune event. Our rule, with every
constant a parameter: the run shows a cascade when its excess E(t) = S_run(t) - S_control(t) reaches
``min_excess`` within ``window`` steps of the event. Onset is the first step where E(t) reaches
``onset_excess``; the peak is the step of the largest S_run in the window.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from analysis.shed import amplification, peak, shed_fraction, steps_of_round


def window_steps(ds: xr.Dataset, window: int | str | None) -> int | None:
    """Resolve a window (steps, a step string such as ``5ep``, or None/'round' for the whole round)."""
    if window is None or window == "round":
        return None
    if isinstance(window, str):
        from shedding.steps import Step

        return Step.parse(window).iterations(int(ds.attrs["iterations_per_epoch"]))
    return int(window)


def cascade_summary(run: xr.Dataset, control: xr.Dataset | None, event: int = 0, min_excess: float = 0.05,
                    onset_excess: float = 0.01, window: int | str | None = "5ep",
                    denominator: str = "eligible") -> xr.Dataset:
    """Scalars and per-layer statistics of one event's shedding, against ``control`` when given.

    Returns a Dataset with ``onset_step``, ``peak_step``, ``time_to_peak``, ``peak_shed_fraction``,
    ``amplification``, ``excess_peak``, ``excess_peak_step``, per-layer ``peak_shed_fraction_layer`` and
    ``excess_peak_layer`` (all within the window: a step count or an OpenLTH step string such as ``5ep``;
    None or 'round' is the whole round), ``final_shed_fraction`` and ``final_excess`` at the round's end,
    and attrs ``verdict``, ``evidence`` and ``rule``.
    Without a control the verdict is ``no control`` and the excess variables are NaN.
    """
    ev_step = int(run.event_step.isel(event=event))
    window = window_steps(run, window)
    s_round = shed_fraction(run, denominator)
    s_round = s_round.sel(step=run.step.values[steps_of_round(run, event)]).compute()
    s_run = s_round
    if window is not None:
        s_run = s_round.sel(step=s_round.step[(s_round.step > ev_step) & (s_round.step <= ev_step + window)])
    g_run = s_run.shed_fraction_global
    peak_step, peak_value = peak(g_run)
    amp = amplification(run, event, window)
    out = xr.Dataset({
        "peak_step": peak_step,
        "time_to_peak": peak_step - ev_step,
        "peak_shed_fraction": peak_value,
        "final_shed_fraction": float(s_round.shed_fraction_global.values[-1]),
        "peak_shed_fraction_layer": s_run.shed_fraction.max("step"),
        "amplification": amp.amplification,
        "recovered_events": s_run.recover_events_global.sum(),
        "shed_events": s_run.shed_events_global.sum(),
        "pruned": amp.pruned,
    })
    rule = (f"cascade when S_run - S_control reaches {min_excess:g} within "
            f"{'the round' if window is None else f'{window} steps'} of the event "
            f"(S = shed / {denominator} survivors; onset: first step the excess reaches {onset_excess:g})")
    if control is None:
        nan = float("nan")
        out = out.assign(onset_step=-1, excess_peak=nan, excess_peak_step=-1, final_excess=nan,
                         control_peak_shed_fraction=nan,
                         excess_peak_layer=xr.full_like(out.peak_shed_fraction_layer, np.nan))
        out.attrs.update(verdict="no control", rule=rule,
                         evidence="no control run given: retraining alone sheds, so S(t) without a control "
                                  "cannot show a cascade")
        return out.compute()
    s_ctrl = shed_fraction(control, denominator)
    final_common = np.intersect1d(s_round.step.values, s_ctrl.step.values)
    final_excess = float(s_round.shed_fraction_global.sel(step=final_common[-1])
                         - s_ctrl.shed_fraction_global.sel(step=final_common[-1])) if final_common.size else np.nan
    common = np.intersect1d(s_run.step.values, s_ctrl.step.values)
    if common.size == 0:
        raise ValueError("the run and its control share no retraining steps; they are not comparable")
    ex = (s_run.shed_fraction_global.sel(step=common)
          - s_ctrl.shed_fraction_global.sel(step=common)).compute()
    ex_layer = (s_run.shed_fraction.sel(step=common) - s_ctrl.shed_fraction.sel(step=common)).max("step")
    ex_step, ex_value = peak(ex)
    onset_idx = np.flatnonzero(ex.values >= onset_excess)
    onset = int(common[onset_idx[0]]) if onset_idx.size else -1
    _, ctrl_peak = peak(s_ctrl.shed_fraction_global.sel(step=common).compute())
    out = out.assign(onset_step=onset, excess_peak=ex_value, excess_peak_step=ex_step,
                     final_excess=final_excess, control_peak_shed_fraction=ctrl_peak,
                     excess_peak_layer=ex_layer)
    cascade = bool(ex_value >= min_excess)
    verdict = "cascade" if cascade else "no cascade"
    evidence = (f"peak excess {ex_value:+.3f} at step {ex_step} (run {float(g_run.sel(step=ex_step)):.3f} vs "
                f"control {float(s_ctrl.shed_fraction_global.sel(step=ex_step)):.3f}); "
                f"threshold {min_excess:g}")
    out.attrs.update(verdict=verdict, rule=rule, evidence=evidence)
    return out.compute()
