"""Comparing kept-weight sets of two runs (docs/science.md#kept-sets), globally and per layer.

Jaccard J = |A ∩ B| / |A ∪ B| beside its chance level for independent random sets of the same
densities, d_A d_B / (d_A + d_B - d_A d_B), and the hypergeometric tail P(|A ∩ B| >= observed).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy.stats import hypergeom, spearmanr

from shedding.analysis.events import event_index


def kept_set(
    ds: xr.Dataset, event: int = -1, effective: bool = False, step: int | None = None
) -> xr.DataArray:
    """Boolean (weight) kept set after ``event`` (default the last); ``effective`` drops shed
    weights.

    The effective set is kept and not shed at ``step`` (default: the last snapshot): a kept weight
    that was at or above the event's line at the event and is below it at ``step`` is shed (needs
    magnitudes).
    """
    event = event_index(ds, event)
    mask = ds["mask"].isel(event=event).astype(bool)
    if not effective:
        return mask
    if "magnitude" not in ds:
        raise ValueError("the effective kept set needs magnitude snapshots, which this run lacks")
    line = np.float32(ds.event_line.isel(event=event))  # float32, as the recorder compares
    start = ds.magnitude.sel(record_step=int(ds.event_step.isel(event=event)))
    at = ds.magnitude.isel(record_step=-1) if step is None else ds.magnitude.sel(record_step=step)
    shed = mask & (start >= line) & (at < line)
    return mask & ~shed


def _scopes(ds: xr.Dataset) -> list[tuple[str, slice]]:
    n = int(ds.sizes["weight"])
    out = [("all", slice(0, n))]
    for name, start, size in zip(
        ds.layer.values, ds.layer_start.values, ds.layer_size.values, strict=True
    ):
        out.append((str(name), slice(int(start), int(start + size))))
    return out


def _kept_arrays(
    ds: xr.Dataset, event: int, effective: bool, step: int | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """(kept set, last snapshot's magnitudes or None) of one run, loaded once."""
    kept = np.asarray(kept_set(ds, event, effective, step).values).astype(bool)
    mags = np.asarray(ds.magnitude.isel(record_step=-1).values) if "magnitude" in ds else None
    return kept, mags


def _compare_arrays(
    a: tuple[np.ndarray, np.ndarray | None],
    b: tuple[np.ndarray, np.ndarray | None],
    scopes: list[tuple[str, slice]],
) -> xr.Dataset:
    ka, ma = a
    kb, mb = b
    names, rows = [], []
    for name, sl in scopes:
        x, y = ka[sl], kb[sl]
        n, na, nb = x.size, int(x.sum()), int(y.sum())
        both, either = int((x & y).sum()), int((x | y).sum())
        da, db = na / n, nb / n
        chance = da * db / (da + db - da * db) if (da + db - da * db) > 0 else np.nan
        p = float(hypergeom.sf(both - 1, n, na, nb))
        rho = np.nan
        if ma is not None and mb is not None:
            sel = x & y
            if sel.sum() > 2:
                rho = float(spearmanr(ma[sl][sel], mb[sl][sel]).statistic)
        names.append(name)
        rows.append((n, na, nb, both, either, both / either if either else np.nan, chance, p, rho))
    cols = list(zip(*rows, strict=True))
    keys = [
        "n",
        "kept_a",
        "kept_b",
        "both",
        "either",
        "jaccard",
        "jaccard_chance",
        "p_value",
        "spearman",
    ]
    return xr.Dataset(
        {k: ("scope", np.asarray(v)) for k, v in zip(keys, cols, strict=True)},
        coords={"scope": names},
    )


def _check_same_layers(a: xr.Dataset, b: xr.Dataset) -> None:
    if list(a.layer.values) != list(b.layer.values) or list(a.layer_size.values) != list(
        b.layer_size.values
    ):
        raise ValueError(
            "the two runs have different prunable layers; their kept sets are not comparable"
        )


def compare_kept(
    a: xr.Dataset, b: xr.Dataset, event: int = -1, effective: bool = False, step: int | None = None
) -> xr.Dataset:
    """Overlap statistics of two runs' kept sets over a ``scope`` dimension ('all' then each layer).

    Both runs must have the same prunable layers. Variables: ``n``, ``kept_a``, ``kept_b``,
    ``both``,
    ``either``, ``jaccard``, ``jaccard_chance``, ``p_value`` (hypergeometric, P(overlap >=
    observed)) and
    ``spearman`` (rank correlation of the last snapshot's magnitudes among weights both keep; NaN
    when a run has no snapshots).
    """
    _check_same_layers(a, b)
    out = _compare_arrays(
        _kept_arrays(a, event, effective, step), _kept_arrays(b, event, effective, step), _scopes(a)
    )
    out.attrs.update(effective=effective, event=event)
    return out


def kept_matrix(
    runs: dict[str, xr.Dataset], event: int = -1, effective: bool = False, step: int | None = None
) -> xr.Dataset:
    """Pairwise :func:`compare_kept` over runs with the same layers, as (run_a, run_b, scope)
    arrays.

    The diagonal compares a run with itself. Runs whose layers differ from the first run's are left
    out.
    """
    names = list(runs)
    first = runs[names[0]]
    names = [
        n
        for n in names
        if list(runs[n].layer.values) == list(first.layer.values)
        and list(runs[n].layer_size.values) == list(first.layer_size.values)
    ]
    for n in (
        names
    ):  # before any run is read: an event one of them lacks is an error, not a wrapped index
        event_index(runs[n], event)
    arrays = {n: _kept_arrays(runs[n], event, effective, step) for n in names}  # each run read once
    scopes = _scopes(first)
    cells: dict[tuple[str, str], xr.Dataset] = {}
    for i, a in enumerate(names):
        for b in names[i:]:
            res = _compare_arrays(arrays[a], arrays[b], scopes)
            cells[(a, b)] = res
            swapped = res.copy()
            swapped["kept_a"], swapped["kept_b"] = res["kept_b"], res["kept_a"]
            cells[(b, a)] = swapped
    rows = [
        xr.concat(
            [cells[(a, b)] for b in names], dim=xr.DataArray(names, dims="run_b", name="run_b")
        )
        for a in names
    ]
    out = xr.concat(rows, dim=xr.DataArray(names, dims="run_a", name="run_a"))
    out.attrs.update(effective=effective, event=event)
    return out


def convergence(
    run: xr.Dataset, reference: xr.Dataset, event: int = -1, max_points: int = 200
) -> xr.Dataset:
    """Does ``run``'s kept set, as it sheds, move towards ``reference``'s kept set, and how fast?

    At each snapshot step of ``run``'s round for ``event`` (at most ``max_points`` of them) two sets
    of run are compared with reference's kept set (its mask after ``event``), each beside the chance
    level for independent sets of the same densities:

    * ``effective``: kept and not shed (docs/science.md#kept-sets definition). Survivors already
      below the line at the event are never shed, so they stay in this set however small they are;
    * ``above_line``: kept and at or above the event's line at that step: the set GMP at the event's
      line would keep now.

    ``toward_X`` = jaccard_X - chance_X; attribute ``half_step_X`` is the first step where
    ``toward_X`` has covered half of its change over the round (-1 when it does not move towards the
    reference). The cascade paper's question is ``convergence(random_run, gmp_run)``.
    """
    n_ev = run.sizes["event"]
    ev = event % n_ev
    ev_step = int(run.event_step.isel(event=ev))
    rounds = np.asarray(run.record_round.values)
    rows = np.flatnonzero(rounds == ev)
    if rows.size > max_points:
        rows = rows[np.unique(np.linspace(0, rows.size - 1, max_points).round().astype(int))]
    ref = kept_set(reference, event).values
    mask = run["mask"].isel(event=ev).values.astype(bool)
    line = np.float32(run.event_line.isel(event=ev))  # float32, as the recorder compares
    start = np.asarray(run.magnitude.sel(record_step=ev_step).values)
    eligible = mask & (start >= line)
    steps = np.asarray(run.record_step.values)[rows]
    d_ref = ref.mean()
    block = max(1, int(run.magnitude.chunks[0][0]) if run.magnitude.chunks else 32)
    cols: dict[str, list[float]] = {
        k: []
        for k in (
            "jaccard_effective",
            "chance_effective",
            "density_effective",
            "jaccard_above_line",
            "chance_above_line",
            "density_above_line",
        )
    }
    for b0 in range(
        0, rows.size, block
    ):  # read snapshots a chunk at a time, not one compute per row
        for at in np.asarray(run.magnitude.isel(record_step=rows[b0 : b0 + block]).values):
            for name, kept in (
                ("effective", mask & ~(eligible & (at < line))),
                ("above_line", mask & (at >= line)),
            ):
                both, either, d = (
                    int((kept & ref).sum()),
                    int((kept | ref).sum()),
                    float(kept.mean()),
                )
                denom = d + d_ref - d * d_ref
                cols[f"jaccard_{name}"].append(both / either if either else np.nan)
                cols[f"chance_{name}"].append(d * d_ref / denom if denom > 0 else np.nan)
                cols[f"density_{name}"].append(d)
    out = xr.Dataset(
        {k: ("record_step", np.asarray(v)) for k, v in cols.items()}, coords={"record_step": steps}
    )
    attrs: dict[str, float | int] = {"event_step": ev_step}
    for name in ("effective", "above_line"):
        toward = out[f"jaccard_{name}"] - out[f"chance_{name}"]
        out[f"toward_{name}"] = toward
        change = float(toward.values[-1] - toward.values[0]) if steps.size else 0.0
        half = -1
        if change > 0:
            reached = np.flatnonzero(toward.values - toward.values[0] >= change / 2)
            half = int(steps[reached[0]]) if reached.size else -1
        attrs[f"change_{name}"] = change
        attrs[f"half_step_{name}"] = half
    out.attrs.update(attrs)
    return out
