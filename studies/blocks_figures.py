"""The blocks study's figure (xarray in, ``go.Figure`` out; no I/O)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import xarray as xr

from shedding.reports.figures import as_list
from shedding.studies.study_page import CLOSEST, TECHNIQUE_COLORS, color_of, select_groups


def blocks_curves(blocks: xr.Dataset, sparsity: float, dense: float) -> go.Figure:
    """Accuracy (mean over seeds, 95% CI) against block shape (ordered by block size) per
    technique."""
    fig = go.Figure()
    sub = select_groups(blocks, sparsity=sparsity)
    order = sorted(
        dict.fromkeys(str(b) for b in sub.block.values),
        key=lambda b: (int(sub.block_size.values[list(sub.block.values).index(b)]), b),
    )
    for i, tech in enumerate(dict.fromkeys(str(t) for t in sub.technique.values)):
        g = select_groups(sub, technique=tech)
        pos = {str(b): j for j, b in enumerate(g.block.values)}
        idx = [pos[b] for b in order if b in pos]
        g = g.isel(group=idx)
        mean = 100 * g.accuracy_mean
        fig.add_trace(
            go.Scatter(
                x=[str(b) for b in g.block.values],
                y=as_list(mean),
                name=tech,
                mode="lines+markers",
                line=dict(color=color_of(tech, i, TECHNIQUE_COLORS)),
                marker=dict(size=9),
                error_y=dict(
                    type="data",
                    symmetric=False,
                    array=as_list(100 * g.accuracy_high - mean),
                    arrayminus=as_list(mean - 100 * g.accuracy_low),
                    thickness=1,
                ),
                customdata=np.stack(
                    [g.n.values, 100 * g.recorded_sparsity_mean.values], -1
                ).tolist(),
                hovertemplate=(
                    f"{tech}<br>block %{{x}}<br>accuracy %{{y:.2f}}%<br>seeds %{{customdata[0]}}, "
                    "recorded "
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
