"""Comparing kept-weight sets of two runs (SCIENCE.md section 5), globally and per layer.

Jaccard J = |A ∩ B| / |A ∪ B| beside its chance level for independent random sets of the same
densities, d_A d_B / (d_A + d_B - d_A d_B), and the hypergeometric tail P(|A ∩ B| >= observed).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy.stats import hypergeom, spearmanr


def kept_set(ds: xr.Dataset, event: int = -1, effective: bool = False, step: int | None = None
             ) -> xr.DataArray:
    """Boolean (weight) kept set after ``event`` (default the last); ``effective`` drops shed weights.

    The effective set is kept and not shed at ``step`` (default: the last snapshot): a kept weight that
    was at or above the event's line at the event and is below it at ``step`` is shed (needs magnitudes).
    """
    n_ev = ds.sizes["event"]
    event = event % n_ev
    mask = ds["mask"].isel(event=event).astype(bool)
    if not effective:
        return mask
    if "magnitude" not in ds:
        raise ValueError("the effective kept set needs magnitude snapshots, which this run lacks")
    line = float(ds.event_line.isel(event=event))
    start = ds.magnitude.sel(record_step=int(ds.event_step.isel(event=event)))
    at = ds.magnitude.isel(record_step=-1) if step is None else ds.magnitude.sel(record_step=step)
    shed = mask & (start >= line) & (at < line)
    return mask & ~shed


def _scopes(ds: xr.Dataset) -> list[tuple[str, slice]]:
    n = int(ds.sizes["weight"])
    out = [("all", slice(0, n))]
    for name, start, size in zip(ds.layer.values, ds.layer_start.values, ds.layer_size.values, strict=True):
        out.append((str(name), slice(int(start), int(start + size))))
    return out


def compare_kept(a: xr.Dataset, b: xr.Dataset, event: int = -1, effective: bool = False,
                 step: int | None = None) -> xr.Dataset:
    """Overlap statistics of two runs' kept sets over a ``scope`` dimension ('all' then each layer).

    Both runs must have the same prunable layers. Variables: ``n``, ``kept_a``, ``kept_b``, ``both``,
    ``either``, ``jaccard``, ``jaccard_chance``, ``p_value`` (hypergeometric, P(overlap >= observed)) and
    ``spearman`` (rank correlation of the last snapshot's magnitudes among weights both keep; NaN when a
    run has no snapshots).
    """
    if list(a.layer.values) != list(b.layer.values) or list(a.layer_size.values) != list(b.layer_size.values):
        raise ValueError("the two runs have different prunable layers; their kept sets are not comparable")
    ka = kept_set(a, event, effective, step).values
    kb = kept_set(b, event, effective, step).values
    mags = None
    if "magnitude" in a and "magnitude" in b:
        mags = (a.magnitude.isel(record_step=-1).values, b.magnitude.isel(record_step=-1).values)
    names, rows = [], []
    for name, sl in _scopes(a):
        x, y = ka[sl], kb[sl]
        n, na, nb = x.size, int(x.sum()), int(y.sum())
        both, either = int((x & y).sum()), int((x | y).sum())
        da, db = na / n, nb / n
        chance = da * db / (da + db - da * db) if (da + db - da * db) > 0 else np.nan
        p = float(hypergeom.sf(both - 1, n, na, nb))
        rho = np.nan
        if mags is not None:
            sel = x & y
            if sel.sum() > 2:
                rho = float(spearmanr(mags[0][sl][sel], mags[1][sl][sel]).statistic)
        names.append(name)
        rows.append((n, na, nb, both, either, both / either if either else np.nan, chance, p, rho))
    cols = list(zip(*rows, strict=True))
    keys = ["n", "kept_a", "kept_b", "both", "either", "jaccard", "jaccard_chance", "p_value", "spearman"]
    out = xr.Dataset({k: ("scope", np.asarray(v)) for k, v in zip(keys, cols, strict=True)},
                     coords={"scope": names})
    out.attrs.update(effective=effective, event=event)
    return out
