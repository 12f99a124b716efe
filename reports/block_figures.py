"""Plotly figure of the semi-structured view (:func:`shedding.analysis.blocks.block_density`);
xarray in, figure out."""

from __future__ import annotations

import plotly.graph_objects as go
import xarray as xr

from shedding.reports.figures import CONTROL_COLOR, LAYOUT, PALETTE, as_list
from shedding.reports.numbers import number, pvalue


def _equals(text: str) -> str:
    """``= text``, or ``text`` alone when it is a bound (``< 1e-6``)."""
    return text if text.startswith("<") else f"= {text}"


def _title(name: str, result: xr.Dataset, scope: str) -> str:
    r = result.sel(scope=scope)
    return (
        f"{name}: kept weights per block ({result.attrs.get('pattern', '?')}, full blocks only), "
        f"{scope}<br><sub>dispersion {number(float(r.dispersion))} (1 = random-like), "
        f"p {_equals(pvalue(float(r.p_value)))} (chi-square vs binomial), "
        f"{int(r.n_blocks)} blocks, "
        f"density {number(float(r.density))}</sub>"
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


def block_density_runs(results: dict[str, xr.Dataset]) -> go.Figure:
    """:func:`block_density_figure` of several runs in one figure: a dropdown entry per run and
    scope (``run: scope``), the first run's ``all`` shown first. Traces ``2k`` and ``2k + 1`` are
    the ``k``-th entry's observed and expected bars."""
    entries = [(n, str(s)) for n, r in results.items() for s in r.scope.values]
    fig = go.Figure()
    for k, (n, s) in enumerate(entries):
        r = results[n]
        x = [int(v) for v in r.kept_count.values]
        fig.add_traces(_scope_bars(r.sel(scope=s), f"{n}: {s}", x, k == 0))
    buttons = [
        dict(
            label=f"{n}: {s}",
            method="update",
            args=[
                {"visible": [j // 2 == k for j in range(2 * len(entries))]},
                {"title.text": _title(n, results[n], s)},
            ],
        )
        for k, (n, s) in enumerate(entries)
    ]
    first, scope = entries[0]
    fig.update_layout(
        title=dict(text=_title(first, results[first], scope), y=0.93, yanchor="top"),
        barmode="group",
        xaxis_title="kept weights in the block",
        yaxis_title="blocks",
        **{**LAYOUT, "hovermode": "closest", "margin": dict(l=60, r=20, t=120, b=50)},
        updatemenus=[
            dict(
                buttons=buttons,
                active=0,
                x=1.0,
                xanchor="right",
                y=1.0,
                yanchor="bottom",
                direction="down",
            )
        ],
    )
    return fig
