"""The cascade paper's claims beside what the map shows: the rows of the map report's "compared with
the paper" table, ``{"claim", "paper", "ours", "setting", "verdict"}``.

Each verdict follows the rule written in its row and can say "not reproduced"; "inconclusive"
when the map cannot decide. Pure functions of the map's :class:`StudyResults`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shedding.studies.map_design import LABELS, REWIND, level_text
from shedding.studies.map_tables import sig3, sweep_rows
from shedding.studies.study_runs import StudyResults, rows, run_setting

SMALL_SHARE = 0.2  # "a small share": pruned fractions up to this
UNTESTED = (
    "rewinding's advantage over fine-tuning may come from shedding",
    "shedding can rescue a poor scheme such as random pruning (see `shedding study cascade`)",
)

Row = dict[str, Any]


def _where(r: Row) -> str:
    """A cell's levels, as text."""
    return ", ".join(
        level_text(f, r[f])
        for f in ("model", "optimizer", "weight_decay", "retrain_lr", "sparsity", "method")
    )


def _separate(a: Row, b: Row, var: str) -> bool:
    """Whether the 95% CIs of ``var`` in two cells do not overlap."""
    return bool(a[f"{var}_high"] < b[f"{var}_low"] or b[f"{var}_high"] < a[f"{var}_low"])


def _ci(r: Row, var: str) -> str:
    return sig3(r[var], r[f"{var}_low"], r[f"{var}_high"])


def amplification_claim(cells: list[Row]) -> Row | None:
    """Amplification above 1 after pruning a small share: the largest mean over the cells at
    pruned fractions up to :data:`SMALL_SHARE`, and where the CI lies above 1."""
    small = [r for r in cells if r["sparsity"] <= SMALL_SHARE and np.isfinite(r["amplification"])]
    if not small:
        return None
    best = max(small, key=lambda r: r["amplification"])
    above = [r for r in small if r["amplification_low"] > 1]
    means = [r for r in small if r["amplification"] > 1]
    if above:
        verdict = f"reproduced in {len(above)} of {len(small)} cells"
    elif not means:
        verdict = "not reproduced"
    else:
        verdict = "inconclusive (a mean above 1, its CI reaching below 1)"
    where = "; ".join(f"{_where(r)}: {_ci(r, 'amplification')}" for r in above[:5])
    return {
        "claim": "pruning a small share sets off the shedding of a larger share: amplification "
        "(excess shed / pruned) above 1",
        "paper": "claimed (qualitative)",
        "ours": f"largest mean amplification at pruned fractions <= {SMALL_SHARE:g}: "
        f"{_ci(best, 'amplification')} ({_where(best)}); {len(means)} of {len(small)} cells "
        f"have a mean above 1, {len(above)} a CI above 1" + (f" ({where})" if where else ""),
        "verdict": verdict,
    }


def small_share_claim(cells: list[Row]) -> Row | None:
    """Cascades after pruning a small share: the cells at fractions up to :data:`SMALL_SHARE` whose
    verdict is a cascade."""
    small = [r for r in cells if r["sparsity"] <= SMALL_SHARE]
    if not small:
        return None
    found = [r for r in small if r["verdict"] == "cascade"]
    return {
        "claim": "after pruning a small share of the weights, a cascade follows within a few "
        "epochs",
        "paper": "claimed",
        "ours": f"{len(found)} of {len(small)} cells at pruned fractions <= {SMALL_SHARE:g} show "
        "a cascade"
        + (
            ": " + "; ".join(f"{_where(r)} ({_ci(r, 'excess_peak')})" for r in found[:5])
            if found
            else ""
        ),
        "verdict": f"reproduced in {len(found)} cells" if found else "not reproduced",
    }


def _extremes_row(
    cells: Any, base: dict[str, Any], factor: str, methods: list[str]
) -> tuple[list[str], list[bool], list[bool]]:
    """Per method, the sweep of ``factor``'s lowest and highest levels compared: text, whether the
    high end's excess is above the low end's with non-overlapping CIs, whether their verdicts
    differ."""
    parts, separate, differ = [], [], []
    for m in methods:
        sweep = sweep_rows(cells, base, factor, m)
        if len(sweep) < 2:
            continue
        lo, hi = sweep[0], sweep[-1]  # levels ascending: LR rewinding (x1) is the highest LR
        parts.append(
            f"{m}: {level_text(factor, hi[factor])} excess {_ci(hi, 'excess_peak')} "
            f"({hi['verdict']}) vs {level_text(factor, lo[factor])} {_ci(lo, 'excess_peak')} "
            f"({lo['verdict']})"
        )
        separate.append(_separate(hi, lo, "excess_peak") and hi["excess_peak"] > lo["excess_peak"])
        differ.append(hi["verdict"] != lo["verdict"])
    return parts, separate, differ


