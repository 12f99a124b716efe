"""Plotly figures built from analysis results (xarray in, ``go.Figure`` out; no I/O).

Arrays are passed to Plotly as plain lists so the report's embedded JSON holds readable numbers.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import xarray as xr
from plotly.subplots import make_subplots

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
CONTROL_COLOR = "#555555"
LAYOUT = dict(template="plotly_white", height=420, margin=dict(l=60, r=20, t=60, b=50),
              hovermode="x unified", legend=dict(orientation="h", y=-0.2))


def _list(a: xr.DataArray | np.ndarray) -> list:
    values = np.asarray(a.values if isinstance(a, xr.DataArray) else a, dtype=float)
    return [None if not np.isfinite(v) else float(v) for v in values.ravel()]


def shed_curves(fractions: dict[str, xr.Dataset], controls: set[str]) -> go.Figure:
    """Global S(t) of every run (controls dashed grey) and, below, each pruned run's excess over control."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, row_heights=[0.6, 0.4],
                        subplot_titles=("shed fraction S(t)", "excess over the control S_run - S_control"))
    ctrl = next((fractions[c] for c in controls), None)
    for i, (name, f) in enumerate(fractions.items()):
        is_ctrl = name in controls
        fig.add_trace(go.Scatter(
            x=_list(f.step), y=_list(f.shed_fraction_global), name=name + (" (control)" if is_ctrl else ""),
            mode="lines", line=dict(color=CONTROL_COLOR if is_ctrl else PALETTE[i % len(PALETTE)],
                                    dash="dash" if is_ctrl else "solid")), row=1, col=1)
        if ctrl is not None and not is_ctrl:
            common = np.intersect1d(f.step.values, ctrl.step.values)
            ex = f.shed_fraction_global.sel(step=common) - ctrl.shed_fraction_global.sel(step=common)
            fig.add_trace(go.Scatter(x=[int(s) for s in common], y=_list(ex), name=f"{name} excess",
                                     mode="lines", line=dict(color=PALETTE[i % len(PALETTE)])), row=2, col=1)
    if ctrl is None:
        fig.add_annotation(text="NO CONTROL RUN: these curves cannot show a cascade", showarrow=False,
                           xref="x2 domain", yref="y2 domain", x=0.5, y=0.5, font=dict(size=16, color="red"))
    fig.update_layout(title="Shedding after pruning, against the unpruned control", **LAYOUT, )
    fig.update_layout(height=560)
    fig.update_xaxes(title_text="retraining step", row=2, col=1)
    fig.update_yaxes(title_text="S", row=1, col=1)
    fig.update_yaxes(title_text="excess", row=2, col=1)
    return fig


def layer_heatmap(name: str, fraction: xr.Dataset) -> go.Figure:
    """Layer x step heatmap of one run's per-layer shed fraction."""
    sf = fraction.shed_fraction.transpose("layer", "step")
    fig = go.Figure(go.Heatmap(
        z=[_list(row) for row in sf], x=_list(sf.step), y=[str(v) for v in sf.layer.values],
        colorscale="Viridis", colorbar=dict(title="S"), zmin=0,
        hovertemplate="layer %{y}<br>step %{x}<br>S %{z:.3f}<extra></extra>"))
    fig.update_layout(title=f"{name}: shed fraction per layer", xaxis_title="retraining step",
                      **{**LAYOUT, "hovermode": "closest"})
    return fig


def magnitude_distribution(name: str, hist: xr.DataArray, lines: list[float] | None = None) -> go.Figure:
    """Heatmap of the log10|w| histogram (non-zero weights) over snapshot steps, with the shed line(s)."""
    centers = (hist.bin_lo.values + hist.bin_hi.values) / 2
    h = hist.transpose("bin", "record_step")
    fig = go.Figure(go.Heatmap(
        z=[[float(v) for v in row] for row in np.log10(1 + np.asarray(h.values, dtype=float))],
        customdata=[[int(v) for v in row] for row in np.asarray(h.values)],
        x=_list(h.record_step), y=[float(c) for c in centers], colorscale="Magma",
        colorbar=dict(title="log10(1+count)"),
        hovertemplate="step %{x}<br>log10|w| %{y:.2f}<br>count %{customdata}<extra></extra>"))
    for i, line in enumerate(lines or []):
        if line > 0:
            fig.add_hline(y=float(np.log10(line)), line=dict(color="cyan", dash="dash", width=1),
                          annotation_text="shed line" if i == 0 else None, annotation_font_color="cyan")
    fig.update_layout(title=f"{name}: distribution of surviving |w| over steps", xaxis_title="step",
                      yaxis_title="log10 |w|", **{**LAYOUT, "hovermode": "closest"})
    return fig


def training_curves(runs: dict[str, xr.Dataset]) -> go.Figure:
    """Loss and LR per step, train and test accuracy per epoch, for every run."""
    fig = make_subplots(rows=1, cols=3, subplot_titles=("training loss", "learning rate", "accuracy"))
    for i, (name, ds) in enumerate(runs.items()):
        color = PALETTE[i % len(PALETTE)]
        fig.add_trace(go.Scatter(x=_list(ds.step), y=_list(ds.loss), name=f"{name} loss", mode="lines",
                                 line=dict(color=color, width=1), legendgroup=name), row=1, col=1)
        fig.add_trace(go.Scatter(x=_list(ds.step), y=_list(ds.lr), name=f"{name} LR", mode="lines",
                                 line=dict(color=color), legendgroup=name), row=1, col=2)
        fig.add_trace(go.Scatter(x=_list(ds.epoch_step), y=_list(ds.test_accuracy), name=f"{name} test",
                                 mode="lines+markers", line=dict(color=color), legendgroup=name), row=1, col=3)
        fig.add_trace(go.Scatter(x=_list(ds.epoch_step), y=_list(ds.train_accuracy), name=f"{name} train",
                                 mode="lines", line=dict(color=color, dash="dot"), legendgroup=name),
                      row=1, col=3)
    fig.update_layout(title="Training", **LAYOUT)
    fig.update_yaxes(type="log", row=1, col=2)
    return fig


def overlap_matrix(names: list[str], jaccard: np.ndarray, chance: np.ndarray, p_value: np.ndarray) -> go.Figure:
    """Pairwise Jaccard of the runs' kept sets, with the chance level and p-value on hover."""
    text = [[f"J={jaccard[i, j]:.3f}<br>chance={chance[i, j]:.3f}" for j in range(len(names))]
            for i in range(len(names))]
    fig = go.Figure(go.Heatmap(
        z=[[float(v) for v in row] for row in jaccard], x=names, y=names, zmin=0, zmax=1,
        colorscale="Blues", text=text, texttemplate="%{text}",
        customdata=[[float(v) for v in row] for row in p_value],
        hovertemplate="%{y} vs %{x}<br>%{text}<br>p=%{customdata:.2e}<extra></extra>"))
    fig.update_layout(title="Kept-set overlap (Jaccard) beside its chance level", **{**LAYOUT, "hovermode": "closest"})
    return fig
