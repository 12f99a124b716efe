"""A study's report: one self-contained HTML page (plotly.js inlined once, as
:mod:`shedding.reports.html` does).

Every page has the question and the setting, the grid, failed runs in red, the "compared with the
paper" table, the study's sections, every run with its factors and results, and the base
configuration.
"""

from __future__ import annotations

import dataclasses
import html
import json
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from shedding.reports import figures
from shedding.reports.html import CSS, LINK_JS, _fig_block, _table
from shedding.storage import write_text_atomic
from shedding.studies.study_claims import blocks_claims, cascade_claims, rewinding_claims
from shedding.studies.study_figures import (
    accuracy_bars,
    aware_figure,
    blocks_curves,
    control_levels,
    convergence_curves,
    excess_bars,
    rewinding_curves,
)
from shedding.studies.study_results import StudyResults, _rows

EXTRA_CSS = """
.verdict-reproduced{background:#e3f1e3} .verdict-not{background:#fde2e1} .claims td{white-space:normal;
text-align:left;max-width:420px;vertical-align:top}
.controlnote{background:#fff3cd;border:3px solid #d39e00;font-weight:bold;font-size:1.1em;padding:12px 14px;
border-radius:6px;margin:10px 0}
"""

Section = tuple[str, str, list[go.Figure]]  # heading, html, figures


def _esc(v: object) -> str:
    return html.escape(str(v))


def _claims_table(rows: list[dict[str, str]]) -> str:
    if not rows:
        return "<p>No claim could be compared (no complete runs).</p>"
    head = "".join(f"<th>{k}</th>" for k in ("claim", "paper", "ours", "verdict"))
    body = []
    for r in rows:
        v = str(r["verdict"])
        cls = (
            "verdict-reproduced"
            if v.startswith(("reproduced", "consistent", "converges"))
            else "verdict-not"
            if v.startswith(("not reproduced", "does not"))
            else ""
        )
        body.append(
            f"<tr><td>{_esc(r['claim'])}</td><td>{_esc(r['paper'])}</td><td>{_esc(r['ours'])}</td>"
            f'<td class="{cls}"><b>{_esc(v)}</b></td></tr>'
        )
    settings = list(dict.fromkeys(r["setting"] for r in rows))
    note = "".join(f"<p><small><b>Setting:</b> {_esc(s)}</small></p>" for s in settings)
    return (
        f'<table class="claims"><tr>{head}</tr>{"".join(body)}</table>{note}'
        "<p><small>The settings differ (a small network on small data against the papers' CIFAR/ImageNet ResNets): "
        "a number of ours is not a measurement of the paper's number; only the direction of a claim can be "
        "checked, under the rule given in its row.</small></p>"
    )


def _grid_text(grid: Any) -> str:
    if dataclasses.is_dataclass(grid):
        d = dataclasses.asdict(grid)
    else:
        d = dict(grid or {})
    return json.dumps(d, indent=1, default=str)


def _runs_rows(
    results: StudyResults, factors: list[str], extra: list[str] | None = None
) -> list[dict[str, object]]:
    ds = results.runs
    rows = []
    for i in range(ds.sizes["run"]):
        r = ds.isel(run=i)
        k = max(int(r.rounds), 1)
        row: dict[str, object] = {"run": str(r.run.values)}
        row.update({f: r[f].values.item() for f in factors})
        row.update(
            {
                "status": str(r.status.values),
                "final accuracy": float(r.final_accuracy),
                "dense": float(r.dense_accuracy),
                "delta (last round)": float(r.delta.values[k - 1]),
                "compression (last round)": float(r.compression.values[k - 1]),
                "rounds": int(r.rounds),
                "T": int(r["T"]),
                "t": int(r.t),
                "retrain steps": int(r.retrain_steps),
            }
        )
        for v in extra or []:
            row[v] = r[v].values.item()
        if str(r.status.values) != "complete":
            row["error"] = str(r.error.values)
        rows.append(row)
    return rows


