"""Results of the map: per run, the cascade statistics against its matched control; per cell
(setting and pruning method), means over seeds with 95% bootstrap CIs and the cascade verdict.

Pure functions of the runs' xarray Datasets. The rules are the project's own: the control is matched
by :func:`shedding.analysis.controls.match_controls`, a run's peak excess, onset and shed counts
come from :func:`shedding.analysis.cascade.cascade_summary`, the cell's verdict is
:func:`shedding.analysis.verdicts.condition_verdict` and the CIs are
:func:`shedding.analysis.seeds.mean_ci`'s.

**Amplification** here is the *excess* amplification (ours): the excess of the run's shed
fraction over its control's at the peak of the excess within the window, times the run's eligible
survivors (those at or above the line at the event), divided by the weights pruned,
A = (S_run - S_control) x eligible / pruned: the survivors shed beyond what retraining alone sheds,
per weight pruned. ``raw_amplification`` is the uncorrected shed count at the run's own peak
divided by the weights pruned (:func:`cascade_summary`'s ``amplification``), kept for reference.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import xarray as xr

from shedding.analysis.verdicts import condition_verdict
from shedding.studies.map_design import FACTORS, MapGrid
from shedding.studies.map_tables import top_rows
from shedding.studies.study_runs import (
    StudyResults,
    StudyRuns,
    dense_summary,
    frame,
    mean_ci_row,
    results_dataset,
)

CELL = (*FACTORS, "method")
RUN_VARS = (
    "excess_peak",
    "amplification",
    "raw_amplification",
    "onset",
    "control_peak_shed_fraction",
    "peak_shed_fraction",
    "pruned",
    "eligible",
)
CELL_VARS = (
    "excess_peak",
    "amplification",
    "raw_amplification",
    "onset",
    "control_peak_shed_fraction",
    "final_accuracy",
)


def run_statistics(run: xr.Dataset, control: xr.Dataset | None, grid: MapGrid) -> dict[str, float]:
    """One pruned run's :data:`RUN_VARS` against its control (the excess ones NaN without one).

    ``onset`` is in steps after the prune event (NaN when the excess never reaches the grid's
    ``onset_excess`` in the window).
    """
    from shedding.analysis.cascade import cascade_summary

    s = cascade_summary(
        run,
        control,
        window=grid.window,
        min_excess=grid.min_excess,
        onset_excess=grid.onset_excess,
    )
    pruned, eligible = int(s.pruned), int(s.eligible)
    excess = float(s.excess_peak)
    onset = int(s.onset_step)
    return {
        "excess_peak": excess,
        "amplification": float(s.excess_amplification),
        "raw_amplification": float(s.amplification),
        "onset": float(onset - int(run.event_step.values[0])) if onset >= 0 else np.nan,
        "control_peak_shed_fraction": float(s.control_peak_shed_fraction),
        "peak_shed_fraction": float(s.peak_shed_fraction),
        "pruned": float(pruned),
        "eligible": float(eligible),
    }


def map_results(study_runs: StudyRuns, grid: MapGrid) -> StudyResults:
    """The map's per-run Dataset (with :data:`RUN_VARS` and ``control`` per run) and its tables:
    ``cells`` (one row per setting and pruned method) and ``controls`` (one per setting)."""
    from shedding.analysis.controls import match_controls

    ds = results_dataset(study_runs)
    runs = study_runs.runs
    labels = [str(r) for r in ds.run.values]
    control_of = match_controls(runs)  # the one rule: same setting, seed and line
    values = {v: np.full(len(labels), np.nan) for v in RUN_VARS}
    control = np.full(len(labels), "", dtype=object)
    for i, lbl in enumerate(labels):
        if lbl not in runs or str(ds.method.values[i]) == "none":
            continue
        ctrl = control_of.get(lbl)
        control[i] = ctrl or ""
        stats = run_statistics(runs[lbl], runs[ctrl] if ctrl else None, grid)
        for v in RUN_VARS:
            values[v][i] = stats[v]
    ds = ds.assign({v: ("run", a) for v, a in values.items()})
    ds["control"] = ("run", control.astype(str))
    base = base_setting(ds, grid)
    tables = {"cells": frame(cell_rows(ds, grid)), "controls": frame(control_rows(ds))}
    return StudyResults(
        "map",
        ds,
        {k: v for k, v in tables.items() if v is not None},
        {
            "base": base,
            "pairs": heatmap_pairs(grid),
            "rule": rule_text(grid),
            "dense": dense_summary(ds),
            "min_excess": grid.min_excess,
        },
    )


def rule_text(grid: MapGrid) -> str:
    """The cascade rule and the amplification's definition, as the report states them."""
    span = "the retraining round" if grid.window == "round" else f"{grid.window} of pruning"
    return (
        "a cell shows a cascade when the mean over seeds of the peak excess S_run - S_control "
        f"within {span} reaches {grid.min_excess:g} and its 95% bootstrap CI "
        "lies above 0; amplification = (S_run - S_control) at that peak x eligible survivors / "
        f"weights pruned; onset = the first step the excess reaches {grid.onset_excess:g}"
    )


