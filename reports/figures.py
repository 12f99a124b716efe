"""Plotly figures built from shedding.analysis results (xarray in, ``go.Figure`` out; no I/O).

Arrays are passed to Plotly as plain lists so the report's embedded JSON holds readable numbers.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import xarray as xr
from plotly.subplots import make_subplots

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
CONTROL_COLOR = "#555555"
LAYOUT = dict(
    template="plotly_white",
    height=420,
    margin=dict(l=60, r=20, t=60, b=50),
    hovermode="x unified",
    legend=dict(orientation="h", y=-0.2),
)


def as_list(a: xr.DataArray | np.ndarray) -> list:
    """Plain floats of an array (NaN and infinities as None), for a figure's JSON."""
    values = np.asarray(a.values if isinstance(a, xr.DataArray) else a, dtype=float)
    return [None if not np.isfinite(v) else float(v) for v in values.ravel()]


def _run_curve(name: str, f: xr.Dataset, is_ctrl: bool, color: str) -> go.Scatter:
    """A run's global S(t): solid in its color, or dashed grey for a control."""
    return go.Scatter(
        x=as_list(f.step),
        y=as_list(f.shed_fraction_global),
        name=name + (" (control)" if is_ctrl else ""),
        mode="lines",
        line=dict(
            color=CONTROL_COLOR if is_ctrl else color,
            dash="dash" if is_ctrl else "solid",
        ),
    )


def _excess_curve(name: str, f: xr.Dataset, ctrl: xr.Dataset, color: str) -> go.Scatter:
    """A run's global S minus its control's, at the steps both have."""
    common = np.intersect1d(f.step.values, ctrl.step.values)
    ex = f.shed_fraction_global.sel(step=common) - ctrl.shed_fraction_global.sel(step=common)
    return go.Scatter(
        x=[int(s) for s in common],
        y=as_list(ex),
        name=f"{name} excess",
        mode="lines",
        line=dict(color=color),
    )


def shed_curves(
    fractions: dict[str, xr.Dataset], controls: set[str], control_of: dict[str, str | None]
) -> go.Figure:
    """Global S(t) of every run (controls dashed grey) and, below, each pruned run's excess over its
    matched control (``control_of``, from :func:`shedding.analysis.controls.match_controls`; no
    excess for a run without one)."""
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        row_heights=[0.6, 0.4],
        subplot_titles=("shed fraction S(t)", "excess over the control S_run - S_control"),
    )
    any_ctrl = False
    for i, (name, f) in enumerate(fractions.items()):
        is_ctrl = name in controls
        color = PALETTE[i % len(PALETTE)]
        fig.add_trace(_run_curve(name, f, is_ctrl, color), row=1, col=1)
        ctrl = fractions.get(control_of.get(name) or "")
        if ctrl is not None and not is_ctrl:
            any_ctrl = True
            fig.add_trace(_excess_curve(name, f, ctrl, color), row=2, col=1)
    if not any_ctrl:
        fig.add_annotation(
            text="NO CONTROL RUN: these curves cannot show a cascade",
            showarrow=False,
            xref="x2 domain",
            yref="y2 domain",
            x=0.5,
            y=0.5,
            font=dict(size=16, color="red"),
        )
    fig.update_layout(
        title="Shedding after pruning, against the unpruned control",
        **LAYOUT,
    )
    fig.update_layout(height=560)
    fig.update_xaxes(title_text="retraining step", row=2, col=1)
    fig.update_yaxes(title_text="S", row=1, col=1)
    fig.update_yaxes(title_text="excess", row=2, col=1)
    return fig


