"""The cascade study's figures (xarray in, ``go.Figure`` out; no I/O)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import xarray as xr

from shedding.reports.figures import CONTROL_COLOR, LAYOUT, PALETTE, as_list
from shedding.studies.study_page import CLOSEST, METHOD_COLORS, color_of, select_groups


def excess_bars(conditions: xr.Dataset, min_excess: float) -> go.Figure:
    """Peak excess of S over the matched control within the window, mean over seeds with 95% CI, per
    condition."""
    fig = go.Figure()
    for i, method in enumerate(dict.fromkeys(str(m) for m in conditions.method.values)):
        g = select_groups(conditions, method=method)
        x = [f"{c} ({s:g})" for c, s in zip(g.condition.values, g.sparsity.values, strict=True)]
        y = g.excess_peak
        fig.add_trace(
            go.Bar(
                x=x,
                y=as_list(y),
                name=method,
                marker_color=color_of(method, i, METHOD_COLORS),
                error_y=dict(
                    type="data",
                    symmetric=False,
                    array=as_list(g.excess_peak_high - y),
                    arrayminus=as_list(y - g.excess_peak_low),
                ),
                customdata=[
                    [str(v), int(n)] for v, n in zip(g.verdict.values, g.seeds.values, strict=True)
                ],
                hovertemplate=f"{method}<br>%{{x}}<br>peak excess %{{y:+.3f}}<br>"
                "%{customdata[0]} "
                "(%{customdata[1]} seeds)<extra></extra>",
            )
        )
    fig.add_hline(
        y=min_excess,
        line=dict(color="#c00", dash="dash"),
        annotation_text=f"cascade threshold {min_excess:g}",
    )
    fig.add_hline(y=0, line=dict(color="#444"))
    fig.update_layout(
        title="Excess shedding over the unpruned control (peak within the window; mean, 95% CI)",
        xaxis_title="condition (sparsity)",
        yaxis_title="S_run - S_control",
        barmode="group",
        **CLOSEST,
    )
    return fig


def accuracy_bars(conditions: xr.Dataset, controls: xr.Dataset | None) -> go.Figure:
    """Final test accuracy per condition and method (mean, 95% CI), the control's beside them."""
    fig = go.Figure()
    for i, method in enumerate(dict.fromkeys(str(m) for m in conditions.method.values)):
        g = select_groups(conditions, method=method)
        x = [f"{c} ({s:g})" for c, s in zip(g.condition.values, g.sparsity.values, strict=True)]
        y = 100 * g.final_accuracy
        fig.add_trace(
            go.Bar(
                x=x,
                y=as_list(y),
                name=f"{method}: after retraining",
                marker_color=color_of(method, i, METHOD_COLORS),
                error_y=dict(
                    type="data",
                    symmetric=False,
                    array=as_list(100 * g.final_accuracy_high - y),
                    arrayminus=as_list(y - 100 * g.final_accuracy_low),
                ),
            )
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=as_list(100 * g.pruned_accuracy),
                name=f"{method}: right after pruning",
                mode="markers",
                marker=dict(symbol="x", size=11, color=color_of(method, i, METHOD_COLORS)),
            )
        )
    if controls is not None:
        x = [
            f"{c} ({s:g})"
            for c, s in zip(controls.condition.values, controls.sparsity.values, strict=True)
        ]
        y = 100 * controls.final_accuracy
        fig.add_trace(
            go.Bar(
                x=x,
                y=as_list(y),
                name="control (unpruned)",
                marker_color=CONTROL_COLOR,
                error_y=dict(
                    type="data",
                    symmetric=False,
                    array=as_list(100 * controls.final_accuracy_high - y),
                    arrayminus=as_list(y - 100 * controls.final_accuracy_low),
                ),
            )
        )
    fig.update_layout(
        title="Test accuracy: random pruning with and without a cascade, against GMP and the "
        "control",
        xaxis_title="condition (sparsity)",
        yaxis_title="test accuracy (%)",
        barmode="group",
        **CLOSEST,
    )
    return fig


def convergence_curves(ds: xr.Dataset) -> go.Figure:
    """Jaccard minus chance of each random run's kept-and-above-the-line set with the GMP run's kept
    set."""
    fig = go.Figure()
    conds = list(dict.fromkeys(str(c) for c in ds.condition.values))
    has = np.isfinite(ds.convergence).any("conv_step").values
    for i in np.flatnonzero(has):
        cond = str(ds.condition.values[i])
        color = PALETTE[conds.index(cond) % len(PALETTE)]
        c = ds.convergence.isel(run=i)
        ok = np.isfinite(c.values)
        fig.add_trace(
            go.Scatter(
                x=[int(s) for s in c.conv_step.values[ok]],
                y=as_list(c.values[ok]),
                mode="lines",
                name=f"{cond}, seed {int(ds.seed.values[i])}",
                legendgroup=cond,
                line=dict(color=color),
            )
        )
    fig.add_hline(y=0, line=dict(color="#444"), annotation_text="chance (independent sets)")
    fig.update_layout(
        title="Does random pruning's kept set move towards GMP's as it sheds? (Jaccard minus "
        "chance; "
        "rising = converging)",
        xaxis_title="steps since pruning",
        yaxis_title="J - J_chance (random's kept and above the line vs GMP's kept)",
        **LAYOUT,
    )
    return fig


def control_levels(ds: xr.Dataset) -> go.Figure:
    """S(t) of the unpruned controls per condition: how much retraining alone sheds."""
    fig = go.Figure()
    conds = list(dict.fromkeys(str(c) for c in ds.condition.values))
    ctrl = np.flatnonzero(
        (ds.method.values == "none") & np.isfinite(ds.shed_fraction).any("since").values
    )
    for i in ctrl:
        cond = str(ds.condition.values[i])
        c = ds.shed_fraction.isel(run=i)
        ok = np.isfinite(c.values)
        fig.add_trace(
            go.Scatter(
                x=[int(s) for s in c.since.values[ok]],
                y=as_list(c.values[ok]),
                mode="lines",
                name=f"{cond} control, seed {int(ds.seed.values[i])}",
                legendgroup=cond,
                line=dict(color=PALETTE[conds.index(cond) % len(PALETTE)], dash="dash"),
            )
        )
    fig.update_layout(
        title="Retraining alone sheds: S(t) of the unpruned controls",
        xaxis_title="steps since the (empty) prune event",
        yaxis_title="S (control)",
        **LAYOUT,
    )
    return fig


def aware_figure(aware: xr.Dataset) -> go.Figure:
    """Accuracy against total training steps (original training + retraining) per pruning
    schedule."""
    fig = go.Figure()
    for i, schedule in enumerate(str(s) for s in aware.schedule.values):
        y = 100 * aware.final_accuracy.values[i]
        fig.add_trace(
            go.Scatter(
                x=[float(aware.total_steps.values[i])],
                y=[float(y)],
                name=schedule,
                mode="markers",
                marker=dict(size=14, color=PALETTE[i % len(PALETTE)]),
                error_y=dict(
                    type="data",
                    symmetric=False,
                    array=[float(100 * aware.final_accuracy_high.values[i] - y)],
                    arrayminus=[float(y - 100 * aware.final_accuracy_low.values[i])],
                ),
            )
        )
    fig.update_layout(
        title="Cascade-aware pruning against one-shot and iterative GMP at the same final sparsity",
        xaxis_title="training steps (original training + retraining, from the stores)",
        yaxis_title="test accuracy (%)",
        **CLOSEST,
    )
    return fig
