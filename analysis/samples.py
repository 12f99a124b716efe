"""The sampled profile: full trajectories of a fixed, seeded subset of each layer's weights."""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy.stats import norm


def _need_samples(ds: xr.Dataset) -> None:
    if "sample_magnitude" not in ds:
        raise ValueError(
            "this run has no sampled trajectories (record them with --record-sample-every N)"
        )


def sample_trajectories(ds: xr.Dataset, layer: str | int | None = None) -> xr.DataArray:
    """|w| of the sampled weights over the sample steps, (sample_step, sample), optionally of one
    layer."""
    _need_samples(ds)
    traj = ds.sample_magnitude
    if layer is None:
        return traj
    index = list(ds.layer.values).index(layer) if isinstance(layer, str) else int(layer)
    return traj.isel(sample=np.flatnonzero(np.asarray(ds.sample_layer.values) == index))


def sampled_shed_fraction(ds: xr.Dataset, event: int = 0, confidence: float = 0.95) -> xr.Dataset:
    """S(t) estimated from the sampled weights at the sample steps of an event's round, with a
    Wilson CI.

    Eligible sampled weights: kept by the event's mask and at or above its recorded line at the
    event step; shed while below it (compared in float32, as the recorder does). ``estimate`` = shed
    / eligible in the sample; ``low``/``high`` the Wilson score interval for a binomial proportion.
    """
    _need_samples(ds)
    ev_step = int(ds.event_step.isel(event=event))
    line = np.float32(ds.event_line.isel(event=event))
    which = np.asarray(ds.sample_weight.values)
    mask = np.asarray(ds["mask"].isel(event=event).values)[which].astype(bool)
    start = np.asarray(ds.sample_magnitude.sel(sample_step=ev_step).values)
    eligible = mask & (start >= line)
    rounds = np.asarray(ds.sample_round.values)
    rows = np.flatnonzero((rounds == event) & (np.asarray(ds.sample_step.values) != ev_step))
    mags = np.asarray(ds.sample_magnitude.isel(sample_step=rows).values)
    shed = ((mags < line) & eligible).sum(axis=1)
    n = int(eligible.sum())
    p = shed / n if n else np.full(len(rows), np.nan)
    z = float(norm.ppf(0.5 + confidence / 2))
    denom = 1 + z**2 / max(n, 1)
    center = (p + z**2 / (2 * max(n, 1))) / denom
    half = z * np.sqrt(p * (1 - p) / max(n, 1) + z**2 / (4 * max(n, 1) ** 2)) / denom
    steps = np.asarray(ds.sample_step.values)[rows]
    return xr.Dataset(
        {
            "estimate": ("step", p),
            "low": ("step", center - half),
            "high": ("step", center + half),
            "shed": ("step", shed),
        },
        coords={"step": steps},
        attrs={"eligible": n, "confidence": confidence, "event": event},
    )
