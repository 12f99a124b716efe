"""The cascade paper's claims (and docs/science.md#shedding expectations) beside our verdicts: the
rows of the cascade study's "compared with the paper" table.

Each row is ``{"claim", "paper", "ours", "setting", "verdict"}``; the paper's claims are qualitative
and stated as claims. Verdicts follow explicit rules written in each row; "inconclusive" whenever
the data cannot decide. Pure functions of :class:`shedding.studies.study_runs.StudyResults`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from shedding.reports.numbers import estimate, interval, percent, scaled
from shedding.studies.study_runs import rows, run_setting

HIGH, SMALL, ADAM = "sgd_high_lr", "sgd_small_lr", "adam"  # the conditions the claims compare
UNTESTED = (
    "shedding explains why a method works on ResNet50 and not on MobileNetV3",
    "rewinding's advantage over fine-tuning may come from shedding",
)

Row = dict[str, Any]


def _cond_row(t: xr.Dataset | None, condition: str, method: str, sparsity: float) -> Row | None:
    """The ``conditions`` table's row of a condition, method and sparsity (None when absent)."""
    for r in rows(t) if t is not None else []:
        if (
            str(r["condition"]) == condition
            and str(r["method"]) == method
            and np.isclose(r["sparsity"], sparsity)
        ):
            return r
    return None


def _combine(verdicts: list[tuple[float, str]]) -> str:
    """One verdict when every sparsity agrees, else each sparsity's."""
    kinds = {v for _, v in verdicts}
    if not kinds:
        return "inconclusive"
    return (
        next(iter(kinds)) if len(kinds) == 1 else "; ".join(f"at {sp:g}: {v}" for sp, v in verdicts)
    )


def _ci_text(r: Row, k: str, scale: float = 1.0, fmt: str = "+.3f") -> str:
    """``r[k]`` with its CI (``k_low``, ``k_high``) when it has one."""
    return estimate(r[k], r.get(f"{k}_low", np.nan), r.get(f"{k}_high", np.nan), scale, fmt)


def cascade_claims(results: Any, conditions: list[str] | None = None) -> list[dict[str, str]]:
    """The cascade paper's claims (and docs/science.md#shedding expectations) beside our
    verdicts."""
    t = results.tables.get("conditions")
    s = run_setting(results)
    setting = (
        "paper: ImageNet ResNet50 / MobileNetV3, their own shed threshold (not public); ours: "
        f"{s['model']} on {s['data']}, the shed line of docs/science.md#shedding (GMP cut value), "
        f"{s['seeds']} seed(s), against seed-matched unpruned controls"
    )
    conds = conditions or (
        list(dict.fromkeys(str(c) for c in t.condition.values)) if t is not None else []
    )
    sparsities = sorted({float(x) for x in t.sparsity.values}) if t is not None else []
    found = [
        _amplification_row(t, conds, sparsities),
        _lr_row(t, sparsities),
        _optimizer_row(t, sparsities),
        _rescue_row(results.tables.get("random_vs_gmp"), sparsities),
        _convergence_row(results.tables.get("convergence")),
    ]
    keys = ("claim", "paper", "ours", "setting", "verdict")
    claims = [{k: setting if k == "setting" else r[k] for k in keys} for r in found if r]
    claims.append(aware_claim(results.tables.get("aware"), setting))
    for claim in UNTESTED:
        claims.append(
            {
                "claim": claim,
                "paper": "claimed",
                "ours": "not tested by this study",
                "setting": setting,
                "verdict": "not tested",
            }
        )
    return claims


