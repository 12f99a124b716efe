"""What every study's report shares: one self-contained HTML page (plotly.js inlined once, as
:mod:`shedding.reports.html` does), and the colours and selections of the studies' figures.

Every page has the question and the setting, the grid, failed runs in red, the "compared with the
paper" table, the study's sections, every run with its factors and results, and the base
configuration.
"""

from __future__ import annotations

import dataclasses
import html
import json
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import xarray as xr

from shedding.reports.figures import CONTROL_COLOR, LAYOUT, PALETTE
from shedding.reports.html import CSS, figure_block, html_table, page
from shedding.reports.numbers import percent
from shedding.storage import write_text_atomic
from shedding.studies.study_runs import StudyResults

EXTRA_CSS = """
.verdict-reproduced{background:#e3f1e3} .verdict-not{background:#fde2e1} \
.claims td{white-space:normal;
text-align:left;max-width:420px;vertical-align:top}
.controlnote{background:#fff3cd;border:3px solid #d39e00;font-weight:bold;font-size:1.1em;\
padding:12px 14px;
border-radius:6px;margin:10px 0}
"""
SETTINGS_NOTE = (
    "<p><small>The settings differ (a small network on small data against the papers' "
    "CIFAR/ImageNet ResNets): a number of ours is not a measurement of the paper's number; only "
    "the direction of a claim can be checked, under the rule given in its row.</small></p>"
)

Section = tuple[str, str, list[go.Figure]]  # heading, html, figures

TECHNIQUE_COLORS = {
    "finetune": PALETTE[0],
    "weight_rewind": PALETTE[1],
    "lr_rewind": PALETTE[2],
    "reinit": PALETTE[3],
}
METHOD_COLORS = {"gmp": PALETTE[0], "random": PALETTE[1], "none": CONTROL_COLOR}
CLOSEST = {**LAYOUT, "hovermode": "closest"}


def color_of(name: str, i: int, table: dict[str, str]) -> str:
    """The colour of ``name`` in ``table``, else the ``i``-th of the palette."""
    return table.get(name, PALETTE[i % len(PALETTE)])


def select_groups(ds: xr.Dataset, **where: object) -> xr.Dataset:
    """The groups of a table (dim ``group``) whose coordinates equal ``where``'s values (floats:
    close to)."""
    sel = np.ones(ds.sizes["group"], dtype=bool)
    for k, v in where.items():
        values = ds[k].values
        sel &= np.isclose(values.astype(float), float(v)) if isinstance(v, float) else values == v
    return ds.isel(group=np.flatnonzero(sel))


def esc(v: object) -> str:
    """``v`` as escaped HTML text."""
    return html.escape(str(v))


def claims_table(rows: list[dict[str, str]]) -> str:
    """The "compared with the paper" table: claim, paper, ours, verdict (coloured), then the
    settings."""
    if not rows:
        return "<p>No claim could be compared (no complete runs).</p>"
    head = "".join(f"<th>{k}</th>" for k in ("claim", "paper", "ours", "verdict"))
    body = []
    for r in rows:
        v = str(r["verdict"])
        cls = (
            "verdict-reproduced"
            if v.startswith(("reproduced", "consistent", "converges"))
            else "verdict-not"
            if v.startswith(("not reproduced", "does not"))
            else ""
        )
        body.append(
            f"<tr><td>{esc(r['claim'])}</td><td>{esc(r['paper'])}</td><td>{esc(r['ours'])}</td>"
            f'<td class="{cls}"><b>{esc(v)}</b></td></tr>'
        )
    settings = list(dict.fromkeys(r["setting"] for r in rows))
    note = "".join(f"<p><small><b>Setting:</b> {esc(s)}</small></p>" for s in settings)
    return f'<table class="claims"><tr>{head}</tr>{"".join(body)}</table>{note}{SETTINGS_NOTE}'


def _grid_text(grid: Any) -> str:
    """The grid options as indented JSON."""
    if dataclasses.is_dataclass(grid):
        d = dataclasses.asdict(grid)
    else:
        d = dict(grid or {})
    return json.dumps(d, indent=1, default=str)


