"""Plotly figures of the studies (xarray in, ``go.Figure`` out; no I/O)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import xarray as xr

from shedding.reports.figures import CONTROL_COLOR, LAYOUT, PALETTE, _list

TECHNIQUE_COLORS = {
    "finetune": PALETTE[0],
    "weight_rewind": PALETTE[1],
    "lr_rewind": PALETTE[2],
    "reinit": PALETTE[3],
}
METHOD_COLORS = {"gmp": PALETTE[0], "random": PALETTE[1], "none": CONTROL_COLOR}
CLOSEST = {**LAYOUT, "hovermode": "closest"}


def _color(name: str, i: int, table: dict[str, str]) -> str:
    return table.get(name, PALETTE[i % len(PALETTE)])


def _select(ds: xr.Dataset, **where: object) -> xr.Dataset:
    sel = np.ones(ds.sizes["group"], dtype=bool)
    for k, v in where.items():
        values = ds[k].values
        sel &= np.isclose(values.astype(float), float(v)) if isinstance(v, float) else values == v
    return ds.isel(group=np.flatnonzero(sel))


def rewinding_curves(points: xr.Dataset, budget: float) -> go.Figure:
    """Median accuracy change against the dense network (points) over compression (log), one line
    per technique x schedule, at one retraining budget; error bars span the seeds (min to max)."""
    fig = go.Figure()
    sub = _select(points, budget=budget)
    i = 0
    for tech in dict.fromkeys(str(t) for t in sub.technique.values):
        for schedule in dict.fromkeys(str(s) for s in sub.schedule.values):
            g = _select(sub, technique=tech, schedule=schedule)
            if g.sizes["group"] == 0:
                continue
            order = np.argsort(g.compression.values)
            g = g.isel(group=order)
            med = 100 * g.delta_median
            fig.add_trace(
                go.Scatter(
                    x=_list(g.compression),
                    y=_list(med),
                    name=f"{tech}, {schedule}",
                    mode="lines+markers",
                    line=dict(
                        color=_color(tech, i, TECHNIQUE_COLORS),
                        dash="solid" if schedule == "iterative" else "dash",
                    ),
                    marker=dict(symbol="circle" if schedule == "iterative" else "square", size=8),
                    error_y=dict(
                        type="data",
                        symmetric=False,
                        array=_list(100 * g.delta_max - med),
                        arrayminus=_list(med - 100 * g.delta_min),
                        thickness=1,
                    ),
                    customdata=np.stack(
                        [g.n.values, 100 * g.delta_mean.values, 100 * g.accuracy_median.values], -1
                    ).tolist(),
                    hovertemplate=(
                        f"{tech}, {schedule}<br>compression %{{x:.3g}}x<br>median change %{{y:+.2f}} points"
                        "<br>seeds %{customdata[0]}, mean %{customdata[1]:+.2f}<br>median accuracy "
                        "%{customdata[2]:.2f}%<extra></extra>"
                    ),
                )
            )
            i += 1
    fig.add_hline(y=0, line=dict(color="#444", dash="dot"), annotation_text="dense accuracy")
    fig.update_layout(
        title=f"Accuracy change against the dense network at t = {budget:g} T (median over seeds; "
        "bars: min to max)",
        xaxis_title="compression (1 / density), log scale",
        yaxis_title="test accuracy - dense (percentage points)",
        **CLOSEST,
    )
    fig.update_xaxes(type="log")
    return fig


def blocks_curves(blocks: xr.Dataset, sparsity: float, dense: float) -> go.Figure:
    """Accuracy (mean over seeds, 95% CI) against block shape (ordered by block size) per
    technique."""
    fig = go.Figure()
    sub = _select(blocks, sparsity=sparsity)
    order = sorted(
        dict.fromkeys(str(b) for b in sub.block.values),
        key=lambda b: (int(sub.block_size.values[list(sub.block.values).index(b)]), b),
    )
    for i, tech in enumerate(dict.fromkeys(str(t) for t in sub.technique.values)):
        g = _select(sub, technique=tech)
        pos = {str(b): j for j, b in enumerate(g.block.values)}
        idx = [pos[b] for b in order if b in pos]
        g = g.isel(group=idx)
        mean = 100 * g.accuracy_mean
        fig.add_trace(
            go.Scatter(
                x=[str(b) for b in g.block.values],
                y=_list(mean),
                name=tech,
                mode="lines+markers",
                line=dict(color=_color(tech, i, TECHNIQUE_COLORS)),
                marker=dict(size=9),
                error_y=dict(
                    type="data",
                    symmetric=False,
                    array=_list(100 * g.accuracy_high - mean),
                    arrayminus=_list(mean - 100 * g.accuracy_low),
                    thickness=1,
                ),
                customdata=np.stack(
                    [g.n.values, 100 * g.recorded_sparsity_mean.values], -1
                ).tolist(),
                hovertemplate=(
                    f"{tech}<br>block %{{x}}<br>accuracy %{{y:.2f}}%<br>seeds %{{customdata[0]}}, recorded "
                    "sparsity %{customdata[1]:.2f}%<extra></extra>"
                ),
            )
        )
    if np.isfinite(dense):
        fig.add_hline(
            y=100 * dense, line=dict(color="#444", dash="dot"), annotation_text="dense (median)"
        )
    fig.update_layout(
        title=f"Accuracy against block size at sparsity {sparsity:g} (mean over seeds, 95% CI)",
        xaxis_title="block shape (bh x bw), by size",
        yaxis_title="test accuracy (%)",
        **CLOSEST,
    )
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=order)
    return fig


def excess_bars(conditions: xr.Dataset, min_excess: float) -> go.Figure:
    """Peak excess of S over the matched control within the window, mean over seeds with 95% CI, per
    condition."""
    fig = go.Figure()
    for i, method in enumerate(dict.fromkeys(str(m) for m in conditions.method.values)):
        g = _select(conditions, method=method)
        x = [f"{c} ({s:g})" for c, s in zip(g.condition.values, g.sparsity.values, strict=True)]
        y = g.excess_peak
        fig.add_trace(
            go.Bar(
                x=x,
                y=_list(y),
                name=method,
                marker_color=_color(method, i, METHOD_COLORS),
                error_y=dict(
                    type="data",
                    symmetric=False,
                    array=_list(g.excess_peak_high - y),
                    arrayminus=_list(y - g.excess_peak_low),
                ),
                customdata=[
                    [str(v), int(n)] for v, n in zip(g.verdict.values, g.seeds.values, strict=True)
                ],
                hovertemplate=f"{method}<br>%{{x}}<br>peak excess %{{y:+.3f}}<br>%{{customdata[0]}} "
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
        g = _select(conditions, method=method)
        x = [f"{c} ({s:g})" for c, s in zip(g.condition.values, g.sparsity.values, strict=True)]
        y = 100 * g.final_accuracy
        fig.add_trace(
            go.Bar(
                x=x,
                y=_list(y),
                name=f"{method}: after retraining",
                marker_color=_color(method, i, METHOD_COLORS),
                error_y=dict(
                    type="data",
                    symmetric=False,
                    array=_list(100 * g.final_accuracy_high - y),
                    arrayminus=_list(y - 100 * g.final_accuracy_low),
                ),
            )
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=_list(100 * g.pruned_accuracy),
                name=f"{method}: right after pruning",
                mode="markers",
                marker=dict(symbol="x", size=11, color=_color(method, i, METHOD_COLORS)),
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
                y=_list(y),
                name="control (unpruned)",
                marker_color=CONTROL_COLOR,
                error_y=dict(
                    type="data",
                    symmetric=False,
                    array=_list(100 * controls.final_accuracy_high - y),
                    arrayminus=_list(y - 100 * controls.final_accuracy_low),
                ),
            )
        )
    fig.update_layout(
        title="Test accuracy: random pruning with and without a cascade, against GMP and the control",
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
                y=_list(c.values[ok]),
                mode="lines",
                name=f"{cond}, seed {int(ds.seed.values[i])}",
                legendgroup=cond,
                line=dict(color=color),
            )
        )
    fig.add_hline(y=0, line=dict(color="#444"), annotation_text="chance (independent sets)")
    fig.update_layout(
        title="Does random pruning's kept set move towards GMP's as it sheds? (Jaccard minus chance; "
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
                y=_list(c.values[ok]),
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
