"""Study results: one labelled Dataset over a study's runs, and the reductions each study reports.

:func:`collect` is the only I/O: it opens the complete stores of a study and reads each run's dense
accuracy (the original training's test accuracy, which the pretrain cache's ``meta.json`` holds).
Everything else is a pure function of xarray objects:

* :func:`results_dataset`: dim ``run`` with the grid's factors as coordinates (``sparsity`` is the
  grid's target),
  ``accuracy``, ``recorded_sparsity``, ``compression`` = 1/(1 - recorded sparsity) and ``delta``
  (accuracy - dense) per round (from the store's event table),
  ``final_accuracy`` (the store's ``final_test_accuracy``), ``retrain_steps`` (the store's
  retraining rows,
  ``step > 0``), ``T`` and ``t``;
* :func:`points` and :func:`seed_reduce`: median, mean and 95% bootstrap CI over seeds at each
  point;
* :func:`max_compression_at_parity`: Renda et al.'s table metric, the largest compression whose
  median accuracy change against the dense network is at least 0;
* :func:`cascade_results`: per run, the cascade detection against its matched control; per
  condition, means over seeds with CIs and a verdict, S(t) bands, the kept-set convergence of random
  pruning towards GMP's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from shedding.analysis.seeds import curve_band, mean_ci

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


def results_dataset(study_runs: StudyRuns) -> xr.Dataset:
    """Dim ``run`` (every entry, failed ones as NaN rows) x ``round``; see the module docstring."""
    entries = study_runs.entries
    n_rounds = max([int(ds.sizes["event"]) for ds in study_runs.runs.values()] or [1])
    shape = (len(entries), n_rounds)
    acc, pruned_acc, sparsity = (
        np.full(shape, np.nan) for _ in range(3)
    )  # sparsity: as recorded per event
    final, dense = np.full(len(entries), np.nan), np.full(len(entries), np.nan)
    steps, T, t, rounds = (np.full(len(entries), -1, dtype=np.int64) for _ in range(4))
    collapsed = np.full(shape, -1, dtype=np.int64)
    for i, e in enumerate(entries):
        ds = study_runs.runs.get(e.label)
        if ds is None:
            continue
        k = int(ds.sizes["event"])
        acc[i, :k] = np.asarray(ds.event_final_test_accuracy.values, dtype=float)
        pruned_acc[i, :k] = np.asarray(ds.event_test_accuracy.values, dtype=float)
        sparsity[i, :k] = np.asarray(ds.event_sparsity.values, dtype=float)
        final[i] = float(ds.attrs.get("final_test_accuracy", np.nan))
        dense[i] = study_runs.dense.get(e.label, np.nan)
        steps[i] = int((np.asarray(ds.step.values) > 0).sum())
        T[i], t[i], rounds[i] = int(ds.attrs["T"]), int(ds.attrs["t"]), k
        collapsed[i, :k] = (np.asarray(ds.event_survivors.values) == 0).sum(axis=1)
    coords: dict[str, Any] = {"run": [e.label for e in entries], "round": np.arange(n_rounds)}
    for name in entries[0].factors if entries else {}:
        coords[name] = ("run", [e.factors[name] for e in entries])
    coords["status"] = ("run", [e.status for e in entries])
    coords["error"] = ("run", [e.error or "" for e in entries])
    coords["path"] = ("run", [e.path or "" for e in entries])
    with np.errstate(divide="ignore", invalid="ignore"):
        compression = 1.0 / (1.0 - sparsity)
    out = xr.Dataset(
        {
            "accuracy": (("run", "round"), acc),
            "pruned_accuracy": (("run", "round"), pruned_acc),
            "recorded_sparsity": (("run", "round"), sparsity),
            "compression": (("run", "round"), compression),
            "delta": (("run", "round"), acc - dense[:, None]),
            "final_accuracy": ("run", final),
            "dense_accuracy": ("run", dense),
            "retrain_steps": ("run", steps),
            "T": ("run", T),
            "t": ("run", t),
            "rounds": ("run", rounds),
            "collapsed_layers": (("run", "round"), collapsed),
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
    out["accuracy"].attrs["long_name"] = (
        "test accuracy at the end of the round (event_final_test_accuracy)"
    )
    out["pruned_accuracy"].attrs["long_name"] = "test accuracy right after the round's prune event"
    out["delta"].attrs["long_name"] = (
        "accuracy - dense accuracy (the original training's test accuracy)"
    )
    out["compression"].attrs["long_name"] = "1 / (1 - recorded event sparsity)"
    out["retrain_steps"].attrs["long_name"] = "retraining steps recorded in the store (step > 0)"
    out["collapsed_layers"].attrs["long_name"] = (
        "prunable layers with no surviving weight after the event"
    )
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


def _ci(values: np.ndarray) -> tuple[float, float, float]:
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
            mean, low, high = _ci(x)
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
    rows = []
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
        rows.append(row)
    out = pd.DataFrame(rows)
    return xr.Dataset(
        {k: ("group", out[k].to_numpy()) for k in out.columns if k not in by},
        coords={"group": np.arange(len(out)), **{k: ("group", out[k].to_numpy()) for k in by}},
    )


def _rows(ds: xr.Dataset, dim: str = "group") -> list[dict[str, Any]]:
    """A Dataset over one dim as a list of plain dicts (coordinates and variables)."""
    out = []
    for i in range(ds.sizes.get(dim, 0)):
        r = ds.isel({dim: i})
        row = {k: r[k].values.item() for k in list(r.coords) if k != dim and r[k].ndim == 0}
        row.update({k: r[k].values.item() for k in r.data_vars if r[k].ndim == 0})
        out.append(row)
    return out


# ------------------------------------------------------------------------- rewinding (Renda et al.)

REWINDING_BY = ["technique", "schedule", "budget"]


def rewinding_results(study_runs: StudyRuns) -> StudyResults:
    """Per run, per point and per (technique, schedule, budget): the curves and the parity
    metric."""
    ds = results_dataset(study_runs)
    table = points(ds, REWINDING_BY)
    reduced = seed_reduce(table, REWINDING_BY)
    parity = max_compression_at_parity(reduced, REWINDING_BY) if reduced.sizes["group"] else reduced
    return StudyResults(
        "rewinding", ds, {"points": reduced, "parity": parity}, {"dense": _dense_summary(ds)}
    )


def parity_table(results: StudyResults) -> list[dict[str, Any]]:
    """One row per technique, schedule and budget: the largest compression with median delta >=
    0."""
    rows = _rows(results.tables["parity"]) if "parity" in results.tables else []
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
        for r in rows
    ]


def _dense_summary(ds: xr.Dataset) -> dict[str, Any]:
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


# --------------------------------------------------------------------------- blocks (Siswanto)

BLOCKS_BY = ["technique", "sparsity", "block", "block_size"]


def blocks_results(study_runs: StudyRuns) -> StudyResults:
    """Accuracy over seeds per (technique, target sparsity, block shape), with the recorded
    sparsity."""
    ds = results_dataset(study_runs)
    table = points(ds, BLOCKS_BY)
    reduced = seed_reduce(
        table,
        BLOCKS_BY,
        values=("accuracy", "delta", "pruned_accuracy", "recorded_sparsity", "collapsed_layers"),
        key=None,
    )
    return StudyResults("blocks", ds, {"blocks": reduced}, {"dense": _dense_summary(ds)})


def blocks_table(results: StudyResults) -> list[dict[str, Any]]:
    """One row per technique, sparsity and block shape: accuracy mean [CI] over seeds."""
    return [
        {
            "technique": r["technique"],
            "sparsity": r["sparsity"],
            "block": r["block"],
            "seeds": r["n"],
            "accuracy": r["accuracy_mean"],
            "CI low": r["accuracy_low"],
            "CI high": r["accuracy_high"],
            "delta vs dense": r["delta_mean"],
            "collapsed layers": r["collapsed_layers_max"],
        }
        for r in _rows(results.tables["blocks"])
    ]


# ---------------------------------------------------------------------- cascade (Azarian & Porikli)

CASCADE_VARS = (
    "excess_peak",
    "peak_shed_fraction",
    "amplification",
    "final_excess",
    "final_shed_fraction",
    "time_to_peak",
    "onset_step",
    "control_peak_shed_fraction",
)


def _relative_curve(ds: xr.Dataset) -> xr.DataArray:
    """Event 0's global S(t) on the recorded line, indexed by steps since the event (``since``)."""
    from shedding.analysis.shed import shed_curves

    c = shed_curves(ds, 0).shed_fraction_global.compute()
    return xr.DataArray(
        np.asarray(c.values, dtype=float),
        dims="since",
        coords={"since": np.asarray(c.step.values) - int(ds.event_step.values[0])},
    )


