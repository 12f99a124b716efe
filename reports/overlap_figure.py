"""The kept-set overlap as one matrix heatmap of Jaccard minus its chance level, pairs of runs of
the same seed by default and every pair on a button; the hover gives Jaccard, chance and the
hypergeometric p (docs/science.md#kept-sets). xarray in, ``go.Figure`` out; no I/O.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import xarray as xr

from shedding.reports.figures import LAYOUT
from shedding.reports.numbers import number, pvalue

BUTTONS = dict(type="buttons", direction="right", x=0.0, xanchor="left", y=1.02, yanchor="bottom")


def overlap_order(names: list[str], seeds: dict[str, int], leave_out: set[str]) -> list[str]:
    """The runs of the matrix: by seed, then in ``names`` order, without ``leave_out`` (the
    controls: a run that pruned nothing keeps every weight) unless fewer than two would remain."""
    kept = [n for n in names if n not in leave_out]
    kept = kept if len(kept) >= 2 else list(names)
    return sorted(kept, key=lambda n: (seeds.get(n, 0), names.index(n)))


def _cells(g: xr.Dataset, names: list[str], same_seed: np.ndarray | None) -> dict:
    """z (Jaccard minus chance), cell text and hover text of the pairs shown (same seed only
    when ``same_seed`` is given); the diagonal and the pairs not shown are blank."""
    g = g.sel(run_a=names, run_b=names)
    jac, chance, p = g.jaccard.values, g.jaccard_chance.values, g.p_value.values
    z, text, hover = [], [], []
    for i, a in enumerate(names):
        zr, tr, hr = [], [], []
        for j, b in enumerate(names):
            shown = i != j and (same_seed is None or same_seed[i, j])
            d = float(jac[i, j] - chance[i, j])
            zr.append(d if shown and np.isfinite(d) else None)
            tr.append(number(d, signed=True) if shown else "")
            hr.append(
                f"{a} vs {b}<br>Jaccard {number(float(jac[i, j]))}<br>chance "
                f"{number(float(chance[i, j]))}<br>p {pvalue(float(p[i, j]))}"
                if shown
                else ""
            )
        z.append(zr)
        text.append(tr)
        hover.append(hr)
    return {"z": z, "text": text, "customdata": hover}


def _views(
    matrix: xr.Dataset, effective: xr.Dataset | None, names: list[str], seeds: dict[str, int]
) -> list[tuple[str, dict]]:
    """(button label, cells) of each view: kept masks within seeds and over every pair, then the
    same for the effective sets when given."""
    s = np.array([seeds.get(n, 0) for n in names])
    same = s[:, None] == s[None, :]
    sets = [("", matrix)] + ([("effective sets: ", effective)] if effective is not None else [])
    out = []
    for prefix, m in sets:
        g = m.sel(scope="all")
        out.append((f"{prefix}same seed", _cells(g, names, same)))
        out.append((f"{prefix}every pair", _cells(g, names, None)))
    return out


def kept_overlap_matrix(
    matrix: xr.Dataset,
    effective: xr.Dataset | None,
    seeds: dict[str, int],
    leave_out: set[str] = frozenset(),
) -> go.Figure:
    """Jaccard minus chance of every shown pair of kept sets (all layers), one colour scale centred
    on 0 for every view; buttons switch between pairs of the same seed (shown first) and every
    pair, for the masks and (given ``effective``) the effective sets (kept, not shed). Runs as in
    :func:`overlap_order`."""
    names = overlap_order([str(n) for n in matrix.run_a.values], seeds, leave_out)
    views = _views(matrix, effective, names, seeds)
    zs = [v for _, c in views for row in c["z"] for v in row if v is not None]
    lim = max((abs(v) for v in zs), default=0.0) or 1.0
    fig = go.Figure()
    for k, (label, c) in enumerate(views):
        fig.add_trace(
            go.Heatmap(
                **c,
                x=names,
                y=names,
                name=label,
                visible=k == 0,
                texttemplate="%{text}",
                colorscale="RdBu",
                zmin=-lim,
                zmax=lim,
                colorbar=dict(title="J − chance"),
                hovertemplate="%{customdata}<extra></extra>",
            )
        )
    buttons = [
        dict(label=label, method="update", args=[{"visible": [i == k for i in range(len(views))]}])
        for k, (label, _) in enumerate(views)
    ]
    fig.update_layout(
        title=dict(text="Kept-set overlap: Jaccard minus its chance level", y=0.98),
        updatemenus=[dict(buttons=buttons, active=0, **BUTTONS)],
        **{**LAYOUT, "hovermode": "closest", "height": 460, "margin": dict(l=80, r=20, t=90, b=60)},
    )
    fig.update_yaxes(autorange="reversed")
    return fig