def _amplification_row(
    t: xr.Dataset | None, conds: list[str], sparsities: list[float]
) -> Row | None:
    """The largest mean amplification over conditions, methods and sparsities (None without
    any)."""
    amps = [
        (c, m, sp, _cond_row(t, c, m, sp))
        for sp in sparsities
        for c in conds
        for m in ("gmp", "random")
    ]
    amps = [a for a in amps if a[3] is not None]
    if not amps:
        return None
    c, m, sp, r = max(
        amps, key=lambda a: a[3]["amplification"] if np.isfinite(a[3]["amplification"]) else -1
    )
    verdict = (
        "reproduced"
        if np.isfinite(r["amplification_low"]) and r["amplification_low"] > 1
        else "not reproduced"
        if r["amplification"] < 1
        else "inconclusive"
    )
    return {
        "claim": "pruning a small share sets off the shedding of a larger share (amplification = "
        "shed at the peak / pruned > 1)",
        "paper": "claimed (qualitative)",
        "ours": f"largest mean amplification {_ci_text(r, 'amplification', fmt='.3f')} ({c}, "
        f"{m}, sparsity {sp:g}); "
        + "; ".join(f"{c_} {m_} {sp_:g}: {x['amplification']:.3f}" for c_, m_, sp_, x in amps),
        "verdict": verdict,
    }


def _lr_row(t: xr.Dataset | None, sparsities: list[float]) -> Row | None:
    """Random pruning at the high against the small LR, per sparsity (None without both)."""
    parts, verdicts = [], []
    for sp in sparsities:
        rh, rs = _cond_row(t, HIGH, "random", sp), _cond_row(t, SMALL, "random", sp)
        gh, gs = _cond_row(t, HIGH, "gmp", sp), _cond_row(t, SMALL, "gmp", sp)
        if not (rh and rs):
            continue
        parts.append(
            f"sparsity {sp:g}, random: excess {_ci_text(rh, 'excess_peak')} at the high LR "
            f"({rh['verdict']}) vs {_ci_text(rs, 'excess_peak')} at the small LR ({rs['verdict']})"
            + (f"; GMP: {gh['verdict']} / {gs['verdict']}" if gh and gs else "")
        )
        if rh["verdict"] == "cascade" and rs["verdict"].startswith("no cascade"):
            verdicts.append((sp, "reproduced"))
        elif not rh["verdict"].startswith("cascade") and not rs["verdict"].startswith("cascade"):
            verdicts.append((sp, "inconclusive (no cascade in either)"))
        else:
            verdicts.append((sp, "not reproduced"))
    if not parts:
        return None
    return {
        "claim": "shedding needs its conditions: SGD with weight decay at a high LR sheds; a small "
        "constant LR hardly (docs/science.md#shedding)",
        "paper": "pruning and learning-rate schedules matter (claimed)",
        "ours": "; ".join(parts),
        "verdict": _combine(verdicts),
    }


def _optimizer_row(t: xr.Dataset | None, sparsities: list[float]) -> Row | None:
    """Random pruning under SGD (high LR) against Adam, per sparsity (None without both)."""
    parts, verdicts = [], []
    for sp in sparsities:
        rh, ra = _cond_row(t, HIGH, "random", sp), _cond_row(t, ADAM, "random", sp)
        if not (rh and ra):
            continue
        separate = (
            ra["excess_peak_high"] < rh["excess_peak_low"]
            or rh["excess_peak_high"] < ra["excess_peak_low"]
        )
        parts.append(
            f"sparsity {sp:g}, random: SGD excess {_ci_text(rh, 'excess_peak')} "
            f"({rh['verdict']}), Adam {_ci_text(ra, 'excess_peak')} ({ra['verdict']})"
        )
        verdicts.append(
            (
                sp,
                "reproduced (the verdicts differ)"
                if rh["verdict"] != ra["verdict"]
                else "partly: the same verdict, a different excess (the CIs do not overlap)"
                if separate
                else "not reproduced (the same verdict, overlapping CIs)",
            )
        )
    if not parts:
        return None
    return {
        "claim": "shedding depends on the optimizer (Adam against SGD)",
        "paper": "optimizer, LR and weight decay matter (docs/science.md#shedding)",
        "ours": "; ".join(parts),
        "verdict": _combine(verdicts),
    }


def _rescue_verdict(h: Row, sm: Row) -> str:
    """Whether a cascade rescued random pruning at one sparsity: the high-LR row ``h`` against
    the small-LR row ``sm`` of the random-against-GMP table."""
    if h["random_cascade"] != "cascade":
        return "inconclusive (no cascade at the high LR)"
    # rescued: with a cascade, random ends no detectably worse than GMP (the CI of the
    # difference reaches 0)
    rescued, not_rescued = h["random_minus_gmp_high"] >= 0, sm["random_minus_gmp_high"] < 0
    if rescued and not_rescued:
        return (
            "consistent: with a cascade random pruning ends as accurate as GMP, without one "
            "it does not (the small LR also retrains less, so this does not isolate shedding)"
        )
    if rescued:
        return "partly: with a cascade random pruning ends as accurate as GMP, but also without one"
    return "not reproduced"


