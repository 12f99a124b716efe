"""What a study's page says about its setting and its runs: the grid's factor levels, the dense
accuracies, the failed runs, every run with its factors and results (HTML and rows; no I/O).
"""

from __future__ import annotations

import dataclasses
import html
import json
from typing import Any

from shedding.reports.numbers import percent
from shedding.studies.study_runs import StudyResults


def esc(v: object) -> str:
    """``v`` as escaped HTML text."""
    return html.escape(str(v))


def grid_text(grid: Any) -> str:
    """The grid options as indented JSON."""
    if dataclasses.is_dataclass(grid):
        d = dataclasses.asdict(grid)  # type: ignore[arg-type]
    else:
        d = dict(grid or {})
    return json.dumps(d, indent=1, default=str)


def runs_rows(
    results: StudyResults, factors: list[str], extra: list[str] | None = None
) -> list[dict[str, object]]:
    """One row per run: its factors, status and results (and ``extra`` variables); the error of a
    run that did not complete."""
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


def factor_levels(ds: Any, factors: list[str]) -> dict[str, str]:
    """Each factor's distinct levels, in grid order, as text."""
    out = {}
    for f in factors:
        values = list(dict.fromkeys(ds[f].values.tolist()))
        out[f] = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)
    return out


def failed_html(results: StudyResults) -> str:
    """The red banner naming the runs that failed, with their errors (nothing when none did)."""
    ds = results.runs
    failed = results.failed
    if not failed:
        return ""
    n = int(ds.sizes["run"])
    done = int((ds.status == "complete").sum())
    items = "".join(f"<li><code>{esc(f['run'])}</code>: {esc(f['error'])}</li>" for f in failed)
    return (
        f'<div class="banner cascade"><b>{len(failed)} of {n} runs failed</b>; the results below '
        f"are from the {done} complete runs.<ul>{items}</ul></div>"
    )


def dense_text(results: StudyResults) -> str:
    """The dense accuracies per seed, as text."""
    dense = results.extras.get("dense", {})
    return (
        ", ".join(
            f"seed {s}: {', '.join(percent(v) for v in vals)}"
            for s, vals in sorted(dense.get("per_seed", {}).items())
        )
        or "unknown (no pretrain cache)"
    )


def setting_html(results: StudyResults, context: dict[str, Any], factors: list[str]) -> str:
    """The study's setting: the grid's size and command, model and data, dense accuracy, and each
    factor's levels."""
    ds = results.runs
    n = int(ds.sizes["run"])
    done = int((ds.status == "complete").sum())
    levels = "".join(
        f"<li><b>{esc(k)}</b>: {esc(v)}</li>" for k, v in factor_levels(ds, factors).items()
    )
    seconds = context.get("seconds")
    timing = f"; the grid ran for {seconds:.0f} s" if seconds else ""
    return (
        f"<p><b>Paper:</b> {esc(context.get('paper', ''))}.</p>"
        f"<p><small>{esc(context.get('size', 'full'))} grid: {n} runs, {done} complete{timing}. "
        f"Command: <code>{esc(context.get('command', ''))}</code>. Model "
        f"{esc(ds.attrs.get('model', '?'))} on {esc(ds.attrs.get('dataset', '?'))}. Dense "
        "accuracy (the original training's test accuracy, per seed; one value per distinct "
        f"original training): {esc(dense_text(results))}.</small></p>"
        f"<p><b>The grid</b></p><ul>{levels}</ul>"
    )
