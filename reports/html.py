"""Assembling a self-contained HTML report: plotly.js inlined once, each figure's JSON embedded."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from analysis.distribution import magnitude_histogram
from analysis.summary import Summary
from reports import figures

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1200px;padding:16px;
color:#222}
h1{font-size:1.5em} h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:0.9em;margin:8px 0} td,th{border:1px solid #ddd;padding:4px 8px;
text-align:right} th{background:#f4f4f4} td:first-child,th:first-child{text-align:left}
.banner{padding:12px 16px;border-radius:6px;margin:12px 0;font-size:1.05em}
.cascade{background:#fde2e1;border:1px solid #e0837f} .nocascade{background:#e3f1e3;border:1px solid #7fbf7f}
.warn{background:#fff3cd;border:2px solid #d39e00;font-weight:bold}
.figure{margin:12px 0} pre{background:#f7f7f7;padding:8px;overflow:auto;font-size:0.8em}
"""


def _fig_block(fig: go.Figure, idx: int) -> str:
    payload = json.dumps(fig.to_plotly_json(), default=_json_default)
    return (f'<div class="figure" id="fig-{idx}"></div>\n'
            f'<script type="application/json" id="fig-{idx}-data">{_escape_script(payload)}</script>\n'
            f'<script>(function(){{var s=JSON.parse(document.getElementById("fig-{idx}-data").textContent);'
            f'Plotly.newPlot("fig-{idx}",s.data,s.layout,{{responsive:true}});}})();</script>')


def _escape_script(text: str) -> str:
    return text.replace("</", "<\\/")


def _json_default(o: object) -> object:
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(type(o))


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return "—" if not np.isfinite(v) else f"{v:.4g}"
    return html.escape(str(v))


def _table(rows: list[dict[str, object]], keys: list[str]) -> str:
    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(r.get(k))}</td>" for k in keys) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def report_figures(summary: Summary) -> list[tuple[str, go.Figure]]:
    """Every figure of the report, with its section title."""
    out: list[tuple[str, go.Figure]] = [("Shed fraction against the control",
                                         figures.shed_curves(summary.fractions, summary.controls))]
    for name, f in summary.fractions.items():
        out.append((f"Per-layer shedding: {name}", figures.layer_heatmap(name, f)))
    for name, ds in summary.runs.items():
        if "magnitude" in ds:
            out.append((f"Magnitude distribution: {name}",
                        figures.magnitude_distribution(name, magnitude_histogram(ds).compute(),
                                                       [float(v) for v in ds.event_line.values])))
    out.append(("Loss, learning rate and accuracy", figures.training_curves(summary.runs)))
    if summary.overlaps:
        names = list(summary.runs)
        n = len(names)
        jac, chance, p = np.eye(n), np.zeros((n, n)), np.zeros((n, n))
        for (a, b), ov in summary.overlaps.items():
            i, j = names.index(a), names.index(b)
            for m, key in ((jac, "jaccard"), (chance, "jaccard_chance"), (p, "p_value")):
                m[i, j] = m[j, i] = float(ov[key].sel(scope="all"))
        for i in range(n):
            chance[i, i] = float("nan")
            p[i, i] = float("nan")
        out.append(("Kept-set overlap", figures.overlap_matrix(names, jac, chance, p)))
    return out


def _banners(summary: Summary) -> str:
    parts = []
    if not summary.controls:
        parts.append('<div class="banner warn">No control run. Retraining alone sheds weights (SCIENCE.md §4), '
                     "so these shed curves cannot show a cascade. Record the same retraining with "
                     "<code>--prune-method none</code> and analyze it alongside.</div>")
    for name, c in summary.cascades.items():
        if name in summary.controls:
            continue
        verdict = c.attrs["verdict"]
        cls = {"cascade": "cascade", "no cascade": "nocascade"}.get(verdict, "warn")
        parts.append(f'<div class="banner {cls}"><b>{html.escape(name)}: {html.escape(verdict.upper())}</b> — '
                     f"{html.escape(c.attrs['evidence'])}<br><small>Rule: {html.escape(c.attrs['rule'])}</small></div>")
    return "\n".join(parts)


def write_report(summary: Summary, out: str | Path, title: str = "Cascade weight shedding report") -> Path:
    """Write the report for ``summary`` to ``out`` (atomically: a temporary file renamed at the end)."""
    out = Path(out)
    figs = report_figures(summary)
    rows = summary.table()
    keys = ["run", "method", "technique", "sparsity", "final_accuracy", "peak_S", "peak_step", "final_S",
            "excess_peak", "onset_step", "amplification", "verdict"]
    overlap_rows = [{"run A": a, "run B": b, **{k: float(ov[k].sel(scope="all")) for k in
                     ("jaccard", "jaccard_chance", "p_value", "spearman")}}
                    for (a, b), ov in summary.overlaps.items()]
    configs = "".join(
        f"<details><summary>{html.escape(n)}</summary><pre>{html.escape(json.dumps(ds.attrs.get('config'), indent=1))}"
        f"</pre></details>" for n, ds in summary.runs.items())
    sections = []
    for i, (heading, fig) in enumerate(figs):
        sections.append(f"<h2>{html.escape(heading)}</h2>\n{_fig_block(fig, i)}")
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title><style>{CSS}</style>
<script type="text/javascript">{get_plotlyjs()}</script></head>
<body>
<h1>{html.escape(title)}</h1>
{_banners(summary)}
<h2>Summary</h2>
{_table(rows, keys)}
<p><small>S = shed weights / {html.escape(next(iter(summary.fractions.values())).attrs.get('denominator', ''))}
survivors; a survivor is shed while |w| is below alpha·tau, tau being the GMP cut value at the event's sparsity.
Amplification = shed count at the peak / weights pruned. Excess = S_run − S_control.</small></p>
{_table(overlap_rows, list(overlap_rows[0])) if overlap_rows else ""}
{"".join(sections)}
<h2>Configuration</h2>
{configs}
</body></html>
"""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(doc, encoding="utf-8")
    os.replace(tmp, out)
    return out
