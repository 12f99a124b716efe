"""The answer at the top of a report: one sentence per condition saying what happened and how sure
the analysis is (the verdict with the mean peak excess over the control and its 95% CI), and for
a kept-set comparison one sentence per pair of conditions. HTML out; numbers written by
:mod:`shedding.reports.numbers`.
"""

from __future__ import annotations

import html

import numpy as np

from shedding.analysis.summary import Summary
from shedding.reports.numbers import ci_pair, number
from shedding.reports.report_rows import seeds_of

VERDICT_CLASS = {"cascade": "cascade", "no cascade": "nocascade"}


def _excess_text(stats: dict[str, object]) -> str:
    """``mean peak excess over the control +0.121 (95% CI [+0.099, +0.142]) over 3 seeds``."""
    low, high = stats["excess_peak_ci"]  # type: ignore[misc]
    value, ci = ci_pair(float(stats["excess_peak"]), low, high, signed=True)  # type: ignore[arg-type]
    n = int(stats["seeds"])  # type: ignore[call-overload]
    ci_text = f" (95% CI {ci})" if ci else ""
    return f"mean peak excess over the control {value}{ci_text} over {n} seed{'s' * (n != 1)}"


def _how_sure(stats: dict[str, object], threshold: float) -> str:
    """Why the verdict is what it is: the threshold, the CI against 0, or the lack of a CI."""
    verdict = str(stats["verdict"])
    mean = float(stats["excess_peak"])  # type: ignore[arg-type]
    low = float(stats["excess_peak_ci"][0])  # type: ignore[index]
    t = f"{threshold:g}"
    if verdict == "no control":
        return (
            "no verdict: no unpruned control matches these runs, and retraining alone sheds, "
            "so their shed curves cannot show a cascade"
        )
    if "1 seed" in verdict:
        side = "reaches" if mean >= threshold else "stays below"
        return f"{side} the {t} threshold; one seed gives no CI, so how sure is unknown"
    if verdict == "cascade":
        return f"at the {t} threshold or above, and the CI lies above 0: pruning added shedding"
    if mean >= threshold and not low > 0:
        return f"the mean reaches the {t} threshold but the CI includes 0: not told apart from 0"
    return f"below the {t} threshold: pruning added little or no shedding"


def condition_sentences(summary: Summary) -> str:
    """One coloured box per condition with a verdict: ``<b>label: VERDICT</b> — what, how sure``;
    the per-run evidence folded below them. Nothing when no condition has a verdict."""
    threshold = float(summary.params.get("min_excess", 0.05))  # type: ignore[arg-type]
    boxes = []
    for label, stats in summary.condition_stats.items():
        verdict = str(stats["verdict"])
        cls = VERDICT_CLASS.get(verdict.split(" (")[0], "warn")
        what = "" if verdict == "no control" else _excess_text(stats) + "; "
        text = html.escape(what + _how_sure(stats, threshold))
        boxes.append(
            f'<div class="banner {cls}"><b>{html.escape(label)}: '
            f"{html.escape(verdict.upper())}</b> — {text}.</div>"
        )
    return "\n".join(boxes)


def evidence_details(summary: Summary) -> str:
    """Each pruned run's own evidence and the rule, folded away."""
    cascades = summary.cascades
    items = "".join(
        f"<li>{html.escape(n)}: {html.escape(cascades[n].attrs['evidence'])}</li>"
        for label in summary.condition_stats
        for n in summary.conditions[label]
        if n in cascades and n not in summary.controls
    )
    if not cascades:
        return ""
    rule = html.escape(next(iter(cascades.values())).attrs["rule"])
    return (
        f"<details><summary><small>Rule and per-run evidence</small></summary><small>Rule (ours): "
        f"{rule}. Across seeds: a cascade when the mean peak excess reaches the threshold and its "
        f"95% bootstrap CI lies above 0.<ul>{items}</ul></small></details>"
    )


def _pair_sentence(a: str, b: str, diffs: list[float], ps: list[float], same: bool) -> str:
    """One pair of conditions: the mean Jaccard minus chance over its pairs of runs, and in how
    many the overlap is above chance (p < 0.05)."""
    n = len(diffs)
    above = sum(p < 0.05 for p in ps)
    pairs = f"{n} pair{'s' * (n != 1)} of runs" + (" of the same seed" if same else "")
    verdict = (
        "above chance in every pair"
        if above == n
        else "above chance in none of them"
        if above == 0
        else f"above chance in {above} of {n} pairs"
    )
    return (
        f"<b>{html.escape(a)} vs {html.escape(b)}</b>: kept sets share "
        f"{number(float(np.mean(diffs)), signed=True)} Jaccard beyond chance (mean over {pairs}); "
        f"the overlap is {verdict} (hypergeometric p &lt; 0.05)."
    )


def overlap_sentences(summary: Summary) -> str:
    """Per pair of conditions that pruned: how far their kept sets overlap beyond chance, over the
    pairs of runs of the same seed (every pair of runs when none share a seed)."""
    seeds = seeds_of(summary)
    cond = {n: label for label, names in summary.conditions.items() for n in names}
    pruned = {n for n in summary.runs if n not in summary.controls}
    pairs = [(a, b) for a, b in summary.overlaps if a in pruned and b in pruned]
    same = [(a, b) for a, b in pairs if seeds[a] == seeds[b] and cond[a] != cond[b]]
    use = same or [(a, b) for a, b in pairs if cond[a] != cond[b]] or pairs
    groups: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
    for a, b in use:
        g = summary.overlaps[(a, b)].sel(scope="all")
        d, p = groups.setdefault((cond[a], cond[b]), ([], []))
        d.append(float(g.jaccard - g.jaccard_chance))
        p.append(float(g.p_value))
    boxes = [
        f'<div class="banner neutral">{_pair_sentence(a, b, d, p, bool(same))}</div>'
        for (a, b), (d, p) in groups.items()
    ]
    return "\n".join(boxes)


def convergence_sentences(summary: Summary) -> str:
    """Per random run's condition: does shedding move its kept set towards GMP's (the mean Jaccard
    minus chance of its survivors above the line, at the start and the end)."""
    cond = {n: label for label, names in summary.conditions.items() for n in names}
    groups: dict[str, list[tuple[float, float]]] = {}
    for (a, _), r in summary.convergences.items():
        v = r.toward_above_line.values
        groups.setdefault(cond[a], []).append((float(v[0]), float(v[-1])))
    out = []
    for label, pts in groups.items():
        start, end = np.mean(pts, axis=0)
        way = "towards" if end > start else "away from"
        out.append(
            f'<div class="banner neutral"><b>{html.escape(label)}</b>: shedding moves its kept set '
            f"{way} GMP's: Jaccard beyond chance {number(start, True)} at the prune, "
            f"{number(end, True)} at the end (survivors above the line; mean over {len(pts)} "
            f"run{'s' * (len(pts) != 1)}).</div>"
        )
    return "\n".join(out)
