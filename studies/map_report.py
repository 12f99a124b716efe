"""The map's report: heatmaps of amplification and of excess over a chosen pair of factors, the top
cells with their CIs, the design, every cell, and the paper's claims beside what the map shows (see
:mod:`shedding.studies.study_page`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from shedding.reports.html import html_table
from shedding.studies.map_claims import map_claims
from shedding.studies.map_design import FACTORS, LABELS, level_text
from shedding.studies.map_figures import MARKS_NOTE, heatmap_figure, heatmap_options
from shedding.studies.map_tables import sig3, top_rows
from shedding.studies.study_page import Section, esc, write_study_report
from shedding.studies.study_runs import StudyResults, rows

MAP_FACTORS = [*FACTORS, "method", "seed"]
CONTROL_NOTE = (
    '<div class="controlnote">Retraining alone sheds weights. Every number on this page is the '
    "excess of a pruned run over its seed-matched unpruned control (same setting, seed and "
    "line), never the raw shed fraction: amplification = (S_run - S_control) at the peak of the "
    "excess x eligible survivors / weights pruned.</div>"
)
DESIGN = (
    "<p>The full product of the factors would be far too large, so the map is a set of "
    "one-factor-at-a-time sweeps around a base setting (each factor through its levels, the "
    "others at the base) plus 2-factor crosses (every level pair of two factors, the others at "
    "the base), each setting pruned by GMP and by random pruning and run unpruned as the "
    "control, for every seed. A heatmap shows the cells of one pair with every other factor at "
    "the base; a blank cell was not run. Base setting: {base}.</p>"
)


def _summary(cells: Any) -> str:
    """Where (if anywhere) the amplification's CI lies above 1, and how many cells cascade."""
    if cells is None:
        return "<p>No complete cells.</p>"
    rs = rows(cells)
    above = [r for r in rs if r["amplification_low"] > 1]
    means = [r for r in rs if r["amplification"] > 1]
    cascades = [r for r in rs if r["verdict"] == "cascade"]
    best = max(rs, key=lambda r: r["amplification"] if np.isfinite(r["amplification"]) else -1e9)
    where = ", ".join(f"{LABELS[f]} {level_text(f, best[f])}" for f in (*FACTORS, "method"))
    amp = sig3(best["amplification"], best["amplification_low"], best["amplification_high"])
    return (
        f"<p><b>{len(above)} of {len(rs)} cells have an amplification whose 95% CI lies above 1; "
        f"{len(means)} have a mean above 1; {len(cascades)} show a cascade.</b> The largest mean "
        f"amplification is {esc(amp)} ({esc(where)}).</p>"
    )


def _cell_rows(cells: Any) -> list[dict[str, object]]:
    """Every cell, as the report's full table writes it."""
    out = []
    for r in rows(cells) if cells is not None else []:
        row: dict[str, object] = {LABELS[f]: level_text(f, r[f]) for f in (*FACTORS, "method")}
        row.update(
            {
                "seeds": r["seeds"],
                "controls": r["controls"],
                "amplification": sig3(
                    r["amplification"], r["amplification_low"], r["amplification_high"]
                ),
                "peak excess": sig3(r["excess_peak"], r["excess_peak_low"], r["excess_peak_high"]),
                "onset (steps)": sig3(r["onset"], r["onset_low"], r["onset_high"]),
                "seeds with an onset": r["onset_seeds"],
                "control peak S": sig3(r["control_peak_shed_fraction"]),
                "accuracy": sig3(
                    r["final_accuracy"], r["final_accuracy_low"], r["final_accuracy_high"]
                ),
                "verdict": r["verdict"],
            }
        )
        out.append(row)
    return out


def _sections(results: StudyResults, top: int) -> list[Section]:
    """The report's sections, in order."""
    cells = results.tables.get("cells")
    base = results.extras.get("base", {})
    options = (
        heatmap_options(cells, base, results.extras.get("pairs", [])) if cells is not None else []
    )
    base_text = ", ".join(f"{LABELS[f]} {level_text(f, v)}" for f, v in base.items())
    rule = esc(results.extras.get("rule", ""))
    figs = [heatmap_figure(options, v) for v in ("amplification", "excess_peak")] if options else []
    return [
        ("Where is the amplification above 1?", _summary(cells), []),
        (
            "The map",
            f"<p>Choose the pair of factors with the menu above each figure. {esc(MARKS_NOTE)}."
            f"</p><p><small>Rule (ours): {rule}.</small></p>",
            figs,
        ),
        (f"The top {top} cells by amplification", html_table(top_rows(results, top)), []),
        ("Design", DESIGN.format(base=esc(base_text)), []),
        (
            "Every cell",
            f"<details><summary>table</summary>{html_table(_cell_rows(cells))}</details>",
            [],
        ),
    ]


def write_map_report(results: StudyResults, out: str | Path, context: dict[str, Any]) -> Path:
    """Heatmaps, the top cells, the design, every cell and the paper's claims (see the module
    docstring)."""
    grid = context.get("grid")
    top = int(getattr(grid, "top", 15))
    return write_study_report(
        results,
        out,
        context,
        map_claims(results),
        _sections(results, top),
        MAP_FACTORS,
        banners=CONTROL_NOTE,
        run_extra=["control", "excess_peak", "amplification"],
    )