def magnitude_distribution(
    name: str, hist: xr.DataArray, lines: list[float] | None = None
) -> go.Figure:
    """Heatmap of the log10|w| histogram (non-zero weights) over snapshot steps, with the shed
    line(s)."""
    centers = (hist.bin_lo.values + hist.bin_hi.values) / 2
    h = hist.transpose("bin", "record_step")
    fig = go.Figure(
        go.Heatmap(
            z=[[float(v) for v in row] for row in np.log10(1 + np.asarray(h.values, dtype=float))],
            customdata=[[int(v) for v in row] for row in np.asarray(h.values)],
            x=as_list(h.record_step),
            y=[float(c) for c in centers],
            colorscale="Magma",
            colorbar=dict(title="log10(1+count)"),
            hovertemplate="step %{x}<br>log10|w| %{y:.2f}<br>count %{customdata}<extra></extra>",
        )
    )
    for i, line in enumerate(lines or []):
        if line > 0:
            fig.add_hline(
                y=float(np.log10(line)),
                line=dict(color="cyan", dash="dash", width=1),
                annotation_text="shed line" if i == 0 else None,
                annotation_font_color="cyan",
            )
    fig.update_layout(
        title=f"{name}: distribution of surviving |w| over steps",
        xaxis_title="step",
        yaxis_title="log10 |w|",
        **{**LAYOUT, "hovermode": "closest"},
    )
    return fig


def training_curves(runs: dict[str, xr.Dataset]) -> go.Figure:
    """Loss and LR per step, train and test accuracy per epoch, for every run; one legend entry
    per run (its loss trace) shows or hides all four of its traces."""
    fig = make_subplots(
        rows=1, cols=3, subplot_titles=("training loss", "learning rate", "accuracy")
    )
    for i, (name, ds) in enumerate(runs.items()):
        color = PALETTE[i % len(PALETTE)]
        series = [
            (ds.step, ds.loss, f"{name} loss", 1, dict(color=color, width=1), "lines"),
            (ds.step, ds.lr, f"{name} LR", 2, dict(color=color), "lines"),
            (
                ds.epoch_step,
                ds.test_accuracy,
                f"{name} test",
                3,
                dict(color=color),
                "lines+markers",
            ),
            (
                ds.epoch_step,
                ds.train_accuracy,
                f"{name} train",
                3,
                dict(color=color, dash="dot"),
                "lines",
            ),
        ]
        for k, (x, y, label, col, line, mode) in enumerate(series):
            fig.add_trace(
                go.Scatter(
                    x=as_list(x),
                    y=as_list(y),
                    name=name if k == 0 else label,
                    mode=mode,
                    line=line,
                    legendgroup=name,
                    showlegend=k == 0,
                    meta=label,
                ),
                row=1,
                col=col,
            )
    fig.update_layout(title="Training", **LAYOUT)
    fig.update_yaxes(type="log", row=1, col=2)
    return fig


def overlap_matrix(
    names: list[str], jaccard: np.ndarray, chance: np.ndarray, p_value: np.ndarray
) -> go.Figure:
    """Pairwise Jaccard of the runs' kept sets, with the chance level and p-value on hover."""
    text = [
        [f"J={jaccard[i, j]:.3f}<br>chance={chance[i, j]:.3f}" for j in range(len(names))]
        for i in range(len(names))
    ]
    fig = go.Figure(
        go.Heatmap(
            z=[[float(v) for v in row] for row in jaccard],
            x=names,
            y=names,
            zmin=0,
            zmax=1,
            colorscale="Blues",
            text=text,
            texttemplate="%{text}",
            customdata=[[float(v) for v in row] for row in p_value],
            hovertemplate="%{y} vs %{x}<br>%{text}<br>p=%{customdata:.2e}<extra></extra>",
        )
    )
    fig.update_layout(
        title="Kept-set overlap (Jaccard) beside its chance level",
        **{**LAYOUT, "hovermode": "closest"},
    )
    return fig


