"""Plotly figure of the semi-structured view (:func:`shedding.analysis.blocks.block_density`);
xarray in, figure out."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import xarray as xr

from shedding.reports.figures import CONTROL_COLOR, LAYOUT, PALETTE, as_list


def _fmt(v: float, spec: str) -> str:
    return "n/a" if not np.isfinite(v) else format(v, spec)


def _title(name: str, result: xr.Dataset, scope: str) -> str:
    r = result.sel(scope=scope)
    return (
        f"{name}: kept weights per block ({result.attrs.get('pattern', '?')}, full blocks only), "
        f"{scope}<br><sub>dispersion {_fmt(float(r.dispersion), '.3g')} (1 = random-like), "
        f"p = {_fmt(float(r.p_value), '.2g')} (chi-square vs binomial), {int(r.n_blocks)} blocks, "
        f"density {_fmt(float(r.density), '.3f')}</sub>"
    )


def _scope_bars(r: xr.Dataset, s: str, x: list[int], visible: bool) -> list[go.Bar]:
    """The observed and the binomial-expected bars of scope ``s``."""
    return [
        go.Bar(
            x=x,
            y=as_list(r.observed),
            name="observed",
            visible=visible,
            marker_color=PALETTE[0],
            meta=s,
            hovertemplate=f"{s}<br>%{{x}} kept: %{{y}} blocks<extra>observed</extra>",
        ),
        go.Bar(
            x=x,
            y=as_list(r.expected),
            name="binomial (random set, same density)",
            visible=visible,
            marker_color=CONTROL_COLOR,
            opacity=0.6,
            meta=s,
            hovertemplate=f"{s}<br>%{{x}} kept: %{{y:.1f}} blocks<extra>expected</extra>",
        ),
    ]


def _scope_buttons(name: str, result: xr.Dataset, scopes: list[str]) -> list[dict]:
    """One dropdown button per scope: show its two traces and its title."""
    buttons = []
    for i, s in enumerate(scopes):
        visible = [j // 2 == i for j in range(2 * len(scopes))]
        buttons.append(
            dict(
                label=s,
                method="update",
                args=[{"visible": visible}, {"title": {"text": _title(name, result, s)}}],
            )
        )
    return buttons


def block_density_figure(name: str, result: xr.Dataset, scope: str = "all") -> go.Figure:
    """Observed vs binomial-expected number of blocks per kept count; a dropdown switches scope
    (layer).

    Two bar traces per scope, in ``result.scope`` order (observed, then expected); only ``scope``'s
    are visible.
    """
    scopes = [str(s) for s in result.scope.values]
    if scope not in scopes:
        raise ValueError(f"unknown scope {scope!r}; choose one of {', '.join(scopes)}")
    x = [int(v) for v in result.kept_count.values]
    fig = go.Figure()
    for s in scopes:
        fig.add_traces(_scope_bars(result.sel(scope=s), s, x, s == scope))
    layout = {**LAYOUT, "hovermode": "closest", "margin": dict(l=60, r=20, t=90, b=50)}
    fig.update_layout(
        title=_title(name, result, scope),
        barmode="group",
        xaxis_title="kept weights in the block",
        yaxis_title="blocks",
        **layout,
        updatemenus=[
            dict(
                buttons=_scope_buttons(name, result, scopes),
                active=scopes.index(scope),
                x=1.0,
                xanchor="right",
                y=1.15,
                yanchor="bottom",
                direction="down",
            )
        ],
    )
    fig.update_xaxes(tickmode="array", tickvals=x)
    return fig