def _complete(ds: xr.Dataset) -> np.ndarray:
    return ds.status.values == "complete"


def _cells(ds: xr.Dataset, pruned: bool) -> dict[tuple[Any, ...], list[int]]:
    """Complete runs by cell (setting and method; setting only for the controls)."""
    keys = CELL if pruned else FACTORS
    out: dict[tuple[Any, ...], list[int]] = {}
    for i in np.flatnonzero(_complete(ds)):
        if (str(ds.method.values[i]) == "none") == pruned:
            continue
        out.setdefault(tuple(ds[k].values[i].item() for k in keys), []).append(int(i))
    return out


def cell_rows(ds: xr.Dataset, grid: MapGrid) -> list[dict[str, Any]]:
    """One row per cell: its factors, seeds, controls, the :data:`CELL_VARS` means with CIs, the
    pruned count, the verdict and whether the amplification is above 1 (mean; CI)."""
    out = []
    for key, idx in _cells(ds, pruned=True).items():
        row: dict[str, Any] = dict(zip(CELL, key, strict=True))
        controls = int(sum(bool(ds.control.values[i]) for i in idx))
        row.update(seeds=len(idx), controls=controls)
        for v in CELL_VARS:
            row.update(mean_ci_row(v, [float(ds[v].values[i]) for i in idx]))
        row["onset_seeds"] = int(np.isfinite(ds.onset.values[idx]).sum())
        row["pruned"] = float(np.mean(ds.pruned.values[idx]))
        row["verdict"] = condition_verdict(
            row["excess_peak"],
            row["excess_peak_low"],
            len(idx),
            grid.min_excess,
            controls == len(idx),
        )
        row["amplified"] = bool(row["amplification"] > 1)
        row["amplified_ci"] = bool(row["amplification_low"] > 1)
        out.append(row)
    return out


def control_rows(ds: xr.Dataset) -> list[dict[str, Any]]:
    """One row per setting's controls: seeds and their final accuracy (mean, CI)."""
    out = []
    for key, idx in _cells(ds, pruned=False).items():
        row: dict[str, Any] = dict(zip(FACTORS, key, strict=True))
        row["seeds"] = len(idx)
        row.update(mean_ci_row("final_accuracy", [float(ds.final_accuracy.values[i]) for i in idx]))
        out.append(row)
    return out


def base_setting(ds: xr.Dataset, grid: MapGrid) -> dict[str, Any]:
    """The base setting the sweeps vary around: the grid's, with the model its sweeps share (the
    configuration's own; the most frequent model of the runs)."""
    models = Counter(str(m) for m in ds.model.values)
    base = dict(grid.base)
    if models:
        base["model"] = models.most_common(1)[0][0]
    return base


def heatmap_pairs(grid: MapGrid) -> list[tuple[str, str]]:
    """The factor pairs the report offers as heatmaps: each swept factor against the pruning
    method, then each 2-factor cross."""
    pairs = [(f, "method") for f in grid.sweeps]
    return pairs + [(a, b) for (a, _), (b, _) in grid.crosses]


def map_table(results: StudyResults) -> list[dict[str, Any]]:
    """The CLI's table: the top cells by amplification
    (:func:`shedding.studies.map_tables.top_rows`)."""
    return top_rows(results, plain=True)
