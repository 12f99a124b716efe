"""The figures of the analysis report and of the kept-set comparison, in page order, each with its
section title, caption and navigation anchor (:class:`shedding.reports.page_layout.ReportFigure`);
the static export (:mod:`shedding.reports.figure_export`) writes the same list.
"""

from __future__ import annotations

import numpy as np

from shedding.analysis.blocks import block_density
from shedding.analysis.cascade import window_steps
from shedding.analysis.distribution import magnitude_histogram
from shedding.analysis.seeds import condition_label
from shedding.analysis.summary import Summary
from shedding.reports import figures
from shedding.reports.block_figures import block_density_runs
from shedding.reports.overlap_figure import kept_overlap_matrix
from shedding.reports.page_layout import ReportFigure
from shedding.reports.report_rows import seeds_of
from shedding.reports.selector_figures import layer_heatmaps, magnitude_views

HALF_HEIGHT = 380  # px: a figure in one of two columns
KEPT_HEIGHT = 400  # px: one with a long legend or a menu above it
CAPTIONS = {
    "shed": "Top: mean shed fraction S(t) per condition with its 95% CI over seeds (controls "
    "dashed grey). Bottom: the excess over the matched control — a cascade is this rising above 0.",
    "layers": "Colour: the share of a layer's survivors below the shed line at each step, on one "
    "scale for every run. Choose the run in the menu.",
    "magnitudes": "Each column: a step's histogram of log10|w| over the surviving weights "
    "(brighter: more weights). A weight is shed below the dashed line. Choose the run in the menu.",
    "kept": "Blue: two runs keep more of the same weights than independent random sets of their "
    "densities would; red: fewer. Hover for Jaccard, chance and p. Runs that pruned nothing "
    "are left out.",
    "convergence": "Jaccard beyond chance of a random run's set with GMP's kept set over the "
    "retraining; rising: shedding moves it towards GMP's. Solid: kept, not shed; dotted: kept, "
    "above the line.",
    "blocks": "Blocks of the kept mask by how many weights they keep, against the binomial count "
    "of a random set of the same density; a dispersion above 1: kept weights cluster in blocks.",
    "accuracy": "Test accuracy of each run after retraining (dots) and right after pruning "
    "(crosses), against the sparsity pruned.",
    "training": "Per run: training loss and learning rate per step; test (solid) and train "
    "(dotted) accuracy per epoch. Click a legend entry to hide a run.",
}


def report_figures(
    summary: Summary, kind: str = "full", block: tuple[int, int] = (4, 4)
) -> list[ReportFigure]:
    """The report's figures in page order, the answer's figure first; each unpacks as (section
    title, figure, linked on the step axis).

    ``kind`` is ``full`` (runs, conditions and comparisons) or ``comparison`` (kept sets only).
    """
    kept = _kept_figures(summary, block)
    if kind == "comparison":
        return kept
    return _run_figures(summary, kept)


def _shed_figure(summary: Summary) -> ReportFigure:
    """S(t) and the excess over the control per condition, with CI bands: the answer's figure."""
    first = next(iter(summary.runs.values()))
    n_seeds = {label: len(names) for label, names in summary.conditions.items()}
    control_labels = {
        label
        for label, names in summary.conditions.items()
        if all(n in summary.controls for n in names)
    }
    window = window_steps(first, summary.params.get("window"))
    fig = figures.shed_bands(summary.bands, control_labels, n_seeds, window)
    fig.update_layout(height=450)
    title = "Shed fraction against the control"
    return ReportFigure(title, fig, True, CAPTIONS["shed"], "shed", True, "S(t)")


