"""The map's figures: heatmaps of a cell statistic over a pair of factors, with buttons that choose
the pair (xarray in, ``go.Figure`` out; no I/O)."""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go
import xarray as xr

from shedding.reports.figures import LAYOUT
from shedding.studies.map_design import LABELS, level_text
from shedding.studies.map_tables import heatmap

CASCADE_MARK = "●"  # the cell's verdict is "cascade"
ABOVE_ONE = "▲"  # mean amplification above 1
CI_ABOVE_ONE = "★"  # the amplification's 95% CI lies above 1
VIEWS = {  # variable: (title, colour-scale midpoint)
    "amplification": ("Amplification (excess shed / pruned)", 1.0),
    "excess_peak": ("Peak excess S_run - S_control", 0.0),
}
MARKS_NOTE = (
    f"{CASCADE_MARK} cascade (the cell's verdict), {ABOVE_ONE} mean amplification above 1, "
    f"{CI_ABOVE_ONE} its 95% CI above 1; blank: not run"
)


def heatmap_options(
    cells: xr.Dataset, base: dict[str, Any], pairs: list[tuple[str, str]]
) -> list[xr.Dataset]:
    """Every heatmap the selector offers: each pair, and for a pair without the method one per
    pruning method; those with no cell are left out."""
    methods = list(dict.fromkeys(str(m) for m in cells.method.values))
    out = []
    for a, b in pairs:
        for m in [None] if "method" in (a, b) else methods:
            h = heatmap(cells, base, a, b, m)
            if h.sizes["y"] and h.sizes["x"]:
                out.append(h)
    return out


def _title(h: xr.Dataset) -> str:
    a, b, m = h.attrs["a"], h.attrs["b"], h.attrs["method"]
    return f"{LABELS[a]} x {LABELS[b]}" + (f" ({m})" if m else "")


def _cell_text(h: xr.Dataset, var: str) -> list[list[str]]:
    """Each cell's value (3 significant figures) and marks."""
    z, amp, lo = h[var].values, h.amplification.values, h.amplification_low.values
    out = []
    for iy in range(h.sizes["y"]):
        line = []
        for ix in range(h.sizes["x"]):
            if not np.isfinite(z[iy, ix]):
                line.append("")
                continue
            marks = CASCADE_MARK if h.verdict.values[iy, ix] == "cascade" else ""
            marks += ABOVE_ONE if amp[iy, ix] > 1 else ""
            marks += CI_ABOVE_ONE if lo[iy, ix] > 1 else ""
            line.append(f"{z[iy, ix]:.3g} {marks}".strip())
        out.append(line)
    return out


def _number(v: float) -> float | None:
    """A finite number, else None (JSON has no NaN: the browser would refuse the figure)."""
    return float(v) if np.isfinite(v) else None


def _trace(h: xr.Dataset, var: str, visible: bool) -> go.Heatmap:
    """One heatmap trace of ``var`` with its CI and verdict in the hover."""
    z = h[var].values
    custom = np.dstack(
        [h[f"{var}_low"].values, h[f"{var}_high"].values, h.seeds.values.astype(float)]
    )
    verdicts = h.verdict.values
    return go.Heatmap(
        z=[[_number(v) for v in row] for row in z],
        x=[level_text(h.attrs["b"], v) for v in h.x.values.tolist()],
        y=[level_text(h.attrs["a"], v) for v in h.y.values.tolist()],
        text=_cell_text(h, var),
        texttemplate="%{text}",
        customdata=[
            [[*map(_number, custom[iy, ix]), str(verdicts[iy, ix])] for ix in range(z.shape[1])]
            for iy in range(z.shape[0])
        ],
        hovertemplate="%{y} / %{x}<br>%{z:.3g} [%{customdata[0]:.3g}, %{customdata[1]:.3g}]"
        "<br>%{customdata[2]} seeds, %{customdata[3]}<extra></extra>",
        colorscale="RdBu_r",
        zmid=VIEWS[var][1],
        visible=visible,
        colorbar=dict(title=var),
        xgap=2,
        ygap=2,
    )


def heatmap_figure(options: list[xr.Dataset], var: str) -> go.Figure:
    """Heatmaps of ``var`` (``amplification`` or ``excess_peak``) with one button per pair."""
    fig = go.Figure([_trace(h, var, i == 0) for i, h in enumerate(options)])
    title = VIEWS[var][0]
    buttons = []
    for i, h in enumerate(options):
        layout = {
            "title.text": f"{title}: {_title(h)}",
            "xaxis.title.text": LABELS[h.attrs["b"]],
            "yaxis.title.text": LABELS[h.attrs["a"]],
        }
        visible = [j == i for j in range(len(options))]
        buttons.append(dict(label=_title(h), method="update", args=[{"visible": visible}, layout]))
    first = options[0] if options else None
    fig.update_layout(
        title=f"{title}: {_title(first)}" if first is not None else title,
        xaxis=dict(type="category", title=LABELS[first.attrs["b"]] if first is not None else ""),
        yaxis=dict(type="category", title=LABELS[first.attrs["a"]] if first is not None else ""),
        updatemenus=[dict(buttons=buttons, direction="down", x=0, xanchor="left", y=1.22)]
        if buttons
        else [],
        annotations=[
            dict(
                text=MARKS_NOTE,
                showarrow=False,
                xref="paper",
                yref="paper",
                x=0,
                y=-0.3,
                xanchor="left",
            )
        ],
        **{**LAYOUT, "hovermode": "closest", "height": 460, "margin": dict(t=120, b=120)},
    )
    return fig
