"""The rows of the analysis report's tables, as a person reads them: readable column names, a mean
beside its CI in one cell (:class:`shedding.reports.numbers.Estimate`), p-values marked as such, and
"none" (the analysis' -1 for no onset or no half-way step) as a missing value.
"""

from __future__ import annotations

from shedding.analysis.run_identity import run_identity
from shedding.analysis.summary import Summary
from shedding.reports.numbers import Estimate, PValue


def none_if_negative(v: int) -> int | None:
    """A step count the analysis writes as -1 when there is none: None then."""
    return None if int(v) < 0 else int(v)


def _est(stats: dict[str, object], var: str) -> Estimate:
    low, high = stats[f"{var}_ci"]  # type: ignore[misc]
    return Estimate(float(stats[var]), float(low), float(high))  # type: ignore[arg-type]


def condition_rows(summary: Summary) -> list[dict[str, object]]:
    """Per condition: the means over seeds with their 95% bootstrap CIs, and the verdict."""
    return [
        {
            "condition": label,
            "seeds": s["seeds"],
            "peak excess over the control": _est(s, "excess_peak"),
            "amplification": _est(s, "amplification"),
            "peak S": _est(s, "peak_shed_fraction"),
            "time to peak (steps)": _est(s, "time_to_peak"),
            "final excess": _est(s, "final_excess"),
            "crossings back (recovered)": _est(s, "recovered_events"),
            "verdict": s["verdict"],
        }
        for label, s in summary.condition_stats.items()
    ]


RUN_COLUMNS = {  # Summary.table()'s key: the runs table's column
    "run": "run",
    "method": "method",
    "technique": "technique",
    "seed": "seed",
    "sparsity": "sparsity",
    "final_accuracy": "final accuracy",
    "peak_S": "peak S",
    "peak_step": "peak step",
    "final_S": "final S",
    "excess_peak": "peak excess",
    "onset_step": "onset step",
    "amplification": "amplification",
    "recovered": "recovered",
    "verdict": "verdict",
}


def run_rows(summary: Summary) -> list[dict[str, object]]:
    """One row per run and event: the runs table (no onset: missing, not -1)."""
    out = []
    for r in summary.table():
        row = {col: r.get(key) for key, col in RUN_COLUMNS.items()}
        row["onset step"] = none_if_negative(r["onset_step"])  # type: ignore[arg-type]
        out.append(row)
    return out


def line_rows(summary: Summary) -> list[dict[str, object]]:
    """Verdicts of every run, event and line (no onset: missing)."""
    return [
        {**r, "onset_step": none_if_negative(r["onset_step"])}  # type: ignore[arg-type]
        for r in summary.line_table()
    ]


def seeds_of(summary: Summary) -> dict[str, int]:
    """Each run's seed."""
    return {n: run_identity(ds).seed for n, ds in summary.runs.items()}


def overlap_rows(summary: Summary, same_seed: bool) -> list[dict[str, object]]:
    """The kept-set overlap of pairs of runs that pruned (all layers): those of the same seed, or
    every pair; with Jaccard, its chance level, their difference, the hypergeometric p and the
    rank correlation of the magnitudes both keep."""
    seeds = seeds_of(summary)
    pruned = [n for n in summary.runs if n not in summary.controls]
    names = set(pruned if len(pruned) >= 2 else summary.runs)
    out = []
    for (a, b), ov in summary.overlaps.items():
        if a not in names or b not in names or (same_seed and seeds[a] != seeds[b]):
            continue
        g = ov.sel(scope="all")
        jac, chance = float(g.jaccard), float(g.jaccard_chance)
        out.append(
            {
                "run A": a,
                "run B": b,
                **({"seed": seeds[a]} if same_seed else {}),
                "Jaccard": jac,
                "chance": chance,
                "J − chance": jac - chance,
                "p": PValue(float(g.p_value)),
                "Spearman (kept by both)": float(g.spearman),
            }
        )
    return out


def convergence_rows(summary: Summary) -> list[dict[str, object]]:
    """Each random run's Jaccard minus chance with a GMP run's kept set, at the start and the end of
    the retraining, for its survivors above the line and its effective set."""
    return [
        {
            "run": a,
            "GMP run": b,
            "above the line: start": float(r.toward_above_line.values[0]),
            "end": float(r.toward_above_line.values[-1]),
            "effective set: start": float(r.toward_effective.values[0]),
            "end ": float(r.toward_effective.values[-1]),
            "half-way step (above the line)": none_if_negative(r.attrs["half_step_above_line"]),
        }
        for (a, b), r in summary.convergences.items()
    ]
