"""Across seeds: group runs into conditions, match each run with its control, and bootstrap CIs.

A *condition* is everything in a run's configuration except its seed (and recording details other
than the line's alpha); its runs are the seeds. A run's *control* is matched by
:func:`shedding.analysis.controls.match_controls` (same setting and seed, and the same line). Means
come with percentile bootstrap confidence intervals from
``scipy.stats.bootstrap`` (fixed random state, so reports are reproducible).
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import xarray as xr
from scipy.stats import bootstrap

from shedding.analysis.controls import line_alpha, match_controls

CONFIDENCE = 0.95
N_RESAMPLES = 2000


def _config(ds: xr.Dataset) -> dict:
    return dict(ds.attrs.get("config") or {})


def condition_key(ds: xr.Dataset) -> str:
    """The configuration minus seed, device and recording options (but with the line's alpha), as a
    canonical
    JSON string."""
    cfg = {k: v for k, v in _config(ds).items() if k not in ("seed", "device", "record")}
    cfg["alpha"] = line_alpha(ds)
    return json.dumps(cfg, sort_keys=True)


def condition_label(ds: xr.Dataset) -> str:
    """A short human label: method, sparsity, schedule, retraining technique (a control: its line's
    sparsity)."""
    cfg = _config(ds)
    p, r = cfg.get("prune", {}), cfg.get("retrain", {})
    alpha = "" if line_alpha(ds) == 1.0 else f", alpha {line_alpha(ds):g}"
    if p.get("method") == "none":
        return f"control {p.get('sparsity'):g} ({r.get('technique')}{alpha})"
    sched = "" if p.get("schedule") == "oneshot" else f" {p.get('schedule')}"
    block = f" {p['block_shape'][0]}x{p['block_shape'][1]}" if p.get("method") == "block" else ""
    return f"{p.get('method')}{block} {p.get('sparsity'):g}{sched}, {r.get('technique')}{alpha}"


def group_runs(runs: dict[str, xr.Dataset]) -> tuple[dict[str, list[str]], dict[str, str | None]]:
    """(conditions: label -> run names, control_of: run name -> its matched control's name or None).

    Controls are matched by :func:`shedding.analysis.controls.match_controls` (ValueError when two
    match one run).
    """
    return group_conditions(runs), match_controls(runs)


def group_conditions(runs: dict[str, xr.Dataset]) -> dict[str, list[str]]:
    """Condition label -> run names; two conditions whose labels coincide get distinct ones (``[n]``
    suffix)."""
    conditions: dict[str, list[str]] = {}
    labels: dict[str, str] = {}  # condition key -> its label
    for name, ds in runs.items():
        key = condition_key(ds)
        if key not in labels:
            label = condition_label(ds)
            labels[key] = label if label not in labels.values() else f"{label} [{len(labels)}]"
        conditions.setdefault(labels[key], []).append(name)
    return conditions


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
