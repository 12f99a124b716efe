"""Assembling a self-contained HTML report: plotly.js inlined once, each figure's JSON embedded.

Figures whose x axis is the training step are linked: hovering one shows the same step in the
others.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from shedding.analysis.blocks import block_density
from shedding.analysis.cascade import window_steps
from shedding.analysis.distribution import magnitude_histogram
from shedding.analysis.seeds import condition_label
from shedding.analysis.summary import Summary
from shedding.reports import figures
from shedding.reports.block_figures import block_density_figure
from shedding.reports.numbers import html_cell, interval, scaled
from shedding.storage import write_text_atomic

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;\
max-width:1200px;padding:16px;
color:#222}
h1{font-size:1.5em} h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:0.85em;margin:8px 0;display:block;overflow-x:auto}
td,th{border:1px solid #ddd;padding:3px 7px;text-align:right;white-space:nowrap} \
th{background:#f4f4f4}
td:first-child,th:first-child{text-align:left}
.banner{padding:10px 14px;border-radius:6px;margin:8px 0;font-size:1.0em}
.cascade{background:#fde2e1;border:1px solid #e0837f} \
.nocascade{background:#e3f1e3;border:1px solid #7fbf7f}
.warn{background:#fff3cd;border:2px solid #d39e00;font-weight:bold}
.figure{margin:12px 0;min-height:300px} \
pre{background:#f7f7f7;padding:8px;overflow:auto;font-size:0.8em}
small{color:#555}
"""

LINK_JS = """
(function(){
  var linked = Array.prototype.slice.call(document.querySelectorAll('.figure[data-link="step"]'));
  var busy = false;
  linked.forEach(function(src){
    src.on('plotly_hover', function(ev){
      if (busy || !ev.points || !ev.points.length) return;
      busy = true;
      var x = ev.points[0].x;
      linked.forEach(function(dst){
        if (dst === src || !dst._fullLayout) return;
        try { Plotly.Fx.hover(dst, {xval: x}, Object.keys(dst._fullLayout._plots)); } catch (e) {}
      });
      busy = false;
    });
    src.on('plotly_unhover', function(){
      linked.forEach(function(dst){ if (dst !== src) { \
try { Plotly.Fx.unhover(dst); } catch (e) {} } });
    });
  });
})();
"""


def _json_default(o: object) -> object:
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(type(o))


def figure_block(fig: go.Figure, idx: int, link: bool) -> str:
    """A figure's placeholder and script: its JSON embedded, drawn by the inlined plotly.js;
    ``link``: hovering it shows the same step in the other linked figures."""
    payload = json.dumps(fig.to_plotly_json(), default=_json_default).replace("</", "<\\/")
    attr = ' data-link="step"' if link else ""
    return (
        f'<div class="figure" id="fig-{idx}"{attr}></div>\n'
        f'<script type="application/json" id="fig-{idx}-data">{payload}</script>\n'
        "<script>(function(){"
        f'var s=JSON.parse(document.getElementById("fig-{idx}-data").textContent);'
        f'Plotly.newPlot("fig-{idx}",s.data,s.layout,{{responsive:true}}).then(function(gd){{'
        f"if(s.frames){{Plotly.addFrames(gd,s.frames);}}}});}})();</script>"
    )


