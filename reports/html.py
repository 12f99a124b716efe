"""The analysis report (``shedding analyze --out``) and the kept-set comparison (``shedding compare
--out``): one self-contained HTML page each, the answer first (a sentence per condition and the one
figure that shows it), then a navigation bar and the sections (:mod:`shedding.reports.page_layout`).
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from shedding.analysis.run_identity import run_identity
from shedding.analysis.summary import Summary
from shedding.reports.html_tables import html_table
from shedding.reports.page_layout import (
    CSS,
    ReportFigure,
    captioned,
    figure_block,
    nav_bar,
    page,
    section,
)
from shedding.reports.report_figures import report_figures
from shedding.reports.report_rows import (
    condition_rows,
    convergence_rows,
    line_rows,
    overlap_rows,
    run_rows,
)
from shedding.reports.verdict_sentences import (
    condition_sentences,
    convergence_sentences,
    evidence_details,
    overlap_sentences,
)
from shedding.storage import write_text_atomic

__all__ = ["CSS", "figure_block", "html_table", "page", "report_figures", "write_report"]

NO_CONTROL = (
    '<div class="banner warn"><b>No control run.</b> Retraining alone sheds weights '
    "(docs/science.md#shedding), so these shed curves cannot show a cascade. Record the same "
    "retraining with <code>--prune-method none</code> and analyze it alongside.</div>"
)
RUNS_NOTE = (
    "<p><small>S = shed weights / {denominator} survivors; a survivor is shed while |w| is below "
    "alpha·tau, tau being the GMP cut value at the event's sparsity. Peak, excess, onset and "
    "amplification are taken within the cascade window; amplification = shed count at the peak / "
    "weights pruned; recovered = crossings back above the line in the window; — = none (no onset: "
    "the excess never reached the onset level).</small></p>"
)
CONDITIONS_NOTE = (
    "<p><small>Means over seeds; below each mean, its 95% bootstrap CI. Click a column heading to "
    "sort.</small></p>"
)


def _configuration(summary: Summary) -> str:
    """Each run's configuration, folded; a run recorded without one (``shedding.watch``) shows its
    identity instead."""
    items = []
    for n, ds in summary.runs.items():
        cfg = ds.attrs.get("config")
        if cfg:
            text = html.escape(json.dumps(cfg, indent=1))
            items.append(f"<details><summary>{html.escape(n)}</summary><pre>{text}</pre></details>")
            continue
        ident = run_identity(ds)
        role = ", the control" if ident.control else ""
        items.append(
            f"<p>{html.escape(n)}: — (recorded without a configuration; condition "
            f"{html.escape(ident.condition)}, seed {ident.seed}{role})</p>"
        )
    return (
        f"<details><summary>the configuration of each run ({len(items)})</summary>"
        f"{''.join(items)}</details>"
    )


def _kept_numbers(summary: Summary) -> str:
    """The kept-set tables: pairs of the same seed, every pair (folded), the convergence."""
    every = overlap_rows(summary, same_seed=False)
    same = overlap_rows(summary, same_seed=True)
    parts = [html_table(same or every)]
    if same and len(every) > len(same):
        parts.append(
            f"<details><summary>every pair of runs ({len(every)})</summary>"
            f"{html_table(every)}</details>"
        )
    conv = convergence_rows(summary)
    if conv:
        parts.append(
            "<p><small>Convergence: a random run's kept set against the GMP run of its seed "
            "(Jaccard minus chance).</small></p>" + html_table(conv)
        )
    return "".join(parts)


def _figure_sections(figs: list[ReportFigure], start: int) -> str:
    """Each figure in its section (numbered from ``start``), with its caption."""
    return "".join(
        section(f.anchor, f.title, captioned(f.figure, start + i, f.link, f.caption), f.wide)
        for i, f in enumerate(figs)
    )


def _full_body(summary: Summary, figs: list[ReportFigure]) -> str:
    """The analysis report: verdicts, the shed-fraction figure, then tables and figures."""
    lead, rest = figs[0], figs[1:]
    tables = [
        ("conditions", "Conditions", CONDITIONS_NOTE + html_table(condition_rows(summary))),
        (
            "runs",
            "Runs",
            html_table(run_rows(summary))
            + RUNS_NOTE.format(denominator=html.escape(str(summary.params.get("denominator")))),
        ),
    ]
    if summary.lines and len(summary.lines) > 1:
        tables.append(("lines", "Verdicts per line", html_table(line_rows(summary))))
    tail = []
    if summary.overlaps:
        tail.append(("kept-set-numbers", "Kept-set tables", _kept_numbers(summary)))
    tail.append(("configuration", "Configuration", _configuration(summary)))
    answer = (
        ("" if summary.controls else NO_CONTROL)
        + condition_sentences(summary)
        + evidence_details(summary)
    )
    return _assemble(answer, lead, tables, rest, tail)


def _comparison_body(summary: Summary, figs: list[ReportFigure]) -> str:
    """The kept-set comparison: overlap sentences and matrix, then the other kept-set views."""
    lead, rest = figs[0], figs[1:]
    answer = overlap_sentences(summary) + convergence_sentences(summary)
    tail = [
        ("kept-set-numbers", "Kept-set tables", _kept_numbers(summary)),
        ("configuration", "Configuration", _configuration(summary)),
    ]
    return _assemble(answer, lead, [], rest, tail)


def _assemble(
    answer: str,
    lead: ReportFigure,
    tables: list[tuple[str, str, str]],
    figs: list[ReportFigure],
    tail: list[tuple[str, str, str]],
) -> str:
    """Answer, lead figure, navigation bar, then the sections: ``tables``, ``figs``, ``tail``."""
    links = [(a, h) for a, h, _ in tables] + [(f.anchor, f.label or f.title) for f in figs]
    links += [(a, h) for a, h, _ in tail]
    body = "".join(section(a, h, c) for a, h, c in tables)
    body += _figure_sections(figs, 1) + "".join(section(a, h, c) for a, h, c in tail)
    return (
        f'<div id="answer">{answer}\n{captioned(lead.figure, 0, lead.link, lead.caption)}</div>\n'
        f'{nav_bar([("answer", "Answer"), *links])}\n<div class="sections">{body}</div>'
    )


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
    body = _comparison_body(summary, figs) if kind == "comparison" else _full_body(summary, figs)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, page(title, body))
    return out