def _stack(curves: dict[str, xr.DataArray], labels: list[str], dim: str) -> xr.DataArray:
    """Curves keyed by run label, stacked over ``run`` (NaN where a run has none or lacks a
    step)."""
    index = (
        np.unique(np.concatenate([c[dim].values for c in curves.values()]))
        if curves
        else np.arange(0)
    )
    out = np.full((len(labels), index.size), np.nan)
    for i, lbl in enumerate(labels):
        if lbl in curves:
            c = curves[lbl]
            out[i, np.searchsorted(index, c[dim].values)] = c.values
    return xr.DataArray(out, dims=("run", dim), coords={dim: index})


def _mean_ci_row(prefix: str, values: list[float]) -> dict[str, float]:
    mean, low, high = _ci(np.asarray(values, dtype=float)) if values else (np.nan, np.nan, np.nan)
    return {f"{prefix}": mean, f"{prefix}_low": low, f"{prefix}_high": high}


def cascade_results(
    study_runs: StudyRuns,
    window: str | int | None = "5ep",
    min_excess: float = 0.05,
    onset_excess: float = 0.01,
) -> StudyResults:
    """Shedding statistics of the cascade study; see the module docstring.

    Per main-part run: the :func:`shedding.analysis.cascade.cascade_summary` variables against its
    control (matched by
    :func:`shedding.analysis.controls.match_controls`: the same condition, seed and line sparsity;
    NaN without one),
    S(t) and the excess over the control by steps since the event (``shed_fraction``, ``excess``
    over
    ``since``), and for random runs the kept-set convergence towards the GMP run of the same
    condition, sparsity and seed (``convergence`` over ``conv_step``). Tables: ``conditions``
    (means over seeds with CIs, verdict), ``controls``, ``random_vs_gmp`` (accuracy),
    ``convergence`` and, when the cascade-aware part ran, ``aware``. Extras: ``bands`` (S and excess
    CI bands per condition, sparsity and method).
    """
    from shedding.analysis.cascade import cascade_summary
    from shedding.analysis.controls import match_controls
    from shedding.analysis.overlap import convergence

    ds = results_dataset(study_runs)
    runs, entries = study_runs.runs, study_runs.entries
    labels = [e.label for e in entries]
    fac = {e.label: e.factors for e in entries}
    main = [e.label for e in entries if e.factors["part"] == "main" and e.label in runs]

    def key(lbl: str, method: str | None = None) -> tuple:
        f = fac[lbl]
        return (f["condition"], f["sparsity"], f["seed"], method or f["method"])

    by_key = {key(lbl): lbl for lbl in main}
    matched = match_controls(
        {lbl: runs[lbl] for lbl in main}
    )  # the one rule: same setting, seed and line
    control_of = {lbl: matched[lbl] for lbl in main if fac[lbl]["method"] != "none"}
    scalars = {v: np.full(len(labels), np.nan) for v in CASCADE_VARS}
    verdict = np.full(len(labels), "", dtype=object)
    curves, excess, conv_curves = {}, {}, {}
    conv = {
        v: np.full(len(labels), np.nan)
        for v in (
            "conv_toward_start",
            "conv_toward_end",
            "conv_jaccard_start",
            "conv_jaccard_end",
            "conv_chance_start",
            "conv_chance_end",
            "conv_effective_toward_start",
            "conv_effective_toward_end",
        )
    }
    for lbl in main:
        curves[lbl] = _relative_curve(runs[lbl])
    for lbl, ctrl in control_of.items():
        i = labels.index(lbl)
        s = cascade_summary(
            runs[lbl],
            runs[ctrl] if ctrl else None,
            window=window,
            min_excess=min_excess,
            onset_excess=onset_excess,
        )
        for v in CASCADE_VARS:
            scalars[v][i] = float(s[v])
        verdict[i] = s.attrs["verdict"]
        if ctrl is not None:
            common = np.intersect1d(curves[lbl].since.values, curves[ctrl].since.values)
            excess[lbl] = curves[lbl].sel(since=common) - curves[ctrl].sel(since=common)
        if fac[lbl]["method"] in ("random", "random_layerwise"):
            ref = by_key.get(key(lbl, "gmp"))
            if ref is not None and "magnitude" in runs[lbl] and "magnitude" in runs[ref]:
                c = convergence(runs[lbl], runs[ref])
                rel = c.record_step.values - int(c.attrs["event_step"])
                conv_curves[lbl] = xr.DataArray(
                    c.toward_above_line.values, dims="conv_step", coords={"conv_step": rel}
                )
                for name, var in (
                    ("toward", "toward_above_line"),
                    ("jaccard", "jaccard_above_line"),
                    ("chance", "chance_above_line"),
                    ("effective_toward", "toward_effective"),
                ):
                    conv[f"conv_{name}_start"][i] = float(c[var].values[0])
                    conv[f"conv_{name}_end"][i] = float(c[var].values[-1])
    for lbl in main:
        if fac[lbl]["method"] == "none":
            verdict[labels.index(lbl)] = "control"
    ds = ds.assign({v: ("run", a) for v, a in {**scalars, **conv}.items()})
    ds["verdict"] = ("run", verdict.astype(str))
    ds["shed_fraction"] = _stack(curves, labels, "since")
    ds["excess"] = _stack(excess, labels, "since")
    ds["convergence"] = _stack(conv_curves, labels, "conv_step")
    ds["shed_fraction"].attrs["long_name"] = (
        "S(t): shed / eligible survivors, recorded line, steps since the event"
    )
    ds["excess"].attrs["long_name"] = "S_run - S_control (matched control), steps since the event"
    ds["convergence"].attrs["long_name"] = (
        "Jaccard minus chance of the random run's kept-and-above-the-line set "
        "with the GMP run's kept set"
    )
    tables, bands = _cascade_tables(ds, entries, runs, control_of, curves, excess, min_excess)
    tables.update(_aware_table(ds))
    rule = (
        f"a condition shows a cascade when the mean over seeds of the peak excess S_run - S_control within "
        f"{window} of pruning reaches {min_excess:g} and its 95% bootstrap CI lies above 0"
    )
    return StudyResults(
        "cascade",
        ds,
        {k: v for k, v in tables.items() if v is not None},
        {
            "bands": bands,
            "rule": rule,
            "window": window,
            "min_excess": min_excess,
            "dense": _dense_summary(ds),
        },
    )


