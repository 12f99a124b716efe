"""Across seeds: group runs into conditions, match each run with its control, and bootstrap CIs.

A *condition* is a set of runs that differ only in their seed: the runs whose identities
(:func:`shedding.analysis.run_identity.run_identity`) share the condition name and line (its
sparsity and alpha) and, for built-in runs, the whole configuration but for seed, device and
recording options. Its runs are the seeds, so two pruned runs of one condition with the same seed
are an error. A run's *control* is matched by :func:`shedding.analysis.controls.match_controls`
(same seed and setting, and the same line). Means come with percentile bootstrap confidence
intervals from ``scipy.stats.bootstrap`` (fixed random state, so reports are reproducible).
"""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr
from scipy.stats import bootstrap

from shedding.analysis.controls import match_controls
from shedding.analysis.run_identity import RunIdentity, run_identity, where

CONFIDENCE = 0.95
N_RESAMPLES = 2000


def condition_key(ds: xr.Dataset) -> str:
    """What the runs of the run's condition share, as a canonical JSON string
    (:attr:`RunIdentity.group_key`)."""
    return run_identity(ds).group_key


def condition_label(ds: xr.Dataset) -> str:
    """The run's condition name (its ``condition`` attribute; for older built-in stores: method,
    sparsity, schedule, retraining technique, or for a control its line's sparsity)."""
    return run_identity(ds).condition


def group_runs(runs: dict[str, xr.Dataset]) -> tuple[dict[str, list[str]], dict[str, str | None]]:
    """(conditions: label -> run names, control_of: run name -> its matched control's name or None).

    Controls are matched by :func:`shedding.analysis.controls.match_controls` (ValueError when two
    match one run).
    """
    return group_conditions(runs), match_controls(runs)


def group_conditions(runs: dict[str, xr.Dataset]) -> dict[str, list[str]]:
    """Condition label -> run names; two conditions whose labels coincide get distinct ones (``[n]``
    suffix).

    Raises ValueError (one line, naming both stores) when two pruned runs of one condition have the
    same seed: the condition's statistics would count that seed twice.
    """
    conditions: dict[str, list[str]] = {}
    labels: dict[str, str] = {}  # condition key -> its label
    seen: dict[tuple[str, int], str] = {}  # (condition key, seed) -> a pruned run's name
    for name, ds in runs.items():
        ident = run_identity(ds)
        key = ident.group_key
        if key not in labels:
            label = ident.condition
            labels[key] = label if label not in labels.values() else f"{label} [{len(labels)}]"
        _check_new_seed(runs, seen, name, ident, labels[key])
        conditions.setdefault(labels[key], []).append(name)
    return conditions


def _check_new_seed(
    runs: dict[str, xr.Dataset],
    seen: dict[tuple[str, int], str],
    name: str,
    ident: RunIdentity,
    label: str,
) -> None:
    """Note the pruned run ``name`` as its condition's seed; ValueError when another already is."""
    if ident.control:
        return
    other = seen.setdefault((ident.group_key, ident.seed), name)
    if other != name:
        raise ValueError(
            f"{where(runs[other], other)} and {where(runs[name], name)} are both seed {ident.seed} "
            f"of condition '{label}'; a condition's runs must differ in their seed, "
            "analyze one of them"
        )


def mean_ci(
    values: np.ndarray,
    axis: int = 0,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, low, high) along ``axis``; the CI is NaN with fewer than two finite values."""
    x = np.moveaxis(np.asarray(values, dtype=float), axis, 0)
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", RuntimeWarning
        )  # all-NaN columns (no control): the mean is NaN
        mean = np.nanmean(x, axis=0) if x.shape[0] else np.full(x.shape[1:], np.nan)
    low = np.full(mean.shape, np.nan)
    high = np.full(mean.shape, np.nan)
    finite = np.all(np.isfinite(x), axis=0)
    if x.shape[0] >= 2 and finite.any():
        cols = x[:, finite]
        same = np.all(cols == cols[:1], axis=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # degenerate (identical) columns are handled below
            res = bootstrap(
                (cols,),
                np.mean,
                axis=0,
                confidence_level=confidence,
                n_resamples=n_resamples,
                method="percentile",
                random_state=0,
                vectorized=True,
            )
        lo, hi = np.asarray(res.confidence_interval.low), np.asarray(res.confidence_interval.high)
        lo = np.where(same, cols[0], lo)  # identical values: the interval is that value
        hi = np.where(same, cols[0], hi)
        low[finite], high[finite] = lo, hi
    return mean, low, high


def seed_statistics(per_seed: xr.Dataset, dim: str = "seed") -> xr.Dataset:
    """Mean, CI low and CI high over ``dim`` of every numeric variable (``X_mean``, ``X_low``,
    ``X_high``)."""
    out = {}
    for name, da in per_seed.data_vars.items():
        if not np.issubdtype(da.dtype, np.number):
            continue
        da = da.transpose(dim, ...)
        mean, low, high = mean_ci(da.values, axis=0)
        dims = [d for d in da.dims if d != dim]
        coords = {d: da[d] for d in dims if d in da.coords}
        for suffix, v in (("mean", mean), ("low", low), ("high", high)):
            out[f"{name}_{suffix}"] = xr.DataArray(v, dims=dims, coords=coords)
    res = xr.Dataset(out)
    res.attrs.update(
        n_seeds=int(per_seed.sizes[dim]), confidence=CONFIDENCE, method="percentile bootstrap"
    )
    return res


def curve_band(curves: list[xr.DataArray], dim: str = "step") -> xr.Dataset:
    """Mean and bootstrap CI band of several curves over their common ``dim`` coordinates."""
    common = curves[0][dim].values
    for c in curves[1:]:
        common = np.intersect1d(common, c[dim].values)
    stack = np.stack([np.asarray(c.sel({dim: common}).values, dtype=float) for c in curves])
    mean, low, high = mean_ci(stack, axis=0)
    return xr.Dataset(
        {"mean": (dim, mean), "low": (dim, low), "high": (dim, high)},
        coords={dim: common},
        attrs={"n": len(curves)},
    )