def _band_traces(
    fig: go.Figure, band: xr.Dataset, name: str, color: str, row: int, dash: str = "solid"
) -> None:
    x = [int(s) for s in band.step.values]
    if int(band.attrs.get("n", 1)) >= 2:
        fig.add_trace(
            go.Scatter(
                x=x + x[::-1],
                y=as_list(band.high) + as_list(band.low)[::-1],
                fill="toself",
                fillcolor=_rgba(color, 0.18),
                line=dict(width=0),
                hoverinfo="skip",
                name=f"{name} 95% CI",
                showlegend=False,
                legendgroup=name,
            ),
            row=row,
            col=1,
        )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=as_list(band["mean"]),
            name=name,
            mode="lines",
            legendgroup=name,
            line=dict(color=color, dash=dash),
        ),
        row=row,
        col=1,
    )


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def shed_bands(
    bands: dict[str, dict[str, xr.Dataset]],
    controls: set[str],
    n_seeds: dict[str, int],
    window: int | None,
) -> go.Figure:
    """Mean S(t) per condition with its 95% bootstrap CI band over seeds, and the excess over the
    control."""
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        row_heights=[0.6, 0.4],
        subplot_titles=(
            "shed fraction S(t), mean over seeds with 95% CI",
            "excess over the matched control, mean with 95% CI",
        ),
    )
    i = 0
    any_excess = False
    for label, b in bands.items():
        is_ctrl = label in controls
        color = CONTROL_COLOR if is_ctrl else PALETTE[i % len(PALETTE)]
        i += 0 if is_ctrl else 1
        tag = f"{label} (n={n_seeds.get(label, 1)})"
        _band_traces(fig, b["S"], tag, color, 1, "dash" if is_ctrl else "solid")
        if "excess" in b:
            any_excess = True
            _band_traces(fig, b["excess"], f"{tag} excess", color, 2)
    if window:
        fig.add_vline(
            x=window, line=dict(color="#999", dash="dot"), annotation_text="cascade window"
        )
    if not any_excess:
        fig.add_annotation(
            text="NO CONTROL RUN: these curves cannot show a cascade",
            showarrow=False,
            xref="x2 domain",
            yref="y2 domain",
            x=0.5,
            y=0.5,
            font=dict(size=16, color="red"),
        )
    fig.update_layout(
        title="Shedding after pruning against the unpruned control (steps since the event)",
        **LAYOUT,
    )
    fig.update_layout(height=600)
    fig.update_xaxes(title_text="steps since the prune event", row=2, col=1)
    return fig


def accuracy_vs_sparsity(points: list[dict[str, object]]) -> go.Figure:
    """Test accuracy after each round's retraining (and right after its prune) against its
    sparsity."""
    fig = go.Figure()
    groups: dict[str, list[dict[str, object]]] = {}
    for p in points:
        groups.setdefault(str(p["condition"]), []).append(p)
    for i, (label, pts) in enumerate(groups.items()):
        color = PALETTE[i % len(PALETTE)]
        fig.add_trace(
            go.Scatter(
                x=[float(p["sparsity"]) for p in pts],
                y=[float(p["final_accuracy"]) for p in pts],
                mode="markers",
                name=f"{label}: after retraining",
                marker=dict(color=color, size=10),
                text=[str(p["run"]) for p in pts],
                hovertemplate="%{text}<br>sparsity %{x:.3f}<br>accuracy %{y:.4f}<extra></extra>",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=[float(p["sparsity"]) for p in pts],
                y=[float(p["pruned_accuracy"]) for p in pts],
                mode="markers",
                name=f"{label}: right after pruning",
                marker=dict(color=color, size=8, symbol="x"),
                text=[str(p["run"]) for p in pts],
                hovertemplate="%{text}<br>sparsity %{x:.3f}<br>accuracy %{y:.4f}<extra></extra>",
            )
        )
    fig.update_layout(
        title="Accuracy against sparsity",
        xaxis_title="sparsity (fraction pruned)",
        yaxis_title="test accuracy",
        **{**LAYOUT, "hovermode": "closest"},
    )
    return fig


def convergence_figure(results: dict[tuple[str, str], xr.Dataset]) -> go.Figure:
    """Jaccard above chance of a random run's kept sets with GMP's kept set, over the retraining
    steps."""
    fig = go.Figure()
    for i, ((run, ref), r) in enumerate(results.items()):
        color = PALETTE[i % len(PALETTE)]
        x = [int(s) for s in r.record_step.values]
        fig.add_trace(
            go.Scatter(
                x=x,
                y=as_list(r.toward_effective),
                mode="lines",
                line=dict(color=color),
                name=f"{run} vs {ref}: effective set (kept, not shed)",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=as_list(r.toward_above_line),
                mode="lines",
                line=dict(color=color, dash="dot"),
                name=f"{run} vs {ref}: kept and above the line",
            )
        )
    fig.add_hline(y=0, line=dict(color="#999"))
    fig.update_layout(
        title="Does the random run's kept set move towards GMP's? (Jaccard minus chance)",
        xaxis_title="step",
        yaxis_title="J - J_chance",
        **LAYOUT,
    )
    return fig
