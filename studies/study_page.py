"""What every study's report shares: one self-contained HTML page laid out as the analysis report
is (:mod:`shedding.reports.page_layout`), and the colours and selections of the studies' figures.

Every page opens with the answer: failed runs in red and the study's banners, then a sentence per
claim (or the study's own ``answer``) and its ``lead`` figure; then a navigation bar, the setting
and the grid, the "compared with the paper" table, the study's sections, every run with its factors
and results, and the base configuration. Each figure carries a one-line caption when the study
gives one (a section's figure may be ``(figure, caption)``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import xarray as xr

from shedding.reports.figures import CONTROL_COLOR, LAYOUT, PALETTE
from shedding.reports.html import CSS, html_table, page
from shedding.reports.page_layout import anchor, captioned, nav_bar, section
from shedding.storage import write_text_atomic
from shedding.studies.study_runs import StudyResults
from shedding.studies.study_setting import esc, failed_html, grid_text, runs_rows, setting_html

EXTRA_CSS = """
.verdict-reproduced{background:#e3f1e3} .verdict-not{background:#fde2e1} \
.claims td{white-space:normal;text-align:left;vertical-align:top}
.claims td:first-child{min-width:14em}
.controlnote{background:#fff3cd;border:3px solid #d39e00;font-weight:bold;font-size:1.0em;\
padding:10px 14px;border-radius:6px;margin:8px 0}
.question{margin:0 0 6px;color:#333}
"""
SETTINGS_NOTE = (
    "<p><small>The settings differ (a small network on small data against the papers' "
    "CIFAR/ImageNet ResNets): a number of ours is not a measurement of the paper's number; only "
    "the direction of a claim can be checked, under the rule given in its row.</small></p>"
)

FigureItem = go.Figure | tuple[go.Figure, str]  # a figure, or a figure and its caption
Section = tuple[str, str, list[FigureItem]]  # heading, html, figures

TECHNIQUE_COLORS = {
    "finetune": PALETTE[0],
    "weight_rewind": PALETTE[1],
    "lr_rewind": PALETTE[2],
    "reinit": PALETTE[3],
}
METHOD_COLORS = {"gmp": PALETTE[0], "random": PALETTE[1], "none": CONTROL_COLOR}
CLOSEST = {**LAYOUT, "hovermode": "closest"}
REPRODUCED = ("reproduced", "consistent", "converges")
NOT_REPRODUCED = ("not reproduced", "does not")


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


def _verdict_class(verdict: str, ok: str, bad: str, other: str) -> str:
    """``ok`` for a reproduced claim, ``bad`` for one not reproduced, else ``other``."""
    if verdict.startswith(NOT_REPRODUCED):
        return bad
    return ok if verdict.startswith(REPRODUCED) else other


def claims_table(rows: list[dict[str, str]]) -> str:
    """The "compared with the paper" table: claim, paper, ours, verdict (coloured), then the
    settings."""
    if not rows:
        return "<p>No claim could be compared (no complete runs).</p>"
    head = "".join(f"<th>{k}</th>" for k in ("claim", "paper", "ours", "verdict"))
    body = []
    for r in rows:
        v = str(r["verdict"])
        cls = _verdict_class(v, "verdict-reproduced", "verdict-not", "")
        body.append(
            f'<tr><td class="text">{esc(r["claim"])}</td><td class="text">{esc(r["paper"])}</td>'
            f'<td class="text">{esc(r["ours"])}</td>'
            f'<td class="text {cls}"><b>{esc(v)}</b></td></tr>'
        )
    settings = list(dict.fromkeys(r["setting"] for r in rows))
    note = "".join(f"<p><small><b>Setting:</b> {esc(s)}</small></p>" for s in settings)
    table = (
        f'<div class="tablebox"><table class="claims sortable"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )
    return f"{table}{note}{SETTINGS_NOTE}"


def claims_sentences(rows: list[dict[str, str]]) -> str:
    """The answer of a study: one coloured line per claim, ``claim: verdict``."""
    if not rows:
        return '<div class="banner warn">No claim could be compared (no complete runs).</div>'
    return "\n".join(
        f'<div class="banner {_verdict_class(str(r["verdict"]), "nocascade", "cascade", "neutral")}'
        f'">{esc(r["claim"])}: <b>{esc(r["verdict"])}</b></div>'
        for r in rows
    )


def _figures_html(figs: list[FigureItem], start: int) -> str:
    """A section's figures numbered from ``start``, each with its caption; two side by side on a
    wide screen when there are several."""
    blocks = []
    for i, item in enumerate(figs):
        fig, text = item if isinstance(item, tuple) else (item, "")
        blocks.append(f"<div>{captioned(fig, start + i, False, text)}</div>")
    if not blocks:
        return ""
    cls = "figrow two" if len(blocks) > 1 else "figrow"
    return f'<div class="{cls}">{"".join(blocks)}</div>'


def _sections_html(sections: list[Section], start: int = 1) -> str:
    """Each section's heading, text and figures (numbered in order from ``start``)."""
    idx = start
    body = []
    for heading, text, figs in sections:
        body.append(section(anchor(heading), heading, text + _figures_html(figs, idx)))
        idx += len(figs)
    return "".join(body)


def _answer_html(answer: str, lead: FigureItem | None) -> str:
    """The answer's text and its figure (number 0), with the figure's caption."""
    if lead is None:
        return f'<div id="answer">{answer}</div>'
    fig, text = lead if isinstance(lead, tuple) else (lead, "")
    return f'<div id="answer">{answer}\n{captioned(fig, 0, False, text)}</div>'


def write_study_report(
    results: StudyResults,
    out: str | Path,
    context: dict[str, Any],
    claims: list[dict[str, str]],
    sections: list[Section],
    factors: list[str],
    banners: str = "",
    run_extra: list[str] | None = None,
    answer: str | None = None,
    lead: FigureItem | None = None,
) -> Path:
    """Write a study's page to ``out`` atomically (a temporary file renamed at the end).

    ``answer``: the HTML at the top (default: a line per claim, :func:`claims_sentences`);
    ``lead``: the figure right under it (default: none).
    """
    out = Path(out)
    config = (
        "<details><summary>base configuration (TOML; the grid sets its factors on top)</summary>"
        f"<pre>{esc(context.get('base_toml', ''))}</pre></details>"
        "<details><summary>grid options</summary>"
        f"<pre>{esc(grid_text(context.get('grid')))}</pre></details>"
    )
    parts: list[Section] = [
        ("Setting", setting_html(results, context, factors), []),
        ("Compared with the paper", claims_table(claims), []),
        *sections,
        ("Every run", html_table(runs_rows(results, factors, run_extra)), []),
        ("Configuration", config, []),
    ]
    nav = nav_bar([("answer", "Answer")] + [(anchor(h), h) for h, _, _ in parts])
    question = esc(context.get("question", ""))
    body = (
        f'<p class="question"><b>Question:</b> {question}.</p>\n{failed_html(results)}\n{banners}\n'
        f"{_answer_html(claims_sentences(claims) if answer is None else answer, lead)}\n{nav}\n"
        f'<div class="sections">{_sections_html(parts)}</div>'
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, page(context.get("title", "study"), body, CSS + EXTRA_CSS))
    return out
