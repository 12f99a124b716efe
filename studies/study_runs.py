"""What every study's results share: one labelled Dataset over a study's runs, and the reductions
over seeds.

:func:`collect` is the only I/O: it opens the complete stores of a study and reads each run's dense
accuracy (the original training's test accuracy, which the pretrain cache's ``meta.json`` holds).
Everything else is a pure function of xarray objects:

* :func:`results_dataset`: dim ``run`` with the grid's factors as coordinates (``sparsity`` is the
  grid's target), ``accuracy``, ``recorded_sparsity``, ``compression`` = 1/(1 - recorded
  sparsity) and ``delta`` (accuracy - dense) per round (from the store's event table),
  ``final_accuracy`` (the store's ``final_test_accuracy``), ``retrain_steps`` (the store's
  retraining rows, ``step > 0``), ``T`` and ``t``;
* :func:`points` and :func:`seed_reduce`: median, mean and 95% bootstrap CI over seeds at each
  point;
* :func:`rows`, :func:`frame`, :func:`mean_ci_row`: tables as rows of plain dicts and back;
* :func:`dense_summary` and :func:`run_setting`: the dense accuracies and what the runs ran on.

Each study's own reductions are in its ``*_results`` module.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from shedding.analysis.seeds import mean_ci

ROUND_DECIMALS = 3  # compressions equal to this many decimals are one point of a curve


@dataclass(frozen=True)
class Entry:
    """One run of a study: its label, factor values, store and what happened to it."""

    label: str
    factors: dict[str, Any]
    path: str | None
    status: str  # complete, failed
    error: str | None = None


@dataclass
class StudyRuns:
    """The opened stores of a study's complete runs and their dense accuracies, keyed by label."""

    entries: list[Entry]
    runs: dict[str, xr.Dataset]
    dense: dict[str, float]


@dataclass
class StudyResults:
    """A study's per-run Dataset and its reductions (each an xarray Dataset), plus notes for the
    report."""

    study: str
    runs: xr.Dataset
    tables: dict[str, xr.Dataset] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> list[dict[str, str]]:
        """Label and error of every run that did not complete."""
        r = self.runs
        return [
            {"run": str(lbl), "error": str(err)}
            for lbl, st, err in zip(r.run.values, r.status.values, r.error.values, strict=True)
            if st != "complete"
        ]


# --------------------------------------------------------------------------- the only I/O


def read_dense_accuracy(cache_dir: str | Path, config: dict[str, Any]) -> float:
    """The original training's test accuracy from the pretrain cache (``meta.json``); NaN when
    absent."""
    from shedding.config import from_plain
    from shedding.experiment import pretrain_dir  # the cache's naming, from its one definition

    meta = pretrain_dir(Path(cache_dir), from_plain(config)) / "meta.json"
    try:
        return float(json.loads(meta.read_text())["test_accuracy"])
    except (FileNotFoundError, KeyError, ValueError):
        return float("nan")


def collect(entries: list[Entry], cache_dir: str | Path | None = None) -> StudyRuns:
    """Open the stores of the complete entries (lazily) and read their dense accuracies from
    ``cache_dir``."""
    from shedding.analysis.io import open_run

    runs, dense = {}, {}
    for e in entries:
        if e.status != "complete" or e.path is None:
            continue
        ds = open_run(e.path)
        runs[e.label] = ds
        dense[e.label] = (
            read_dense_accuracy(cache_dir, ds.attrs["config"])
            if cache_dir is not None
            else float("nan")
        )
    return StudyRuns(list(entries), runs, dense)


# --------------------------------------------------------------------------- the per-run Dataset

LONG_NAMES = {
    "accuracy": "test accuracy at the end of the round (event_final_test_accuracy)",
    "pruned_accuracy": "test accuracy right after the round's prune event",
    "delta": "accuracy - dense accuracy (the original training's test accuracy)",
    "compression": "1 / (1 - recorded event sparsity)",
    "retrain_steps": "retraining steps recorded in the store (step > 0)",
    "collapsed_layers": "prunable layers with no surviving weight after the event",
}


