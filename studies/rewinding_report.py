"""The rewinding study's report: accuracy change against compression per retraining budget, the
parity table, and Renda et al.'s table beside ours (see :mod:`shedding.studies.study_page`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import xarray as xr

from shedding.reports.html import html_table
from shedding.reports.numbers import Estimate
from shedding.studies.rewinding_claims import rewinding_claims
from shedding.studies.rewinding_figures import rewinding_curves
from shedding.studies.study_page import FigureItem, Section, write_study_report
from shedding.studies.study_runs import StudyResults, rows

REWINDING_FACTORS = ["technique", "schedule", "sparsity", "budget", "seed"]
CONSTANT_LR_NOTE = (
    '<div class="banner warn">The base schedule is a constant LR: LR rewinding replays the same '
    "LR as fine-tuning, so the two differ only if --retrain-finetune-lr is set.</div>"
)
CURVES_TEXT = (
    "<p>The figure at the top shows the first budget; the others follow. "
    "Each point: the median over seeds of (test accuracy at the end of the round - the dense "
    "network's test accuracy of the same seed). One-shot runs give one point each; an iterative "
    "run gives one point per round. Compression = 1 / (1 - the event's recorded sparsity).</p>"
)
CURVES_CAPTION = (
    "Median accuracy change against the dense network over seeds (bars: min to max) against "
    "compression, log scale; at or above the dotted line the pruned network matches the dense one."
)
DELTAS = {
    "median delta (points)",
    "mean delta (points, 95% CI)",
    "median delta there (points)",
    "median delta there",
}
PARITY_TEXT = (
    "<p>The largest tested compression whose median accuracy change is at least 0; the next "
    "larger tested compression is shown beside it. <i>Censored</i>: parity holds at the largest "
    "compression tested, so the limit lies beyond the grid.</p>"
)


def _parity_rows(parity: xr.Dataset) -> list[dict[str, object]]:
    """The parity table: per technique, schedule and budget, the largest compression at parity."""
    return [
        {
            "technique": r["technique"],
            "schedule": r["schedule"],
            "t / T": r["budget"],
            "largest compression with median delta >= 0": r["max_compression"],
            "median delta there (points)": 100 * r["delta_at_max"],
            "next compression": r["next_compression"],
            "median delta there": 100 * r["delta_next"],
            "largest tested": r["largest_tested"],
            "censored": "yes: limit beyond the grid" if r["censored"] else "no",
        }
        for r in rows(parity)
    ]


def _point_rows(pts: xr.Dataset) -> list[dict[str, object]]:
    """Every point over seeds: median accuracy and change, the mean change with its CI."""
    return [
        {
            "technique": r["technique"],
            "schedule": r["schedule"],
            "t / T": r["budget"],
            "compression": r["compression"],
            "seeds": r["n"],
            "median accuracy": r["accuracy_median"],
            "median delta (points)": 100 * r["delta_median"],
            "mean delta (points, 95% CI)": Estimate(
                100 * r["delta_mean"], 100 * r["delta_low"], 100 * r["delta_high"]
            ),
        }
        for r in rows(pts)
    ]


def write_rewinding_report(results: StudyResults, out: str | Path, context: dict[str, Any]) -> Path:
    """Accuracy change against compression per t, the parity table, and Renda et al.'s table beside
    ours."""
    pts, parity = results.tables["points"], results.tables["parity"]
    budgets = sorted({float(b) for b in pts.budget.values}) if pts.sizes.get("group", 0) else []
    figs: list[FigureItem] = [(rewinding_curves(pts, b), CURVES_CAPTION) for b in budgets]
    note = CONSTANT_LR_NOTE if context.get("base_schedule") == "constant" else ""
    sections: list[Section] = [
        ("Accuracy against compression at every budget t", note + CURVES_TEXT, figs[1:]),
        (
            "Largest compression at parity (Renda et al.'s table metric)",
            PARITY_TEXT + html_table(_parity_rows(parity), signed=DELTAS),
            [],
        ),
        ("Every point (over seeds)", html_table(_point_rows(pts), signed=DELTAS), []),
    ]
    return write_study_report(
        results,
        out,
        context,
        rewinding_claims(results),
        sections,
        REWINDING_FACTORS,
        lead=figs[0] if figs else None,
    )
