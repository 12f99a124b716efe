"""Results of the rewinding study (Renda et al.): accuracy change against compression per
retraining technique, schedule and budget, and their table metric.

* :func:`max_compression_at_parity`: Renda et al.'s table metric, the largest compression whose
  median accuracy change against the dense network is at least 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from shedding.studies.study_runs import (
    StudyResults,
    StudyRuns,
    dense_summary,
    points,
    results_dataset,
    rows,
    seed_reduce,
)

REWINDING_BY = ["technique", "schedule", "budget"]


def max_compression_at_parity(
    reduced: xr.Dataset, by: list[str], stat: str = "delta_median"
) -> xr.Dataset:
    """Renda et al.'s table metric per group of ``by``: the largest compression whose ``stat`` is >=
    0.

    Returns dim ``group`` with ``max_compression`` (NaN when no tested compression reaches parity),
    ``delta_at_max``, ``next_compression`` and ``delta_next`` (the next larger tested compression,
    where the accuracy is below the dense one; NaN when the largest tested one is at parity),
    ``largest_tested`` and
    ``censored`` (parity at the largest tested compression: the true limit lies beyond the grid).
    """
    df = reduced.to_dataframe().reset_index()
    records = []
    for group, g in df.groupby(list(by), sort=True, dropna=False):
        group = group if isinstance(group, tuple) else (group,)
        g = g.sort_values("compression")
        c = g["compression"].to_numpy(dtype=float)
        d = g[stat].to_numpy(dtype=float)
        ok = np.flatnonzero(d >= 0)
        row: dict[str, Any] = dict(zip(by, group, strict=True))
        row.update(
            largest_tested=float(c.max()),
            max_compression=np.nan,
            delta_at_max=np.nan,
            next_compression=np.nan,
            delta_next=np.nan,
            censored=False,
        )
        if ok.size:
            i = int(ok[-1])
            row.update(
                max_compression=float(c[i]),
                delta_at_max=float(d[i]),
                censored=bool(i == c.size - 1),
            )
            if i + 1 < c.size:
                row.update(next_compression=float(c[i + 1]), delta_next=float(d[i + 1]))
        elif c.size:
            row.update(next_compression=float(c[0]), delta_next=float(d[0]))
        records.append(row)
    out = pd.DataFrame(records)
    return xr.Dataset(
        {k: ("group", out[k].to_numpy()) for k in out.columns if k not in by},
        coords={"group": np.arange(len(out)), **{k: ("group", out[k].to_numpy()) for k in by}},
    )


def rewinding_results(study_runs: StudyRuns) -> StudyResults:
    """Per run, per point and per (technique, schedule, budget): the curves and the parity
    metric."""
    ds = results_dataset(study_runs)
    table = points(ds, REWINDING_BY)
    reduced = seed_reduce(table, REWINDING_BY)
    parity = max_compression_at_parity(reduced, REWINDING_BY) if reduced.sizes["group"] else reduced
    return StudyResults(
        "rewinding", ds, {"points": reduced, "parity": parity}, {"dense": dense_summary(ds)}
    )


def parity_table(results: StudyResults) -> list[dict[str, Any]]:
    """One row per technique, schedule and budget: the largest compression with median delta >=
    0."""
    parity = rows(results.tables["parity"]) if "parity" in results.tables else []
    return [
        {
            "technique": r["technique"],
            "schedule": r["schedule"],
            "t/T": r["budget"],
            "max compression at parity": r["max_compression"],
            "median delta at it": r["delta_at_max"],
            "next compression": r["next_compression"],
            "median delta at next": r["delta_next"],
            "censored": r["censored"],
        }
        for r in parity
    ]