def factor_claim(
    cells: Any, base: dict[str, Any], factor: str, claim: str, paper: str
) -> Row | None:
    """Whether shedding depends on ``factor`` as claimed (more at its high end: the high LR, strong
    decay). Rule: reproduced when for some method the excess at the high end is above the low end's
    with non-overlapping CIs; not reproduced when the CIs overlap for every method."""
    methods = list(dict.fromkeys(str(m) for m in cells.method.values)) if cells is not None else []
    parts, separate, differ = _extremes_row(cells, base, factor, methods)
    if not parts:
        return None
    verdict = (
        "reproduced" + (" (the verdicts differ too)" if any(differ) else "")
        if any(separate)
        else "not reproduced"
    )
    return {"claim": claim, "paper": paper, "ours": "; ".join(parts), "verdict": verdict}


def _by_level(cells: Any, base: dict[str, Any], factor: str, method: str) -> dict[Any, Row]:
    return {r[factor]: r for r in sweep_rows(cells, base, factor, method)}


def architecture_claim(cells: Any, base: dict[str, Any]) -> Row | None:
    """ResNet against MobileNet: whether the residual and the depthwise-separable digits nets shed
    differently. Rule: consistent when for some method their verdicts differ or their excess CIs
    do not overlap, else not reproduced."""
    parts, differ = [], []
    for m in ("gmp", "random"):
        by = _by_level(cells, base, "model", m)
        res, mob = by.get("digits_resnet"), by.get("digits_mobilenet")
        if not (res and mob):
            continue
        parts.append(
            f"{m}: residual excess {_ci(res, 'excess_peak')} ({res['verdict']}), amplification "
            f"{_ci(res, 'amplification')}, accuracy {_ci(res, 'final_accuracy')}; "
            f"MobileNet-like {_ci(mob, 'excess_peak')} ({mob['verdict']}), "
            f"{_ci(mob, 'amplification')}, {_ci(mob, 'final_accuracy')}"
        )
        differ.append(res["verdict"] != mob["verdict"] or _separate(res, mob, "excess_peak"))
    if not parts:
        return None
    return {
        "claim": "shedding explains why a method works on ResNet50 and not on MobileNetV3",
        "paper": "claimed (ImageNet)",
        "ours": "digits residual net vs depthwise-separable net: " + "; ".join(parts),
        "verdict": "consistent: the two families shed differently"
        if any(differ)
        else "not reproduced: the two families shed alike",
    }


def optimizer_claim(cells: Any, base: dict[str, Any]) -> Row | None:
    """Whether shedding depends on the optimizer. Rule: reproduced when for some method two
    optimizers' verdicts differ or their excess CIs do not overlap, else not reproduced."""
    parts, differ = [], []
    for m in ("gmp", "random"):
        sweep = sweep_rows(cells, base, "optimizer", m)
        if len(sweep) < 2:
            continue
        parts.append(
            f"{m}: "
            + ", ".join(f"{r['optimizer']} {_ci(r, 'excess_peak')} ({r['verdict']})" for r in sweep)
        )
        differ += [
            a["verdict"] != b["verdict"] or _separate(a, b, "excess_peak")
            for i, a in enumerate(sweep)
            for b in sweep[i + 1 :]
        ]
    if not parts:
        return None
    return {
        "claim": "shedding depends on the optimizer (SGD with and without momentum, Adam, AdamW)",
        "paper": "optimizer, LR and weight decay matter (docs/science.md#shedding)",
        "ours": "peak excess per optimizer: " + "; ".join(parts),
        "verdict": "reproduced" if any(differ) else "not reproduced",
    }


def map_claims(results: StudyResults) -> list[dict[str, str]]:
    """The claims table of the map report."""
    cells = results.tables.get("cells")
    base = results.extras.get("base", {})
    s = run_setting(results)
    setting = (
        "paper: ImageNet ResNet50 / MobileNetV3, their own shed threshold (not public); ours: "
        f"{s['data']}, the shed line of docs/science.md#shedding (GMP cut value), {s['seeds']} "
        "seed(s) per cell against seed-matched unpruned controls; one factor at a time around "
        "the base setting, other factors at the base"
    )
    cell_rows = rows(cells) if cells is not None else []
    found = [
        amplification_claim(cell_rows),
        small_share_claim(cell_rows),
        factor_claim(
            cells,
            base,
            "retrain_lr",
            f"shedding needs a high retraining LR ({LABELS['retrain_lr']}"
            f": rewind to the high LR against fine-tuning at x{min_lr(cells)})",
            "learning-rate schedules matter (claimed)",
        ),
        factor_claim(
            cells,
            base,
            "weight_decay",
            "shedding grows with weight decay",
            "docs/science.md#shedding (decay pulls small weights to zero)",
        ),
        optimizer_claim(cells, base),
        architecture_claim(cells, base),
    ]
    claims = [{**r, "setting": setting} for r in found if r]
    claims += [
        {
            "claim": c,
            "paper": "claimed",
            "ours": "not tested by this study",
            "setting": setting,
            "verdict": "not tested",
        }
        for c in UNTESTED
    ]
    return claims


def min_lr(cells: Any) -> str:
    """The smallest retraining LR multiple of the map, as text."""
    if cells is None:
        return "?"
    values = [float(v) for v in cells.retrain_lr.values if float(v) != REWIND]
    return f"{min(values):g}" if values else "?"
