"""Siswanto's claims beside ours: the rows of the blocks study's "compared with the paper" table.

Each row is ``{"claim", "paper", "ours", "setting", "verdict"}``; the thesis' claims are qualitative
and stated as claims. Verdicts follow the rule written in each row; "inconclusive" whenever the
data cannot decide. Pure functions of :class:`shedding.studies.study_runs.StudyResults`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from shedding.analysis.seeds import mean_ci
from shedding.reports.numbers import interval, scaled
from shedding.studies.study_runs import run_setting

CLAIMS = [  # (technique, claim, the expected sign of the difference: lower or the same)
    ("finetune", "under fine-tuning, larger blocks cost accuracy gradually", "lower"),
    (
        "weight_rewind",
        "under weight rewinding, larger blocks lower the reachable sparsity (here: lower the "
        "accuracy at a fixed sparsity)",
        "lower",
    ),
    ("reinit", "random re-initialisation gives the same accuracy for every block size", "same"),
]
RULES = {
    "lower": "rule: reproduced when the 95% CI of the paired difference lies below 0",
    "same": "rule: reproduced when the 95% CI of the paired difference contains 0",
}


def _paired_diff(
    ds: xr.Dataset, technique: str, sparsity: float, a: str, b: str
) -> tuple[float, float, float, int]:
    """Mean [CI] over seeds of accuracy(block a) - accuracy(block b), paired by seed."""
    done = ds.status == "complete"
    sel = done & (ds.technique == technique) & np.isclose(ds.sparsity, sparsity)
    acc = {}
    for i in np.flatnonzero(sel.values):
        acc[(str(ds.block.values[i]), int(ds.seed.values[i]))] = float(ds.final_accuracy.values[i])
    seeds = sorted({s for (blk, s) in acc if blk == a} & {s for (blk, s) in acc if blk == b})
    if not seeds:
        return np.nan, np.nan, np.nan, 0
    diff = np.array([acc[(a, s)] - acc[(b, s)] for s in seeds])
    mean, low, high = mean_ci(diff[:, None])
    return float(mean[0]), float(low[0]), float(high[0]), len(seeds)


def blocks_claims(results: Any) -> list[dict[str, str]]:
    """Siswanto's three claims beside the accuracy change from the smallest to the largest block,
    per sparsity.

    Blocks whose runs pruned a whole layer away (layer collapse: the network is then at chance
    whatever the technique) are left out of the comparison and named; the largest remaining block is
    compared instead.
    """
    ds = results.runs
    s = run_setting(results)
    setting = (
        f"thesis: CIFAR-10 networks; ours: {s['model']} on {s['data']}, T = {s['T']} steps, "
        f"{s['seeds']} seed(s), one-shot block pruning by mean |w|"
    )
    done = ds.status == "complete"
    if not bool(done.any()):
        return []
    sizes = {str(b): int(z) for b, z in zip(ds.block.values, ds.block_size.values, strict=True)}
    sparsities = sorted({float(x) for x in ds.sparsity.values})
    rows = []
    for tech, claim, expect in CLAIMS:
        parts, verdicts = [], []
        for sp in sparsities:
            part, verdict = _compare_blocks(ds, sizes, tech, sp, expect)
            if part is not None:
                parts.append(part)
            if verdict is not None:
                verdicts.append((sp, verdict))
        if not parts:
            continue
        rows.append(
            {
                "claim": claim,
                "paper": "claimed (qualitative)",
                "ours": "accuracy points: " + "; ".join(parts) + f" ({RULES[expect]})",
                "setting": setting,
                "verdict": _per_sparsity(verdicts),
            }
        )
    return rows


def _per_sparsity(verdicts: list[tuple[float, str]]) -> str:
    """One verdict when every sparsity agrees, else each sparsity's (inconclusive without any)."""
    kinds = {v for _, v in verdicts}
    return (
        next(iter(kinds))
        if len(kinds) == 1
        else "inconclusive"
        if not kinds
        else "mixed: " + ", ".join(f"{sp:g}: {v}" for sp, v in verdicts)
    )


def _collapsed(ds: xr.Dataset, tech: str, sp: float) -> set[str]:
    """The blocks whose runs (of ``tech`` at ``sp``) pruned a whole layer away."""
    this = (ds.technique == tech) & np.isclose(ds.sparsity, sp) & (ds.status == "complete")
    return {
        str(b)
        for b, c in zip(
            ds.block.values[this.values],
            ds.collapsed_layers.max("round").values[this.values],
            strict=True,
        )
        if c > 0
    }


def _compare_blocks(
    ds: xr.Dataset, sizes: dict[str, int], tech: str, sp: float, expect: str
) -> tuple[str | None, str | None]:
    """(what we found, the verdict) of the largest usable block against the smallest at one
    sparsity; None for what is missing."""
    smallest = min(sizes, key=sizes.get)
    bad = _collapsed(ds, tech, sp)
    usable = [
        b for b in sorted(sizes, key=sizes.get, reverse=True) if b not in bad and b != smallest
    ]
    note = (
        f" ({', '.join(sorted(bad, key=sizes.get))} left out: a whole layer was pruned away, layer "
        "collapse)"
        if bad
        else ""
    )
    if not usable or smallest in bad:
        return f"sparsity {sp:g}: nothing to compare{note}", None
    big = usable[0]
    mean, low, high, n = _paired_diff(ds, tech, sp, big, smallest)
    if n == 0:
        return None, None
    ci = f" {interval(low, high, 100, '+.2f')}" if np.isfinite(low) else " (1 seed, no CI)"
    part = f"sparsity {sp:g}: {big} minus {smallest} {scaled(mean, 100, '+.2f')}{ci}{note}"
    if not np.isfinite(low):
        return part, "inconclusive"
    if expect == "lower":
        return part, "reproduced" if high < 0 else "not reproduced" if low > 0 else "inconclusive"
    return part, "reproduced" if low <= 0 <= high else "not reproduced"
