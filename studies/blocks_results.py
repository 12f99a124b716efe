"""Results of the blocks study (Siswanto): accuracy over seeds per retraining technique, target
sparsity and block shape."""

from __future__ import annotations

from typing import Any

from shedding.studies.study_runs import (
    StudyResults,
    StudyRuns,
    dense_summary,
    points,
    results_dataset,
    rows,
    seed_reduce,
)

BLOCKS_BY = ["technique", "sparsity", "block", "block_size"]


def blocks_results(study_runs: StudyRuns) -> StudyResults:
    """Accuracy over seeds per (technique, target sparsity, block shape), with the recorded
    sparsity."""
    ds = results_dataset(study_runs)
    table = points(ds, BLOCKS_BY)
    reduced = seed_reduce(
        table,
        BLOCKS_BY,
        values=("accuracy", "delta", "pruned_accuracy", "recorded_sparsity", "collapsed_layers"),
        key=None,
    )
    return StudyResults("blocks", ds, {"blocks": reduced}, {"dense": dense_summary(ds)})


def blocks_table(results: StudyResults) -> list[dict[str, Any]]:
    """One row per technique, sparsity and block shape: accuracy mean [CI] over seeds."""
    return [
        {
            "technique": r["technique"],
            "sparsity": r["sparsity"],
            "block": r["block"],
            "seeds": r["n"],
            "accuracy": r["accuracy_mean"],
            "CI low": r["accuracy_low"],
            "CI high": r["accuracy_high"],
            "delta vs dense": r["delta_mean"],
            "collapsed layers": r["collapsed_layers_max"],
        }
        for r in rows(results.tables["blocks"])
    ]
