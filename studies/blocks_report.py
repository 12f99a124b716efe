"""The blocks study's report: accuracy against block size per sparsity and technique, and
Siswanto's claims beside ours (see :mod:`shedding.studies.study_page`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from shedding.reports.html import html_table
from shedding.reports.numbers import Estimate
from shedding.studies.blocks_claims import blocks_claims
from shedding.studies.blocks_figures import blocks_curves
from shedding.studies.study_page import FigureItem, Section, esc, write_study_report
from shedding.studies.study_runs import StudyResults, rows

BLOCKS_FACTORS = ["technique", "block", "sparsity", "budget", "seed"]
COLLAPSED = "layers pruned away (max over seeds)"
CURVES_CAPTION = (
    "Mean test accuracy over seeds (bars: 95% CI) per block shape, smallest blocks first, one "
    "line per retraining technique; dotted: the dense network."
)
CURVES_TEXT = (
    "<p>The figure at the top shows the first sparsity; the others follow. "
    "Mean over seeds with 95% bootstrap CIs. Blocks are pruned whole (lowest mean |w| first, "
    "globally); edge blocks may be smaller, so the recorded sparsity overshoots the target by less "
    "than one block. Fine-tuning and weight rewinding retrain for the grid's budget; random "
    "re-initialisation replays the whole original schedule.</p>"
)


def _collapse_banner(table: list[dict[str, Any]]) -> str:
    """The warning naming the blocks whose runs pruned a whole layer away (nothing when none
    did)."""
    bad = [f"{r['technique']} {r['block']} at {r['sparsity']:g}" for r in table if r[COLLAPSED] > 0]
    if not bad:
        return ""
    return (
        '<div class="banner warn">Layer collapse: global block pruning removed every weight of at '
        "least one layer in "
        + esc("; ".join(bad))
        + ". Such a network is at chance whatever the retraining; "
        "the comparison with the paper leaves these blocks out.</div>"
    )


def write_blocks_report(results: StudyResults, out: str | Path, context: dict[str, Any]) -> Path:
    """Accuracy against block size per sparsity and technique, and Siswanto's claims beside ours."""
    b = results.tables["blocks"]
    dense = float(results.extras.get("dense", {}).get("median", np.nan))
    sparsities = sorted({float(s) for s in b.sparsity.values}) if b.sizes.get("group", 0) else []
    figs: list[FigureItem] = [(blocks_curves(b, s, dense), CURVES_CAPTION) for s in sparsities]
    table = [
        {
            "technique": r["technique"],
            "sparsity": r["sparsity"],
            "block": r["block"],
            "seeds": r["n"],
            "recorded sparsity": r["recorded_sparsity_mean"],
            "accuracy (mean, 95% CI)": Estimate(
                r["accuracy_mean"], r["accuracy_low"], r["accuracy_high"]
            ),
            "right after pruning": r["pruned_accuracy_mean"],
            "delta vs dense (points)": 100 * r["delta_mean"],
            COLLAPSED: r["collapsed_layers_max"],
        }
        for r in rows(b)
    ]
    sections: list[Section] = [
        ("Accuracy against block size at every sparsity", CURVES_TEXT, figs[1:]),
        (
            "Every technique, sparsity and block",
            html_table(table, signed={"delta vs dense (points)"}),
            [],
        ),
    ]
    return write_study_report(
        results,
        out,
        context,
        blocks_claims(results),
        sections,
        BLOCKS_FACTORS,
        banners=_collapse_banner(table),
        lead=figs[0] if figs else None,
    )