def html_table(rows: list[dict[str, object]], keys: list[str] | None = None) -> str:
    """Rows of dicts as an HTML table (columns: ``keys``, else the first row's keys); each cell is
    written by :func:`shedding.reports.numbers.html_cell`. Empty rows: an empty string."""
    if not rows:
        return ""
    keys = keys or list(rows[0])
    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    body = "".join(
        "<tr>" + "".join(f"<td>{html_cell(r.get(k))}</td>" for k in keys) + "</tr>" for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def report_figures(
    summary: Summary, kind: str = "full", block: tuple[int, int] = (4, 4)
) -> list[tuple[str, go.Figure, bool]]:
    """The report's figures: (section title, figure, linked on the step axis).

    ``kind`` is ``full`` (runs, conditions and comparisons) or ``comparison`` (kept sets only).
    """
    if kind == "comparison":
        return _comparison_figures(summary, block)
    return _run_figures(summary) + _comparison_figures(summary, block)


def _run_figures(summary: Summary) -> list[tuple[str, go.Figure, bool]]:
    runs = summary.runs
    first = next(iter(runs.values()))
    window = window_steps(first, summary.params.get("window"))
    n_seeds = {label: len(names) for label, names in summary.conditions.items()}
    control_labels = {
        label
        for label, names in summary.conditions.items()
        if all(n in summary.controls for n in names)
    }
    out: list[tuple[str, go.Figure, bool]] = [
        (
            "Shed fraction against the control",
            figures.shed_bands(summary.bands, control_labels, n_seeds, window),
            True,
        )
    ]
    zmax = max(
        float(np.nanmax(f.shed_fraction.values)) if f.shed_fraction.size else 0.0
        for f in summary.fractions.values()
    )
    for name, f in summary.fractions.items():
        out.append(
            (f"Per-layer shedding: {name}", figures.layer_heatmap(name, f, zmax or None), True)
        )
    firsts = [names[0] for names in summary.conditions.values()]
    with_mags = [n for n in firsts if "magnitude" in runs[n] or "magnitude_hist" in runs[n]][:6]
    if with_mags:
        hists = {n: magnitude_histogram(runs[n], lo=-6.0, hi=1.0).compute() for n in with_mags}
        lines = {n: float(runs[n].event_line.values[0]) for n in with_mags}
        out.append(
            ("Magnitude distribution over steps", figures.magnitude_animation(hists, lines), False)
        )
    out.append(("Loss, learning rate and accuracy", figures.training_curves(runs), True))
    points = [
        {
            "run": n,
            "condition": condition_label(ds),
            "sparsity": float(ds.event_sparsity.values[e]),
            "final_accuracy": float(ds.event_final_test_accuracy.values[e]),
            "pruned_accuracy": float(ds.event_test_accuracy.values[e]),
        }
        for n, ds in runs.items()
        for e in range(ds.sizes["event"])
    ]
    out.append(("Accuracy against sparsity", figures.accuracy_vs_sparsity(points), False))
    return out


def _comparison_figures(
    summary: Summary, block: tuple[int, int]
) -> list[tuple[str, go.Figure, bool]]:
    runs = summary.runs
    out: list[tuple[str, go.Figure, bool]] = []
    firsts = [names[0] for names in summary.conditions.values()]
    if summary.overlap is not None:
        out.append(
            (
                "Kept-set overlap",
                figures.overlap_matrices(summary.overlap, summary.overlap_effective),
                False,
            )
        )
    if summary.convergences:
        out.append(
            (
                "Does shedding move a random run towards GMP's kept set?",
                figures.convergence_figure(summary.convergences),
                True,
            )
        )
    for n in firsts:
        if n in summary.controls:
            continue
        res = block_density(runs[n], block=block)
        out.append(
            (
                f"Block density ({block[0]}x{block[1]}) of {n}'s kept set",
                block_density_figure(n, res),
                False,
            )
        )
    return out


def _banners(summary: Summary) -> str:
    parts = []
    if not summary.controls:
        parts.append(
            '<div class="banner warn">No control run. Retraining alone sheds weights '
            "(docs/science.md#shedding), "
            "so these shed curves cannot show a cascade. Record the same retraining with "
            "<code>--prune-method none</code> and analyze it alongside.</div>"
        )
    cascades = summary.cascades
    for label, stats in summary.condition_stats.items():
        verdict = str(stats["verdict"])
        cls = (
            "cascade"
            if verdict.startswith("cascade")
            else "nocascade"
            if verdict.startswith("no cascade")
            else "warn"
        )
        lo, hi = stats["excess_peak_ci"]
        ci = f" (95% CI {interval(lo, hi)})" if np.isfinite(lo) else ""
        runs_txt = "; ".join(
            f"{html.escape(n)}: {html.escape(cascades[n].attrs['evidence'])}"
            for n in summary.conditions[label]
        )
        parts.append(
            f'<div class="banner {cls}"><b>{html.escape(label)}: '
            f"{html.escape(verdict.upper())}</b> — "
            f"mean peak excess {scaled(float(stats['excess_peak']))}{ci} over {stats['seeds']} "
            "seed(s)<br>"
            f"<small>{runs_txt}</small></div>"
        )
    if cascades:
        rule = next(iter(cascades.values())).attrs["rule"]
        parts.append(
            f"<p><small>Rule: {html.escape(rule)}. Across seeds: a cascade when the mean peak "
            "excess "
            "reaches the threshold and its 95% bootstrap CI lies above 0.</small></p>"
        )
    return "\n".join(parts)


RUN_KEYS = [
    "run",
    "method",
    "technique",
    "seed",
    "sparsity",
    "final_accuracy",
    "peak_S",
    "peak_step",
    "final_S",
    "excess_peak",
    "onset_step",
    "amplification",
    "recovered",
    "verdict",
]


def page(title: str, body: str, css: str = CSS) -> str:
    """A whole self-contained page: plotly.js inlined once, the escaped ``title`` as its heading,
    then ``body``, then the script that links the figures on the step axis."""
    t = html.escape(str(title))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{t}</title><style>{css}</style>
<script type="text/javascript">{get_plotlyjs()}</script></head>
<body>
<h1>{t}</h1>
{body}
<script>{LINK_JS}</script>
</body></html>
"""


def _condition_rows(summary: Summary) -> list[dict[str, object]]:
    """The conditions table: means over seeds with CIs and the verdict."""
    return [
        {
            "condition": r["condition"],
            "seeds": r["seeds"],
            "excess_peak": r["excess_peak"],
            "95% CI": r["excess_peak_ci"],
            "peak_S": r["peak_shed_fraction"],
            "time_to_peak": r["time_to_peak"],
            "amplification": r["amplification"],
            "amplification CI": r["amplification_ci"],
            "final_excess": r["final_excess"],
            "recovered": r["recovered_events"],
            "verdict": r["verdict"],
        }
        for r in summary.condition_table()
    ]


def _overlap_rows(summary: Summary) -> list[dict[str, object]]:
    """The kept-set overlap of every pair of runs (all layers)."""
    return [
        {
            "run A": a,
            "run B": b,
            **{
                k: float(ov[k].sel(scope="all"))
                for k in ("jaccard", "jaccard_chance", "p_value", "spearman")
            },
        }
        for (a, b), ov in summary.overlaps.items()
    ]


def _convergence_rows(summary: Summary) -> list[dict[str, object]]:
    """Each random run's convergence towards a GMP run's kept set, at the start and the end."""
    return [
        {
            "run": a,
            "reference": b,
            "J-chance at start (above line)": float(r.toward_above_line.values[0]),
            "at end": float(r.toward_above_line.values[-1]),
            "J-chance at start (effective)": float(r.toward_effective.values[0]),
            "at end ": float(r.toward_effective.values[-1]),
            "half-way step (above line)": r.attrs["half_step_above_line"],
        }
        for (a, b), r in summary.convergences.items()
    ]


def _section(heading: str, rows: list[dict[str, object]]) -> str:
    """A heading and its table; nothing without rows."""
    return f"<h2>{heading}</h2>" + html_table(rows) if rows else ""


def write_report(
    summary: Summary,
    out: str | Path,
    title: str = "Cascade weight shedding report",
    kind: str = "full",
    block: tuple[int, int] = (4, 4),
) -> Path:
    """Write the report for ``summary`` to ``out`` (atomically: a temporary file renamed at the
    end).

    ``kind='comparison'`` keeps only the kept-set sections (``shedding compare``).
    """
    out = Path(out)
    figs = report_figures(summary, kind, block)
    line_rows = summary.line_table() if summary.lines and len(summary.lines) > 1 else []
    configs = "".join(
        f"<details><summary>{html.escape(n)}</summary><pre>"
        f"{html.escape(json.dumps(ds.attrs.get('config'), indent=1))}</pre></details>"
        for n, ds in summary.runs.items()
    )
    sections = "".join(
        f"<h2>{html.escape(h)}</h2>\n{figure_block(f, i, link)}"
        for i, (h, f, link) in enumerate(figs)
    )
    denominator = summary.params.get("denominator", "eligible")
    body = f"""{_banners(summary)}
<h2>Conditions (means over seeds, 95% bootstrap CIs)</h2>
{html_table(_condition_rows(summary))}
<h2>Runs</h2>
{html_table(summary.table(), RUN_KEYS)}
<p><small>S = shed weights / {html.escape(str(denominator))} survivors; a survivor is shed while \
|w| is below
alpha·tau, tau being the GMP cut value at the event's sparsity. Peak, excess, onset and \
amplification are taken
within the cascade window; amplification = shed count at the peak / weights pruned; recovered = \
crossings back
above the line in the window.</small></p>
{_section("Verdicts per line", line_rows)}
{_section("Kept-set overlap", _overlap_rows(summary))}
{_section("Convergence towards GMP's kept set", _convergence_rows(summary))}
{sections}
<h2>Configuration</h2>
{configs}"""
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, page(title, body))
    return out