def _rescue_row(rvg: xr.Dataset | None, sparsities: list[float]) -> Row | None:
    """Random against GMP accuracy, with and without a cascade (None without the table)."""
    if rvg is None:
        return None
    by = {(str(r["condition"]), float(r["sparsity"])): r for r in rows(rvg)}
    parts = [
        f"{c} {sp:g}: random minus GMP {_ci_text(r, 'random_minus_gmp', 100, '+.2f')} points at "
        f"the end ({r['random_cascade']}), "
        f"{_ci_text(r, 'random_minus_gmp_after_pruning', 100, '+.1f')} right after pruning"
        for (c, sp), r in by.items()
    ]
    verdicts = []
    for sp in sparsities:
        h, sm = by.get((HIGH, sp)), by.get((SMALL, sp))
        if h and sm:
            verdicts.append((sp, _rescue_verdict(h, sm)))
    return {
        "claim": "shedding can rescue a poor scheme such as random pruning",
        "paper": "claimed (qualitative)",
        "ours": "; ".join(parts),
        "verdict": _combine(verdicts),
    }


def _convergence_row(conv: xr.Dataset | None) -> Row | None:
    """Whether random pruning's kept set converges towards GMP's (None without the table)."""
    if conv is None:
        return None
    parts = [
        f"{r['condition']} {r['sparsity']:g}: J - chance {scaled(r['toward_change'])} over "
        f"retraining (J {r['jaccard_start']:.2f} -> {r['jaccard_end']:.2f}, chance "
        f"{r['chance_start']:.2f} -> {r['chance_end']:.2f}): {r['converges']}"
        for r in rows(conv)
    ]
    towards = [str(v) == "towards GMP's set" for v in conv.converges.values]
    return {
        "claim": "shedding changes which weights are kept; does random pruning followed by "
        "shedding converge towards the set GMP keeps?",
        "paper": "shedding changes the kept set (claimed); convergence is "
        "docs/science.md#kept-sets question",
        "ours": "; ".join(parts),
        "verdict": "converges"
        if all(towards)
        else "does not converge"
        if not any(towards)
        else "converges in some conditions",
    }


def aware_claim(aware: xr.Dataset | None, setting: str) -> dict[str, Any]:
    """Cascade-aware pruning against iterative GMP at the same final sparsity. Rule: more (less)
    accurate when the 95% CIs of the mean final accuracy over seeds do not overlap, else as
    accurate; cheaper when it takes fewer retraining steps (counted in the stores)."""
    claim = {
        "claim": "cascade-aware pruning makes GMP more accurate and cheaper",
        "paper": "claimed",
        "setting": setting,
    }
    by = {str(r["schedule"]): r for r in rows(aware)} if aware is not None else {}
    if not {"cascade", "iterative"} <= set(by):
        return {
            **claim,
            "ours": "not run (no complete cascade-aware and iterative runs)",
            "verdict": "not tested",
        }
    parts = [
        f"{k}: accuracy {percent(r['final_accuracy'])} "
        f"{interval(r['final_accuracy_low'], r['final_accuracy_high'], 100, '.2f')}, "
        f"{r['retrain_steps']:.0f} retraining steps, {r['events']:.1f} events"
        for k, r in by.items()
    ]
    c, it = by["cascade"], by["iterative"]
    if c["final_accuracy_low"] > it["final_accuracy_high"]:
        acc = "more accurate than"
    elif c["final_accuracy_high"] < it["final_accuracy_low"]:
        acc = "less accurate than"
    else:
        acc = "as accurate as"
    cost = "cheaper" if c["retrain_steps"] < it["retrain_steps"] else "not cheaper"
    return {**claim, "ours": "; ".join(parts), "verdict": f"{acc} iterative GMP, and {cost}"}
