"""The cascade study's report: S(t) with its control per condition, excess bars, accuracy,
convergence, verdicts and the paper's claims (see :mod:`shedding.studies.study_page`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import xarray as xr

from shedding.analysis.cascade import window_steps
from shedding.reports import figures
from shedding.reports.html import html_table
from shedding.reports.numbers import Estimate
from shedding.studies.cascade_answer import cascade_answer
from shedding.studies.cascade_claims import cascade_claims
from shedding.studies.cascade_figures import (
    accuracy_bars,
    aware_figure,
    control_levels,
    convergence_curves,
    excess_bars,
)
from shedding.studies.study_page import FigureItem, Section, esc, write_study_report
from shedding.studies.study_runs import StudyResults, rows

CASCADE_FACTORS = ["part", "condition", "method", "sparsity", "schedule", "seed"]
CONTROL_NOTE = (
    '<div class="controlnote">Retraining alone sheds weights. A shed curve S(t) shown without its '
    "unpruned control says nothing about cascades: every S(t) below is drawn beside its "
    "seed-matched control (dashed grey), and only the excess S_run - S_control (lower panels, "
    "bars) is evidence of a cascade.</div>"
)
CONTROL_LABEL = "none (control)"
CONVERGENCE_TEXT = (
    "<p>For each random run and the GMP run of the same condition and seed: the Jaccard index of "
    "random's survivors at or above the line with GMP's kept set, minus its chance level for "
    "independent sets of the same densities (docs/science.md#kept-sets), over the retraining. A "
    "rising curve means shedding moves random's set towards GMP's.</p>"
)
AWARE_HEADING = "Cascade-aware pruning against one-shot and iterative GMP (optional part)"
AWARE_TEXT = (
    "<p>Cascade-aware pruning (prune a small share by GMP, let the cascade run, remove what was "
    "shed, repeat to the target, then retrain) against one-shot and iterative GMP at the same "
    "final sparsity. Training steps are counted from the stores (original training T plus every "
    "retraining step recorded).</p>"
)
CAPTIONS = {
    "shed": "Top: S(t) per method, mean over seeds with its 95% CI, the control dashed grey. "
    "Bottom: the excess over the control; above 0: pruning added shedding.",
    "excess": "Peak excess over the seed-matched control per condition (95% CI bars); a cascade "
    "needs the mean at the dashed threshold or above and the CI above 0.",
    "accuracy": "Test accuracy after retraining (bars, 95% CI) and right after pruning (crosses); "
    "grey: the unpruned control.",
    "controls": "S(t) of the unpruned controls: how much retraining alone sheds, the level every "
    "excess is measured from.",
    "convergence": "Jaccard beyond chance of random's survivors above the line with GMP's kept "
    "set; rising: shedding moves random's set towards GMP's.",
    "aware": "Test accuracy (95% CI) against the total training steps each pruning schedule took.",
}
AWARE_NOT_RUN = (
    "<p><b>Not run:</b> the <code>cascade</code> pruning schedule is not available "
    "in this version; the grid adds these runs when it is.</p>"
)


def _shed_figures(results: StudyResults) -> tuple[list[FigureItem], list[str]]:
    """(S(t) against the control per condition and sparsity, the conditions without a
    control)."""
    bands = results.extras.get("bands", {})
    # without runs there are no bands, and the Dataset has no iterations per epoch to resolve with
    window = window_steps(results.runs, results.extras.get("window")) if bands else None
    shed_figs: list[FigureItem] = []
    missing: list[str] = []
    for cond, sp in dict.fromkeys((c, s) for c, s, _ in bands):
        sub = {
            f"{m}" + (" (control)" if m == "none" else ""): {
                k: v.rename(since="step") for k, v in b.items()
            }
            for (c, s, m), b in bands.items()
            if c == cond and s == sp
        }
        if CONTROL_LABEL not in sub:
            missing.append(f"{cond} ({sp:g})")
        n_seeds = {k: int(b["S"].attrs.get("n", 1)) for k, b in sub.items()}
        fig = figures.shed_bands(sub, {CONTROL_LABEL}, n_seeds, window)
        fig.update_layout(title=f"{cond}, sparsity {sp:g}: S(t) and the excess over the control")
        shed_figs.append((fig, CAPTIONS["shed"]))
    return shed_figs, missing


def _verdict_rows(conds: xr.Dataset | None) -> list[dict[str, object]]:
    """The verdicts table: per condition, sparsity and method, the excess and accuracy."""
    return [
        {
            "condition": r["condition"],
            "sparsity": r["sparsity"],
            "method": r["method"],
            "seeds": r["seeds"],
            "with control": r["controls"],
            "peak excess (mean, 95% CI)": Estimate(
                r["excess_peak"], r["excess_peak_low"], r["excess_peak_high"]
            ),
            "amplification": Estimate(
                r["amplification"], r["amplification_low"], r["amplification_high"]
            ),
            "final excess": r["final_excess"],
            "control peak S": r["control_peak_shed_fraction"],
            "accuracy": r["final_accuracy"],
            "after pruning": r["pruned_accuracy"],
            "verdict": r["verdict"],
        }
        for r in (rows(conds) if conds is not None else [])
    ]


def _rvg_rows(rvg: Any) -> list[dict[str, object]]:
    """Random against GMP per condition and sparsity: accuracies and the difference (points)."""
    if rvg is None:
        return []
    return [
        {
            "condition": r["condition"],
            "sparsity": r["sparsity"],
            "seed pairs": r["pairs"],
            "random's verdict": r["random_cascade"],
            "random accuracy": r["random_accuracy"],
            "GMP accuracy": r["gmp_accuracy"],
            "random − GMP (points, 95% CI)": Estimate(
                100 * r["random_minus_gmp"],
                100 * r["random_minus_gmp_low"],
                100 * r["random_minus_gmp_high"],
            ),
            "right after pruning (points)": 100 * r["random_minus_gmp_after_pruning"],
        }
        for r in rows(rvg)
    ]


def _sections(results: StudyResults, shed_figs: list[FigureItem]) -> list[Section]:
    """The report's sections, in order."""
    ds, t = results.runs, results.tables
    conds = t.get("conditions")
    rule = results.extras.get("rule", "")
    sections: list[Section] = [
        (
            "Verdicts per condition",
            html_table(_verdict_rows(conds)) + f"<p><small>Rule (ours): {esc(rule)}. "
            "Amplification = shed count at the peak / weights pruned.</small></p>",
            [],
        ),
        ("Shedding against the control, per condition", "", shed_figs),
    ]
    if conds is not None:
        sections.append(
            (
                "Random pruning with and without a cascade, against GMP",
                html_table(_rvg_rows(t.get("random_vs_gmp"))),
                [(accuracy_bars(conds, t.get("controls")), CAPTIONS["accuracy"])],
            )
        )
    controls = t.get("controls")
    sections.append(
        (
            "How much retraining alone sheds",
            html_table(rows(controls)) if controls is not None else "",
            [(control_levels(ds), CAPTIONS["controls"])],
        )
    )
    conv = t.get("convergence")
    if conv is not None:
        sections.append(
            (
                "Kept-set convergence: random pruning towards GMP's set",
                CONVERGENCE_TEXT + html_table(rows(conv)),
                [(convergence_curves(ds), CAPTIONS["convergence"])],
            )
        )
    aware = t.get("aware")
    if aware is not None:
        sections.append(
            (
                AWARE_HEADING,
                AWARE_TEXT + html_table(rows(aware)),
                [(aware_figure(aware), CAPTIONS["aware"])],
            )
        )
    else:
        sections.append((AWARE_HEADING, AWARE_TEXT + AWARE_NOT_RUN, []))
    return sections


def write_cascade_report(results: StudyResults, out: str | Path, context: dict[str, Any]) -> Path:
    """S(t) with its control per condition, excess bars, accuracy, convergence, verdicts, the
    paper's claims."""
    shed_figs, missing = _shed_figures(results)
    banners = [CONTROL_NOTE]
    if missing:
        banners.append(
            '<div class="banner warn">NO CONTROL for '
            + esc(", ".join(missing))
            + ": these conditions' "
            "shed curves cannot show a cascade and have no verdict.</div>"
        )
    conds = results.tables.get("conditions")
    min_excess = float(results.extras.get("min_excess", 0.05))
    lead = (excess_bars(conds, min_excess), CAPTIONS["excess"]) if conds is not None else None
    return write_study_report(
        results,
        out,
        context,
        cascade_claims(results),
        _sections(results, shed_figs),
        CASCADE_FACTORS,
        banners="\n".join(banners),
        run_extra=["verdict", "excess_peak"],
        answer=cascade_answer(conds, min_excess),
        lead=lead,
    )