def _runs_rows(
    results: StudyResults, factors: list[str], extra: list[str] | None = None
) -> list[dict[str, object]]:
    """One row per run: its factors, status and results (and ``extra`` variables); the error of a
    run that did not complete."""
    ds = results.runs
    rows = []
    for i in range(ds.sizes["run"]):
        r = ds.isel(run=i)
        k = max(int(r.rounds), 1)
        row: dict[str, object] = {"run": str(r.run.values)}
        row.update({f: r[f].values.item() for f in factors})
        row.update(
            {
                "status": str(r.status.values),
                "final accuracy": float(r.final_accuracy),
                "dense": float(r.dense_accuracy),
                "delta (last round)": float(r.delta.values[k - 1]),
                "compression (last round)": float(r.compression.values[k - 1]),
                "rounds": int(r.rounds),
                "T": int(r["T"]),
                "t": int(r.t),
                "retrain steps": int(r.retrain_steps),
            }
        )
        for v in extra or []:
            row[v] = r[v].values.item()
        if str(r.status.values) != "complete":
            row["error"] = str(r.error.values)
        rows.append(row)
    return rows


def _factor_levels(ds: Any, factors: list[str]) -> dict[str, str]:
    """Each factor's distinct levels, in grid order, as text."""
    out = {}
    for f in factors:
        values = list(dict.fromkeys(ds[f].values.tolist()))
        out[f] = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)
    return out


def _failed_html(results: StudyResults) -> str:
    """The red banner naming the runs that failed, with their errors (nothing when none did)."""
    ds = results.runs
    failed = results.failed
    if not failed:
        return ""
    n = int(ds.sizes["run"])
    done = int((ds.status == "complete").sum())
    items = "".join(f"<li><code>{esc(f['run'])}</code>: {esc(f['error'])}</li>" for f in failed)
    return (
        f'<div class="banner cascade"><b>{len(failed)} of {n} runs failed</b>; the results below '
        f"are from the {done} complete runs.<ul>{items}</ul></div>"
    )


def _dense_text(results: StudyResults) -> str:
    """The dense accuracies per seed, as text."""
    dense = results.extras.get("dense", {})
    return (
        ", ".join(
            f"seed {s}: {', '.join(percent(v) for v in vals)}"
            for s, vals in sorted(dense.get("per_seed", {}).items())
        )
        or "unknown (no pretrain cache)"
    )


def _sections_html(sections: list[Section]) -> str:
    """Each section's heading, text and figures (numbered in order)."""
    idx = 0
    body = []
    for heading, text, figs in sections:
        body.append(f"<h2>{esc(heading)}</h2>\n{text}")
        for f in figs:
            body.append(figure_block(f, idx, link=False))
            idx += 1
    return "".join(body)


def write_study_report(
    results: StudyResults,
    out: str | Path,
    context: dict[str, Any],
    claims: list[dict[str, str]],
    sections: list[Section],
    factors: list[str],
    banners: str = "",
    run_extra: list[str] | None = None,
) -> Path:
    """Write a study's page to ``out`` atomically (a temporary file renamed at the end)."""
    out = Path(out)
    ds = results.runs
    n = int(ds.sizes["run"])
    done = int((ds.status == "complete").sum())
    levels = "".join(
        f"<li><b>{esc(k)}</b>: {esc(v)}</li>" for k, v in _factor_levels(ds, factors).items()
    )
    quick = str(context.get("size", "full"))
    seconds = context.get("seconds")
    timing = f"; the grid ran for {seconds:.0f} s" if seconds else ""
    grid = esc(_grid_text(context.get("grid")))
    body = f"""<p><b>Question:</b> {esc(context.get("question", ""))}.<br><b>Paper:</b> \
{esc(context.get("paper", ""))}.</p>
<p><small>{quick} grid: {n} runs, {done} complete{timing}. Command: \
<code>{esc(context.get("command", ""))}</code>.
Model {esc(ds.attrs.get("model", "?"))} on {esc(ds.attrs.get("dataset", "?"))}. Dense accuracy \
(the original
training's test accuracy, per seed; one value per distinct original training): \
{esc(_dense_text(results))}.</small></p>
{_failed_html(results)}
{banners}
<h2>Compared with the paper</h2>
{claims_table(claims)}
<h2>The grid</h2>
<ul>{levels}</ul>
{_sections_html(sections)}
<h2>Every run</h2>
{html_table(_runs_rows(results, factors, run_extra))}
<h2>Configuration</h2>
<details><summary>base configuration (TOML; the grid sets its factors on top)</summary>
<pre>{esc(context.get("base_toml", ""))}</pre></details>
<details><summary>grid options</summary><pre>{grid}</pre></details>"""
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, page(context.get("title", "study"), body, CSS + EXTRA_CSS))
    return out
