"""The rewinding study's figure (xarray in, ``go.Figure`` out; no I/O)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import xarray as xr

from shedding.reports.figures import as_list
from shedding.studies.study_page import CLOSEST, TECHNIQUE_COLORS, color_of, select_groups


def rewinding_curves(points: xr.Dataset, budget: float) -> go.Figure:
    """Median accuracy change against the dense network (points) over compression (log), one line
    per technique x schedule, at one retraining budget; error bars span the seeds (min to max)."""
    fig = go.Figure()
    sub = select_groups(points, budget=budget)
    i = 0
    for tech in dict.fromkeys(str(t) for t in sub.technique.values):
        for schedule in dict.fromkeys(str(s) for s in sub.schedule.values):
            g = select_groups(sub, technique=tech, schedule=schedule)
            if g.sizes["group"] == 0:
                continue
            order = np.argsort(g.compression.values)
            g = g.isel(group=order)
            med = 100 * g.delta_median
            fig.add_trace(
                go.Scatter(
                    x=as_list(g.compression),
                    y=as_list(med),
                    name=f"{tech}, {schedule}",
                    mode="lines+markers",
                    line=dict(
                        color=color_of(tech, i, TECHNIQUE_COLORS),
                        dash="solid" if schedule == "iterative" else "dash",
                    ),
                    marker=dict(symbol="circle" if schedule == "iterative" else "square", size=8),
                    error_y=dict(
                        type="data",
                        symmetric=False,
                        array=as_list(100 * g.delta_max - med),
                        arrayminus=as_list(med - 100 * g.delta_min),
                        thickness=1,
                    ),
                    customdata=np.stack(
                        [g.n.values, 100 * g.delta_mean.values, 100 * g.accuracy_median.values], -1
                    ).tolist(),
                    hovertemplate=(
                        f"{tech}, {schedule}<br>compression %{{x:.3g}}x<br>median change "
                        "%{y:+.2f} points"
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