def write_study_report(
    results: StudyResults,
    out: str | Path,
    context: dict[str, Any],
    claims: list[dict[str, str]],
    sections: list[Section],
    factors: list[str],
    banners: str = "",
    run_extra: list[str] | None = None,
) -> Path:
    """Write a study's page to ``out`` atomically (a temporary file renamed at the end)."""
    out = Path(out)
    ds = results.runs
    n = int(ds.sizes["run"])
    done = int((ds.status == "complete").sum())
    failed = results.failed
    fail_html = ""
    if failed:
        items = "".join(
            f"<li><code>{_esc(f['run'])}</code>: {_esc(f['error'])}</li>" for f in failed
        )
        fail_html = (
            f'<div class="banner cascade"><b>{len(failed)} of {n} runs failed</b>; the results below are '
            f"from the {done} complete runs.<ul>{items}</ul></div>"
        )
    dense = results.extras.get("dense", {})
    dense_txt = (
        ", ".join(
            f"seed {s}: {', '.join(f'{100 * v:.2f}%' for v in vals)}"
            for s, vals in sorted(dense.get("per_seed", {}).items())
        )
        or "unknown (no pretrain cache)"
    )
    levels = "".join(
        f"<li><b>{_esc(k)}</b>: {_esc(v)}</li>" for k, v in _factor_levels(ds, factors).items()
    )
    idx = 0
    body = []
    for heading, text, figs in sections:
        body.append(f"<h2>{_esc(heading)}</h2>\n{text}")
        for f in figs:
            body.append(_fig_block(f, idx, link=False))
            idx += 1
    quick = str(context.get("size", "full"))
    seconds = context.get("seconds")
    timing = f"; the grid ran for {seconds:.0f} s" if seconds else ""
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_esc(context.get("title", "study"))}</title><style>{CSS}{EXTRA_CSS}</style>
<script type="text/javascript">{get_plotlyjs()}</script></head>
<body>
<h1>{_esc(context.get("title", "study"))}</h1>
<p><b>Question:</b> {_esc(context.get("question", ""))}.<br><b>Paper:</b> {_esc(context.get("paper", ""))}.</p>
<p><small>{quick} grid: {n} runs, {done} complete{timing}. Command: <code>{_esc(context.get("command", ""))}</code>.
Model {_esc(ds.attrs.get("model", "?"))} on {_esc(ds.attrs.get("dataset", "?"))}. Dense accuracy (the original
training's test accuracy, per seed; one value per distinct original training): {_esc(dense_txt)}.</small></p>
{fail_html}
{banners}
<h2>Compared with the paper</h2>
{_claims_table(claims)}
<h2>The grid</h2>
<ul>{levels}</ul>
{"".join(body)}
<h2>Every run</h2>
{_table(_runs_rows(results, factors, run_extra))}
<h2>Configuration</h2>
<details><summary>base configuration (TOML; the grid sets its factors on top)</summary>
<pre>{_esc(context.get("base_toml", ""))}</pre></details>
<details><summary>grid options</summary><pre>{_esc(_grid_text(context.get("grid")))}</pre></details>
<script>{LINK_JS}</script>
</body></html>
"""
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, doc)
    return out


def _factor_levels(ds: Any, factors: list[str]) -> dict[str, str]:
    out = {}
    for f in factors:
        values = list(dict.fromkeys(ds[f].values.tolist()))
        out[f] = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)
    return out


# --------------------------------------------------------------------------- the three studies

REWINDING_FACTORS = ["technique", "schedule", "sparsity", "budget", "seed"]
BLOCKS_FACTORS = ["technique", "block", "sparsity", "budget", "seed"]
CASCADE_FACTORS = ["part", "condition", "method", "sparsity", "schedule", "seed"]


def write_rewinding_report(results: StudyResults, out: str | Path, context: dict[str, Any]) -> Path:
    """Accuracy change against compression per t, the parity table, and Renda et al.'s table beside
    ours."""
    pts, parity = results.tables["points"], results.tables["parity"]
    budgets = sorted({float(b) for b in pts.budget.values}) if pts.sizes.get("group", 0) else []
    figs = [rewinding_curves(pts, b) for b in budgets]
    note = ""
    base = context.get("base_schedule")
    if base == "constant":
        note = (
            '<div class="banner warn">The base schedule is a constant LR: LR rewinding replays the same LR as '
            "fine-tuning, so the two differ only if --retrain-finetune-lr is set.</div>"
        )
    parity_rows = [
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
        for r in _rows(parity)
    ]
    point_rows = [
        {
            "technique": r["technique"],
            "schedule": r["schedule"],
            "t / T": r["budget"],
            "compression": r["compression"],
            "seeds": r["n"],
            "median accuracy": r["accuracy_median"],
            "median delta (points)": 100 * r["delta_median"],
            "mean delta [95% CI]": (
                f"{100 * r['delta_mean']:+.2f} [{100 * r['delta_low']:+.2f}, "
                f"{100 * r['delta_high']:+.2f}]"
                if np.isfinite(r["delta_low"])
                else f"{100 * r['delta_mean']:+.2f}"
            ),
        }
        for r in _rows(pts)
    ]
    sections: list[Section] = [
        (
            "Accuracy against compression, per retraining budget t",
            note
            + "<p>Each point: the median over seeds of (test accuracy at the end of the round - the dense "
            "network's test accuracy of the same seed). One-shot runs give one point each; an iterative run gives one "
            "point per round. Compression = 1 / (1 - the event's recorded sparsity).</p>",
            figs,
        ),
        (
            "Largest compression at parity (Renda et al.'s table metric)",
            "<p>The largest tested compression whose median accuracy change is at least 0; the next larger tested "
            "compression is shown beside it. <i>Censored</i>: parity holds at the largest compression tested, so the "
            "limit lies beyond the grid.</p>" + _table(parity_rows),
            [],
        ),
        ("Every point (over seeds)", _table(point_rows), []),
    ]
    return write_study_report(
        results, out, context, rewinding_claims(results), sections, REWINDING_FACTORS
    )


def write_blocks_report(results: StudyResults, out: str | Path, context: dict[str, Any]) -> Path:
    """Accuracy against block size per sparsity and technique, and Siswanto's claims beside ours."""
    b = results.tables["blocks"]
    dense = float(results.extras.get("dense", {}).get("median", np.nan))
    sparsities = sorted({float(s) for s in b.sparsity.values}) if b.sizes.get("group", 0) else []
    figs = [blocks_curves(b, s, dense) for s in sparsities]
    rows = [
        {
            "technique": r["technique"],
            "sparsity": r["sparsity"],
            "block": r["block"],
            "seeds": r["n"],
            "recorded sparsity": r["recorded_sparsity_mean"],
            "accuracy mean": r["accuracy_mean"],
            "95% CI": (r["accuracy_low"], r["accuracy_high"]),
            "right after pruning": r["pruned_accuracy_mean"],
            "delta vs dense (points)": 100 * r["delta_mean"],
            "layers pruned away (max over seeds)": r["collapsed_layers_max"],
        }
        for r in _rows(b)
    ]
    collapse = ""
    if rows and any(r["layers pruned away (max over seeds)"] > 0 for r in rows):
        bad = [
            f"{r['technique']} {r['block']} at {r['sparsity']:g}"
            for r in rows
            if r["layers pruned away (max over seeds)"] > 0
        ]
        collapse = (
            '<div class="banner warn">Layer collapse: global block pruning removed every weight of at least '
            "one layer in "
            + _esc("; ".join(bad))
            + ". Such a network is at chance whatever the retraining; "
            "the comparison with the paper leaves these blocks out.</div>"
        )
    sections: list[Section] = [
        (
            "Accuracy against block size",
            "<p>Mean over seeds with 95% bootstrap CIs. Blocks are pruned whole (lowest mean |w| first, globally); "
            "edge blocks may be smaller, so the recorded sparsity overshoots the target by less than one block. "
            "Fine-tuning and weight rewinding retrain for the grid's budget; random re-initialisation replays the "
            "whole original schedule.</p>",
            figs,
        ),
        ("Every technique, sparsity and block", _table(rows), []),
    ]
    return write_study_report(
        results, out, context, blocks_claims(results), sections, BLOCKS_FACTORS, banners=collapse
    )


CONTROL_NOTE = (
    '<div class="controlnote">Retraining alone sheds weights. A shed curve S(t) shown without its '
    "unpruned control says nothing about cascades: every S(t) below is drawn beside its seed-matched "
    "control (dashed grey), and only the excess S_run - S_control (lower panels, bars) is evidence of a "
    "cascade.</div>"
)


def write_cascade_report(results: StudyResults, out: str | Path, context: dict[str, Any]) -> Path:
    """S(t) with its control per condition, excess bars, accuracy, convergence, verdicts, the
    paper's claims."""
    ds = results.runs
    t = results.tables
    window_txt = results.extras.get("window")
    min_excess = float(results.extras.get("min_excess", 0.05))
    banners = [CONTROL_NOTE]
    sections: list[Section] = []
    conds = t.get("conditions")
    shed_figs, missing = [], []
    bands = results.extras.get("bands", {})
    for cond, sp in dict.fromkeys((c, s) for c, s, _ in bands):
        sub = {
            f"{m}" + (" (control)" if m == "none" else ""): {
                k: v.rename(since="step") for k, v in b.items()
            }
            for (c, s, m), b in bands.items()
            if c == cond and s == sp
        }
        ctrl_label = "none (control)"
        if ctrl_label not in sub:
            missing.append(f"{cond} ({sp:g})")
        n_seeds = {k: int(b["S"].attrs.get("n", 1)) for k, b in sub.items()}
        window = _window_steps(ds, window_txt)
        fig = figures.shed_bands(sub, {ctrl_label}, n_seeds, window)
        fig.update_layout(
            title=f"{cond}, sparsity {sp:g}: S(t) against the unpruned control (mean, 95% CI over seeds)"
        )
        shed_figs.append(fig)
    if missing:
        banners.append(
            '<div class="banner warn">NO CONTROL for '
            + _esc(", ".join(missing))
            + ": these conditions' "
            "shed curves cannot show a cascade and have no verdict.</div>"
        )
    verdict_rows = []
    if conds is not None:
        for r in _rows(conds):
            verdict_rows.append(
                {
                    "condition": r["condition"],
                    "sparsity": r["sparsity"],
                    "method": r["method"],
                    "seeds": r["seeds"],
                    "with control": r["controls"],
                    "peak excess (mean)": r["excess_peak"],
                    "95% CI": (r["excess_peak_low"], r["excess_peak_high"]),
                    "amplification": r["amplification"],
                    "amplification CI": (r["amplification_low"], r["amplification_high"]),
                    "final excess": r["final_excess"],
                    "control peak S": r["control_peak_shed_fraction"],
                    "accuracy": r["final_accuracy"],
                    "after pruning": r["pruned_accuracy"],
                    "verdict": r["verdict"],
                }
            )
    rule = results.extras.get("rule", "")
    sections.append(
        (
            "Verdicts per condition",
            _table(verdict_rows) + f"<p><small>Rule (ours): {_esc(rule)}. "
            "Amplification = shed count at the peak / weights pruned.</small></p>",
            [],
        )
    )
    sections.append(("Shedding against the control, per condition", "", shed_figs))
    if conds is not None:
        sections.append(("Excess over the control", "", [excess_bars(conds, min_excess)]))
        sections.append(
            (
                "Random pruning with and without a cascade, against GMP",
                _table(_rvg_rows(t.get("random_vs_gmp"))),
                [accuracy_bars(conds, t.get("controls"))],
            )
        )
    sections.append(
        (
            "How much retraining alone sheds",
            _table(_rows(t["controls"])) if t.get("controls") is not None else "",
            [control_levels(ds)],
        )
    )
    conv = t.get("convergence")
    if conv is not None:
        sections.append(
            (
                "Kept-set convergence: random pruning towards GMP's set",
                "<p>For each random run and the GMP run of the same condition and seed: the Jaccard index of "
                "random's survivors at or above the line with GMP's kept set, minus its chance level for "
                "independent sets of the same densities (docs/science.md#kept-sets), over the retraining. A rising "
                "curve means shedding moves random's set towards GMP's.</p>" + _table(_rows(conv)),
                [convergence_curves(ds)],
            )
        )
    aware = t.get("aware")
    aware_text = (
        "<p>Cascade-aware pruning (prune a small share by GMP, let the cascade run, remove what was shed, "
        "repeat to the target, then retrain) against one-shot and iterative GMP at the same final sparsity. "
        "Training steps are counted from the stores (original training T plus every retraining step "
        "recorded).</p>"
    )
    if aware is not None:
        sections.append(
            (
                "Cascade-aware pruning against one-shot and iterative GMP (optional part)",
                aware_text + _table(_rows(aware)),
                [aware_figure(aware)],
            )
        )
    else:
        sections.append(
            (
                "Cascade-aware pruning against one-shot and iterative GMP (optional part)",
                aware_text
                + "<p><b>Not run:</b> the <code>cascade</code> pruning schedule is not available "
                "in this version; the grid adds these runs when it is.</p>",
                [],
            )
        )
    return write_study_report(
        results,
        out,
        context,
        cascade_claims(results),
        sections,
        CASCADE_FACTORS,
        banners="\n".join(banners),
        run_extra=["verdict", "excess_peak"],
    )


def _rvg_rows(rvg: Any) -> list[dict[str, object]]:
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
            "random - GMP (points)": 100 * r["random_minus_gmp"],
            "95% CI": (100 * r["random_minus_gmp_low"], 100 * r["random_minus_gmp_high"]),
            "right after pruning (points)": 100 * r["random_minus_gmp_after_pruning"],
        }
        for r in _rows(rvg)
    ]


def _window_steps(ds: Any, window: Any) -> int | None:
    """The cascade window in steps (from the runs' iterations per epoch), or None for the whole
    round."""
    if window is None or window == "round":
        return None
    if isinstance(window, int):
        return window
    from shedding.steps import Step

    ipe = ds.attrs.get("iterations_per_epoch")
    return None if ipe is None else Step.parse(window).iterations(int(ipe))