def _per_run(study_runs: StudyRuns) -> dict[str, np.ndarray]:
    """The per-run (and per-round) arrays of :func:`results_dataset`, NaN or -1 where a run has
    no store."""
    entries = study_runs.entries
    n_rounds = max([int(ds.sizes["event"]) for ds in study_runs.runs.values()] or [1])
    shape = (len(entries), n_rounds)
    a = {k: np.full(shape, np.nan) for k in ("accuracy", "pruned_accuracy", "recorded_sparsity")}
    a.update({k: np.full(len(entries), np.nan) for k in ("final_accuracy", "dense_accuracy")})
    a.update(
        {
            k: np.full(len(entries), -1, dtype=np.int64)
            for k in ("retrain_steps", "T", "t", "rounds")
        }
    )
    a["collapsed_layers"] = np.full(shape, -1, dtype=np.int64)
    for i, e in enumerate(entries):
        ds = study_runs.runs.get(e.label)
        if ds is None:
            continue
        k = int(ds.sizes["event"])
        a["accuracy"][i, :k] = np.asarray(ds.event_final_test_accuracy.values, dtype=float)
        a["pruned_accuracy"][i, :k] = np.asarray(ds.event_test_accuracy.values, dtype=float)
        a["recorded_sparsity"][i, :k] = np.asarray(ds.event_sparsity.values, dtype=float)
        a["final_accuracy"][i] = float(ds.attrs.get("final_test_accuracy", np.nan))
        a["dense_accuracy"][i] = study_runs.dense.get(e.label, np.nan)
        a["retrain_steps"][i] = int((np.asarray(ds.step.values) > 0).sum())
        a["T"][i], a["t"][i], a["rounds"][i] = int(ds.attrs["T"]), int(ds.attrs["t"]), k
        a["collapsed_layers"][i, :k] = (np.asarray(ds.event_survivors.values) == 0).sum(axis=1)
    return a


def results_dataset(study_runs: StudyRuns) -> xr.Dataset:
    """Dim ``run`` (every entry, failed ones as NaN rows) x ``round``; see the module docstring."""
    entries = study_runs.entries
    a = _per_run(study_runs)
    coords: dict[str, Any] = {
        "run": [e.label for e in entries],
        "round": np.arange(a["accuracy"].shape[1]),
    }
    for name in entries[0].factors if entries else {}:
        coords[name] = ("run", [e.factors[name] for e in entries])
    coords["status"] = ("run", [e.status for e in entries])
    coords["error"] = ("run", [e.error or "" for e in entries])
    coords["path"] = ("run", [e.path or "" for e in entries])
    with np.errstate(divide="ignore", invalid="ignore"):
        compression = 1.0 / (1.0 - a["recorded_sparsity"])
    per_round = ("run", "round")
    out = xr.Dataset(
        {
            "accuracy": (per_round, a["accuracy"]),
            "pruned_accuracy": (per_round, a["pruned_accuracy"]),
            "recorded_sparsity": (per_round, a["recorded_sparsity"]),
            "compression": (per_round, compression),
            "delta": (per_round, a["accuracy"] - a["dense_accuracy"][:, None]),
            **{
                k: ("run", a[k])
                for k in ("final_accuracy", "dense_accuracy", "retrain_steps", "T", "t", "rounds")
            },
            "collapsed_layers": (per_round, a["collapsed_layers"]),
        },
        coords=coords,
    )
    first = next(iter(study_runs.runs.values()), None)
    if first is not None:
        out.attrs.update(
            model=str(first.attrs.get("model")),
            dataset=str(first.attrs.get("dataset")),
            iterations_per_epoch=int(first.attrs.get("iterations_per_epoch", 0)),
        )
    for k, text in LONG_NAMES.items():
        out[k].attrs["long_name"] = text
    return out


def points(ds: xr.Dataset, factors: list[str]) -> pd.DataFrame:
    """One row per (complete run, recorded round): the factors, seed, round, recorded sparsity,
    compression, accuracies."""
    rows = []
    for i in range(ds.sizes["run"]):
        r = ds.isel(run=i)
        if str(r.status.values) != "complete":
            continue
        for k in range(int(r.rounds)):
            rows.append(
                {
                    **{f: r[f].values.item() for f in factors},
                    "seed": int(r.seed),
                    "round": k,
                    "recorded_sparsity": float(r.recorded_sparsity.values[k]),
                    "compression": float(r.compression.values[k]),
                    "accuracy": float(r.accuracy.values[k]),
                    "delta": float(r.delta.values[k]),
                    "pruned_accuracy": float(r.pruned_accuracy.values[k]),
                    "run": str(r.run.values),
                    "collapsed_layers": int(r.collapsed_layers.values[k]),
                }
            )
    return pd.DataFrame(rows)


def ci_of(values: np.ndarray) -> tuple[float, float, float]:
    """(mean, low, high): the mean of ``values`` and its 95% bootstrap CI."""
    mean, low, high = mean_ci(np.asarray(values, dtype=float)[:, None], axis=0)
    return float(mean[0]), float(low[0]), float(high[0])


