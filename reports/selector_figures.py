"""Figures that show one run at a time with a run selector (a Plotly dropdown in the figure: it
works offline, in the self-contained page): the per-layer shed fraction and the distribution of
surviving magnitudes. xarray in, ``go.Figure`` out; no I/O.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import xarray as xr

from shedding.reports.figures import LAYOUT, as_list

RUN_MENU = "runs"  # the name of a run selector: the static export writes a file per run
DROPDOWN = dict(x=1.0, xanchor="right", y=1.02, yanchor="bottom", direction="down")


def run_dropdown(names: list[str], per_run: int, titles: list[str], active: int = 0) -> dict:
    """A dropdown with one button per run: it shows that run's ``per_run`` traces (the traces are
    in ``names`` order) and sets the title to the run's entry of ``titles``."""
    n = len(names) * per_run
    buttons = [
        dict(
            label=name,
            method="update",
            args=[
                {"visible": [j // per_run == i for j in range(n)]},
                {"title.text": titles[i]},
            ],
        )
        for i, name in enumerate(names)
    ]
    return dict(buttons=buttons, active=active, name=RUN_MENU, **DROPDOWN)


def _first_pruned(names: list[str], controls: set[str]) -> int:
    """The run a selector shows first: the first that is not a control (else the first)."""
    return next((i for i, n in enumerate(names) if n not in controls), 0)


def layer_heatmaps(
    fractions: dict[str, xr.Dataset], controls: set[str] = frozenset(), zmax: float | None = None
) -> go.Figure:
    """One layer x step heatmap of the per-layer shed fraction per run, on one colour scale
    (``zmax``; default: the largest of all runs), with a dropdown that chooses the run (the first
    pruned run is shown first). Trace ``i`` is the ``i``-th run of ``fractions``."""
    names = list(fractions)
    if zmax is None:
        zmax = max(
            (float(np.nanmax(f.shed_fraction.values)) for f in fractions.values()), default=0
        )
    shown = _first_pruned(names, controls)
    fig = go.Figure()
    for i, (name, f) in enumerate(fractions.items()):
        sf = f.shed_fraction.transpose("layer", "step")
        fig.add_trace(
            go.Heatmap(
                z=[as_list(row) for row in sf],
                x=as_list(sf.step),
                y=[str(v) for v in sf.layer.values],
                name=name,
                visible=i == shown,
                colorscale="Viridis",
                colorbar=dict(title="S"),
                zmin=0,
                zmax=zmax or None,
                hovertemplate=f"{name}<br>layer %{{y}}<br>step %{{x}}<br>S %{{z:.3g}}"
                "<extra></extra>",
            )
        )
    titles = [f"Per-layer shed fraction: {n}" for n in names]
    fig.update_layout(
        title=titles[shown],
        xaxis_title="retraining step",
        updatemenus=[run_dropdown(names, 1, titles, shown)],
        **{**LAYOUT, "hovermode": "closest", "margin": dict(l=60, r=20, t=70, b=50)},
    )
    return fig


def _steps(h: xr.DataArray, max_steps: int) -> xr.DataArray:
    """``h`` at no more than ``max_steps`` snapshot steps, evenly spread (the first and last
    kept)."""
    n = h.sizes["record_step"]
    picks = np.unique(np.linspace(0, n - 1, min(n, max_steps)).round().astype(int))
    return h.isel(record_step=picks)


def _magnitude_traces(name: str, hist: xr.DataArray, line: float, visible: bool) -> list:
    """A run's log10|w| histogram over steps (heatmap, colour log10(1 + count)) and its shed
    line."""
    centers = [float(c) for c in (hist.bin_lo.values + hist.bin_hi.values) / 2]
    h = hist.transpose("bin", "record_step")
    counts = np.asarray(h.values)
    steps = as_list(h.record_step)
    heat = go.Heatmap(
        z=[[round(float(v), 3) for v in row] for row in np.log10(1 + counts.astype(float))],
        customdata=[[int(v) for v in row] for row in counts],
        x=steps,
        y=centers,
        name=name,
        visible=visible,
        colorscale="Magma",
        colorbar=dict(title="log10(1+n)"),
        hovertemplate=f"{name}<br>step %{{x}}<br>log10|w| %{{y:.2f}}<br>weights %{{customdata}}"
        "<extra></extra>",
    )
    y = float(np.log10(line)) if line > 0 else None
    shed_line = go.Scatter(
        x=[steps[0], steps[-1]],
        y=[y, y],
        mode="lines",
        name=f"{name}: shed line",
        visible=visible,
        showlegend=False,
        line=dict(color="cyan", dash="dash", width=1.5),
        hovertemplate="shed line log10|w| %{y:.2f}<extra></extra>",
    )
    return [heat, shed_line]


def magnitude_views(
    hists: dict[str, xr.DataArray],
    lines: dict[str, float],
    controls: set[str] = frozenset(),
    max_steps: int = 100,
) -> go.Figure:
    """Per run: the histogram of log10|w| of its surviving weights over the snapshot steps (at most
    ``max_steps`` of them) with its shed line (dashed cyan), and a dropdown that chooses the run.
    Traces ``2i`` and ``2i + 1`` are the ``i``-th run's heatmap and line."""
    names = list(hists)
    shown = _first_pruned(names, controls)
    fig = go.Figure()
    for i, name in enumerate(names):
        fig.add_traces(
            _magnitude_traces(name, _steps(hists[name], max_steps), lines[name], i == shown)
        )
    titles = [f"Distribution of surviving |w| over steps: {n}" for n in names]
    fig.update_layout(
        title=titles[shown],
        xaxis_title="step",
        yaxis_title="log10 |w|",
        updatemenus=[run_dropdown(names, 2, titles, shown)],
        **{**LAYOUT, "hovermode": "closest", "margin": dict(l=60, r=20, t=70, b=50)},
    )
    return fig