def _verdict(values: list[float], n_controls: int, min_excess: float) -> str:
    if not values or n_controls < len(values):
        return "no control"
    mean, low, _ = _ci(np.asarray(values))
    if len(values) < 2:
        return ("cascade" if mean >= min_excess else "no cascade") + " (1 seed, no CI)"
    return "cascade" if mean >= min_excess and low > 0 else "no cascade"


def _cascade_tables(
    ds: xr.Dataset,
    entries: list[Entry],
    runs: dict[str, xr.Dataset],
    control_of: dict[str, str | None],
    curves: dict[str, xr.DataArray],
    excess: dict[str, xr.DataArray],
    min_excess: float,
) -> tuple[dict[str, xr.Dataset | None], dict[tuple, dict[str, xr.Dataset]]]:
    groups: dict[tuple, list[str]] = {}
    for e in entries:
        if e.factors["part"] == "main" and e.label in runs:
            groups.setdefault(
                (e.factors["condition"], e.factors["sparsity"], e.factors["method"]), []
            ).append(e.label)
    cond_rows, ctrl_rows, rvg_rows, conv_rows = [], [], [], []
    bands: dict[tuple, dict[str, xr.Dataset]] = {}
    sel = {str(r): i for i, r in enumerate(ds.run.values)}

    def vals(names: list[str], var: str) -> list[float]:
        return [float(ds[var].values[sel[n]]) for n in names]

    for (cond, sp, method), names in groups.items():
        b = {"S": curve_band([curves[n] for n in names], dim="since")}
        if method == "none":
            ctrl_rows.append(
                {
                    "condition": cond,
                    "sparsity": sp,
                    "seeds": len(names),
                    **_mean_ci_row(
                        "final_shed_fraction", [float(curves[n].values[-1]) for n in names]
                    ),
                    **_mean_ci_row("final_accuracy", vals(names, "final_accuracy")),
                }
            )
            bands[(cond, sp, method)] = b
            continue
        with_ctrl = [n for n in names if control_of.get(n)]
        if with_ctrl:
            b["excess"] = curve_band([excess[n] for n in with_ctrl], dim="since")
        bands[(cond, sp, method)] = b
        row = {
            "condition": cond,
            "sparsity": sp,
            "method": method,
            "seeds": len(names),
            "controls": len(with_ctrl),
        }
        for v in (
            "excess_peak",
            "amplification",
            "final_excess",
            "peak_shed_fraction",
            "control_peak_shed_fraction",
            "final_accuracy",
        ):
            row.update(_mean_ci_row(v, vals(names, v)))
        row["pruned_accuracy"] = float(
            np.nanmean([float(ds.pruned_accuracy.values[sel[n], 0]) for n in names])
        )
        row["verdict"] = _verdict(vals(names, "excess_peak"), len(with_ctrl), min_excess)
        cond_rows.append(row)
        if method in ("random", "random_layerwise"):
            pairs = [
                (n, m)
                for n in names
                for m in groups.get((cond, sp, "gmp"), [])
                if ds.seed.values[sel[n]] == ds.seed.values[sel[m]]
            ]
            if pairs:
                diff = [
                    float(ds.final_accuracy.values[sel[n]] - ds.final_accuracy.values[sel[m]])
                    for n, m in pairs
                ]
                pdiff = [
                    float(
                        ds.pruned_accuracy.values[sel[n], 0] - ds.pruned_accuracy.values[sel[m], 0]
                    )
                    for n, m in pairs
                ]
                rvg_rows.append(
                    {
                        "condition": cond,
                        "sparsity": sp,
                        "pairs": len(pairs),
                        "random_cascade": row["verdict"],
                        **_mean_ci_row(
                            "random_accuracy",
                            [float(ds.final_accuracy.values[sel[n]]) for n, _ in pairs],
                        ),
                        **_mean_ci_row(
                            "gmp_accuracy",
                            [float(ds.final_accuracy.values[sel[m]]) for _, m in pairs],
                        ),
                        **_mean_ci_row("random_minus_gmp", diff),
                        **_mean_ci_row("random_minus_gmp_after_pruning", pdiff),
                    }
                )
            conv_names = [n for n in names if np.isfinite(ds.conv_toward_start.values[sel[n]])]
            if conv_names:
                start, end = (
                    vals(conv_names, "conv_toward_start"),
                    vals(conv_names, "conv_toward_end"),
                )
                change = [b_ - a_ for a_, b_ in zip(start, end, strict=True)]
                c_row = {
                    "condition": cond,
                    "sparsity": sp,
                    "seeds": len(conv_names),
                    "jaccard_start": float(np.mean(vals(conv_names, "conv_jaccard_start"))),
                    "chance_start": float(np.mean(vals(conv_names, "conv_chance_start"))),
                    "jaccard_end": float(np.mean(vals(conv_names, "conv_jaccard_end"))),
                    "chance_end": float(np.mean(vals(conv_names, "conv_chance_end"))),
                    **_mean_ci_row("toward_change", change),
                    **_mean_ci_row(
                        "effective_toward_end", vals(conv_names, "conv_effective_toward_end")
                    ),
                }
                lo, hi = c_row["toward_change_low"], c_row["toward_change_high"]
                c_row["converges"] = (
                    "towards GMP's set"
                    if c_row["toward_change"] > 0 and lo > 0
                    else "away from GMP's set"
                    if c_row["toward_change"] < 0 and hi < 0
                    else "no clear change"
                )
                conv_rows.append(c_row)
    return (
        {
            "conditions": _frame(cond_rows),
            "controls": _frame(ctrl_rows),
            "random_vs_gmp": _frame(rvg_rows),
            "convergence": _frame(conv_rows),
        },
        bands,
    )


