"""Across seeds: group runs into conditions, match each run with its control, and bootstrap CIs.

A *condition* is everything in a run's configuration except its seed (and recording details); its runs are
the seeds. A run's *control* is the run with prune method ``none``, the same seed and the same model, data,
training and retraining. Means come with percentile bootstrap confidence intervals from
``scipy.stats.bootstrap`` (fixed random state, so reports are reproducible).
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import xarray as xr
from scipy.stats import bootstrap

CONFIDENCE = 0.95
N_RESAMPLES = 2000


def _config(ds: xr.Dataset) -> dict:
    return dict(ds.attrs.get("config") or {})


def condition_key(ds: xr.Dataset) -> str:
    """The configuration minus seed, device and recording options, as a canonical JSON string."""
    cfg = {k: v for k, v in _config(ds).items() if k not in ("seed", "device", "record")}
    return json.dumps(cfg, sort_keys=True)


def condition_label(ds: xr.Dataset) -> str:
    """A short human label: method, sparsity, schedule, retraining technique."""
    cfg = _config(ds)
    p, r = cfg.get("prune", {}), cfg.get("retrain", {})
    if p.get("method") == "none":
        return f"control ({r.get('technique')})"
    sched = "" if p.get("schedule") == "oneshot" else f" {p.get('schedule')}"
    block = f" {p['block_shape'][0]}x{p['block_shape'][1]}" if p.get("method") == "block" else ""
    return f"{p.get('method')}{block} {p.get('sparsity'):g}{sched}, {r.get('technique')}"


def _match_key(ds: xr.Dataset) -> str:
    cfg = {k: v for k, v in _config(ds).items() if k not in ("device", "record", "prune")}
    return json.dumps(cfg, sort_keys=True)


def group_runs(runs: dict[str, xr.Dataset]) -> tuple[dict[str, list[str]], dict[str, str | None]]:
    """(conditions: label -> run names, control_of: run name -> its matched control's name or None)."""
    conditions: dict[str, list[str]] = {}
    labels: dict[str, str] = {}
    for name, ds in runs.items():
        key = condition_key(ds)
        label = labels.setdefault(key, condition_label(ds))
        if label in conditions and labels.get(key) != label:
            label = f"{label} [{len(conditions)}]"
        conditions.setdefault(label, []).append(name)
    controls = {_match_key(ds): n for n, ds in runs.items() if bool(ds.attrs.get("control"))}
    control_of = {n: (None if ds.attrs.get("control") else controls.get(_match_key(ds)))
                  for n, ds in runs.items()}
    return conditions, control_of


def mean_ci(values: np.ndarray, axis: int = 0, confidence: float = CONFIDENCE, n_resamples: int = N_RESAMPLES
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, low, high) along ``axis``; the CI is NaN with fewer than two finite values."""
    x = np.moveaxis(np.asarray(values, dtype=float), axis, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (no control): the mean is NaN
        mean = np.nanmean(x, axis=0) if x.shape[0] else np.full(x.shape[1:], np.nan)
    low = np.full(mean.shape, np.nan)
    high = np.full(mean.shape, np.nan)
    finite = np.all(np.isfinite(x), axis=0)
    if x.shape[0] >= 2 and finite.any():
        cols = x[:, finite]
        same = np.all(cols == cols[:1], axis=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # degenerate (identical) columns are handled below
            res = bootstrap((cols,), np.mean, axis=0, confidence_level=confidence, n_resamples=n_resamples,
                            method="percentile", random_state=0, vectorized=True)
        lo, hi = np.asarray(res.confidence_interval.low), np.asarray(res.confidence_interval.high)
        lo = np.where(same, cols[0], lo)  # identical values: the interval is that value
        hi = np.where(same, cols[0], hi)
        low[finite], high[finite] = lo, hi
    return mean, low, high


def seed_statistics(per_seed: xr.Dataset, dim: str = "seed") -> xr.Dataset:
    """Mean, CI low and CI high over ``dim`` of every numeric variable (``X_mean``, ``X_low``, ``X_high``)."""
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
    res.attrs.update(n_seeds=int(per_seed.sizes[dim]), confidence=CONFIDENCE, method="percentile bootstrap")
    return res


def curve_band(curves: list[xr.DataArray], dim: str = "step") -> xr.Dataset:
    """Mean and bootstrap CI band of several curves over their common ``dim`` coordinates."""
    common = curves[0][dim].values
    for c in curves[1:]:
        common = np.intersect1d(common, c[dim].values)
    stack = np.stack([np.asarray(c.sel({dim: common}).values, dtype=float) for c in curves])
    mean, low, high = mean_ci(stack, axis=0)
    return xr.Dataset({"mean": (dim, mean), "low": (dim, low), "high": (dim, high)}, coords={dim: common},
                      attrs={"n": len(curves)})