def _magnitude_figure(summary: Summary) -> list[ReportFigure]:
    """The distribution of surviving magnitudes of every run that has them (none: no figure)."""
    runs = summary.runs
    names = [n for n, ds in runs.items() if "magnitude" in ds or "magnitude_hist" in ds]
    if not names:
        return []
    hists = {n: magnitude_histogram(runs[n], lo=-6.0, hi=1.0).compute() for n in names}
    lines = {n: float(runs[n].event_line.values[0]) for n in names}
    fig = magnitude_views(hists, lines, summary.controls)
    fig.update_layout(height=HALF_HEIGHT)
    title = "Distribution of surviving |w| over steps"
    return [
        ReportFigure(title, fig, False, CAPTIONS["magnitudes"], "magnitudes", label="Magnitudes")
    ]


def _accuracy_figure(summary: Summary) -> ReportFigure:
    """Test accuracy after retraining and right after pruning against the sparsity, per event."""
    points = [
        {
            "run": n,
            "condition": condition_label(ds),
            "sparsity": float(ds.event_sparsity.values[e]),
            "final_accuracy": float(ds.event_final_test_accuracy.values[e]),
            "pruned_accuracy": float(ds.event_test_accuracy.values[e]),
        }
        for n, ds in summary.runs.items()
        for e in range(ds.sizes["event"])
    ]
    fig = figures.accuracy_vs_sparsity(points)
    fig.update_layout(height=KEPT_HEIGHT, legend=dict(font=dict(size=10)))
    title = "Accuracy against sparsity"
    return ReportFigure(title, fig, False, CAPTIONS["accuracy"], "accuracy", label="Accuracy")


def _run_figures(summary: Summary, kept: list[ReportFigure]) -> list[ReportFigure]:
    """The analysis report's figures: S(t), per layer, magnitudes, the kept-set figures,
    accuracy against sparsity, training curves."""
    zmax = max(
        float(np.nanmax(f.shed_fraction.values)) if f.shed_fraction.size else 0.0
        for f in summary.fractions.values()
    )
    layers = layer_heatmaps(summary.fractions, summary.controls, zmax or None)
    layers.update_layout(height=HALF_HEIGHT)
    training = figures.training_curves(summary.runs)
    training.update_layout(height=HALF_HEIGHT)
    return [
        _shed_figure(summary),
        ReportFigure(
            "Per-layer shedding", layers, True, CAPTIONS["layers"], "layers", label="Per layer"
        ),
        *_magnitude_figure(summary),
        *kept,
        _accuracy_figure(summary),
        ReportFigure(
            "Loss, learning rate and accuracy",
            training,
            True,
            CAPTIONS["training"],
            "training",
            True,
            "Training",
        ),
    ]


def _kept_figures(summary: Summary, block: tuple[int, int]) -> list[ReportFigure]:
    """The kept-set overlap matrix, the convergence of random runs towards GMP's set, and the
    block density of each pruned condition's first run."""
    runs = summary.runs
    out: list[ReportFigure] = []
    if summary.overlap is not None:
        fig = kept_overlap_matrix(
            summary.overlap, summary.overlap_effective, seeds_of(summary), summary.controls
        )
        fig.update_layout(height=KEPT_HEIGHT)
        out.append(
            ReportFigure(
                "Kept-set overlap", fig, False, CAPTIONS["kept"], "kept-sets", False, "Kept sets"
            )
        )
    if summary.convergences:
        fig = figures.convergence_figure(summary.convergences)
        fig.update_layout(height=KEPT_HEIGHT, legend=dict(font=dict(size=10)))
        title = "Does shedding move a random run towards GMP's kept set?"
        out.append(
            ReportFigure(
                title, fig, True, CAPTIONS["convergence"], "convergence", label="Convergence"
            )
        )
    firsts = [names[0] for names in summary.conditions.values() if names[0] not in summary.controls]
    if firsts:
        results = {n: block_density(runs[n], block=block) for n in firsts}
        title = f"Block density ({block[0]}x{block[1]}) of the kept sets"
        fig = block_density_runs(results)
        fig.update_layout(height=KEPT_HEIGHT)
        out.append(ReportFigure(title, fig, False, CAPTIONS["blocks"], "blocks", label="Blocks"))
    return out