def seed_reduce(
    table: pd.DataFrame,
    by: list[str],
    values: tuple[str, ...] = ("accuracy", "delta"),
    key: str | None = "compression",
) -> xr.Dataset:
    """Over seeds, per group of ``by`` (and ``key`` rounded to ROUND_DECIMALS): n, median, mean, 95%
    CI, min, max.

    Returns a Dataset over dim ``group`` with the group's factors (and the mean ``key``) as
    coordinates and
    ``{value}_{median,mean,low,high,min,max}`` variables.
    """
    if table.empty:
        return xr.Dataset(coords={"group": np.arange(0)})
    t = table.copy()
    keys = list(by)
    if key is not None:
        t["_key"] = t[key].round(ROUND_DECIMALS)
        keys.append("_key")
    rows = []
    for group, g in t.groupby(keys, sort=True, dropna=False):
        group = group if isinstance(group, tuple) else (group,)
        row: dict[str, Any] = dict(zip(keys, group, strict=True))
        row.pop("_key", None)
        if key is not None:
            row[key] = float(g[key].mean())
        row["n"] = len(g)
        for v in values:
            x = g[v].to_numpy(dtype=float)
            mean, low, high = ci_of(x)
            finite = x[np.isfinite(x)]
            row.update(
                {
                    f"{v}_median": float(np.median(finite)) if finite.size else np.nan,
                    f"{v}_mean": mean,
                    f"{v}_low": low,
                    f"{v}_high": high,
                    f"{v}_min": float(finite.min()) if finite.size else np.nan,
                    f"{v}_max": float(finite.max()) if finite.size else np.nan,
                }
            )
        rows.append(row)
    df = pd.DataFrame(rows)
    coord_names = list(by) + ([key] if key is not None else []) + ["n"]
    return xr.Dataset(
        {c: ("group", df[c].to_numpy()) for c in df.columns if c not in coord_names},
        coords={
            "group": np.arange(len(df)),
            **{c: ("group", df[c].to_numpy()) for c in coord_names},
        },
    )


def rows(ds: xr.Dataset, dim: str = "group") -> list[dict[str, Any]]:
    """A Dataset over one dim as a list of plain dicts (coordinates and variables)."""
    out = []
    for i in range(ds.sizes.get(dim, 0)):
        r = ds.isel({dim: i})
        row = {k: r[k].values.item() for k in list(r.coords) if k != dim and r[k].ndim == 0}
        row.update({k: r[k].values.item() for k in r.data_vars if r[k].ndim == 0})
        out.append(row)
    return out


def frame(records: list[dict[str, Any]]) -> xr.Dataset | None:
    """Rows of plain dicts as a Dataset over dim ``group`` (None without rows)."""
    if not records:
        return None
    df = pd.DataFrame(records)
    return xr.Dataset(
        {c: ("group", df[c].to_numpy()) for c in df.columns}, coords={"group": np.arange(len(df))}
    )


def mean_ci_row(prefix: str, values: list[float]) -> dict[str, float]:
    """``{prefix, prefix_low, prefix_high}``: the mean of ``values`` and its 95% bootstrap CI (NaN
    without values)."""
    mean, low, high = ci_of(np.asarray(values, dtype=float)) if values else (np.nan,) * 3
    return {f"{prefix}": mean, f"{prefix}_low": low, f"{prefix}_high": high}


def dense_summary(ds: xr.Dataset) -> dict[str, Any]:
    """The dense accuracies of the complete runs: their distinct values per seed and the median."""
    done = ds.status == "complete"
    per_seed = {}
    if "seed" in ds.coords:
        for seed, dense in zip(
            ds.seed.values[done.values], ds.dense_accuracy.values[done.values], strict=True
        ):
            if np.isfinite(dense):
                per_seed.setdefault(int(seed), set()).add(round(float(dense), 6))
    values = [v for s in per_seed.values() for v in s]
    return {
        "per_seed": {k: sorted(v) for k, v in per_seed.items()},
        "median": float(np.median(values)) if values else float("nan"),
    }


def run_setting(results: StudyResults) -> dict[str, Any]:
    """What the complete runs ran on, for the claims' settings: T (its distinct values), the number
    of seeds, the model and the data."""
    ds = results.runs
    done = ds.status.values == "complete"
    t_values = sorted({int(v) for v in ds["T"].values[done]})
    return {
        "T": ", ".join(map(str, t_values)) or "?",
        "seeds": len(set(ds.seed.values[done].tolist())),
        "model": ds.attrs.get("model", "?"),
        "data": ds.attrs.get("dataset", "?"),
    }