def _frame(rows: list[dict[str, Any]]) -> xr.Dataset | None:
    if not rows:
        return None
    df = pd.DataFrame(rows)
    return xr.Dataset(
        {c: ("group", df[c].to_numpy()) for c in df.columns}, coords={"group": np.arange(len(df))}
    )


def _aware_table(ds: xr.Dataset) -> dict[str, xr.Dataset | None]:
    """Cascade-aware pruning against one-shot and iterative GMP: accuracy and training steps per
    schedule."""
    if "part" not in ds.coords:
        return {}
    done = (ds.part == "aware") & (ds.status == "complete")
    if not bool(done.any()):
        return {}
    sub = ds.sel(run=done.values)
    rows = []
    for schedule in dict.fromkeys(str(s) for s in sub.schedule.values):
        s = sub.sel(run=(sub.schedule == schedule).values)
        last = [
            float(s.recorded_sparsity.values[i, int(s.rounds.values[i]) - 1])
            for i in range(s.sizes["run"])
        ]
        rows.append(
            {
                "schedule": schedule,
                "seeds": int(s.sizes["run"]),
                **_mean_ci_row("final_accuracy", list(map(float, s.final_accuracy.values))),
                "final_sparsity": float(np.mean(last)),
                "events": float(s.rounds.mean()),
                "retrain_steps": float(s.retrain_steps.mean()),
                "total_steps": float((s.retrain_steps + s["T"]).mean()),
            }
        )
    return {"aware": _frame(rows)}


def cascade_table(results: StudyResults) -> list[dict[str, Any]]:
    """One row per condition, sparsity and pruned method: excess [CI], amplification, accuracy,
    verdict."""
    t = results.tables.get("conditions")
    return [
        {
            "condition": r["condition"],
            "sparsity": r["sparsity"],
            "method": r["method"],
            "seeds": r["seeds"],
            "peak excess": r["excess_peak"],
            "CI low": r["excess_peak_low"],
            "CI high": r["excess_peak_high"],
            "amplification": r["amplification"],
            "accuracy": r["final_accuracy"],
            "verdict": r["verdict"],
        }
        for r in (_rows(t) if t is not None else [])
    ]
