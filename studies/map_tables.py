"""The map's views of its cells table: a heatmap over a pair of factors, and the top cells by
amplification (xarray in, xarray or rows out; no I/O)."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from shedding.reports.numbers import MISSING
from shedding.studies.map_design import FACTORS, LABELS, level_text
from shedding.studies.study_runs import StudyResults, rows

HEAT_VARS = ("amplification", "excess_peak", "final_accuracy")


def _is(values: np.ndarray, v: Any) -> np.ndarray:
    """Where ``values`` equal ``v`` (floats: close to)."""
    if isinstance(v, float):
        return np.isclose(values.astype(float), v, rtol=1e-9, atol=0.0)
    return values == v


def _levels(values: np.ndarray) -> list[Any]:
    """Distinct levels: numbers ascending, names in order of appearance."""
    distinct = list(dict.fromkeys(v.item() if hasattr(v, "item") else v for v in values))
    return sorted(distinct) if all(isinstance(v, float) for v in distinct) else distinct


def _select(
    cells: xr.Dataset, base: dict[str, Any], free: tuple[str, ...], method: str | None
) -> xr.Dataset:
    """The cells whose factors not in ``free`` are at the base, and whose method is ``method``
    unless the method is free."""
    sel = np.ones(cells.sizes["group"], dtype=bool)
    for f in FACTORS:
        if f not in free:
            sel &= _is(cells[f].values, base[f])
    if "method" not in free:
        sel &= cells.method.values == method
    return cells.isel(group=np.flatnonzero(sel))


def sweep_rows(
    cells: xr.Dataset | None, base: dict[str, Any], factor: str, method: str
) -> list[dict[str, Any]]:
    """The cells of ``method`` along ``factor``'s sweep (the other factors at the base), as rows in
    level order (numbers ascending)."""
    if cells is None:
        return []
    sub = rows(_select(cells, base, (factor,), method))
    order = _levels(np.array([r[factor] for r in sub], dtype=object))
    return sorted(sub, key=lambda r: order.index(r[factor]))


def heatmap(
    cells: xr.Dataset, base: dict[str, Any], a: str, b: str, method: str | None = None
) -> xr.Dataset:
    """The cells over factors ``a`` (dim ``y``) and ``b`` (dim ``x``), every other factor at the
    base (and the method ``method`` unless it is ``a`` or ``b``).

    Variables: the :data:`HEAT_VARS` means and CI bounds, ``seeds``, ``verdict`` and
    ``amplified_ci`` (NaN, 0, "" where a cell was not run); coordinates ``y``, ``x`` the levels.
    """
    sub = _select(cells, base, (a, b), method)
    ys, xs = _levels(sub[a].values), _levels(sub[b].values)
    shape = (len(ys), len(xs))
    names = [f"{v}{s}" for v in HEAT_VARS for s in ("", "_low", "_high")]
    out = {k: np.full(shape, np.nan) for k in names}
    out["seeds"] = np.zeros(shape, dtype=int)
    verdict = np.full(shape, "", dtype=object)
    amplified = np.zeros(shape, dtype=bool)
    for i in range(sub.sizes["group"]):
        r = sub.isel(group=i)
        iy = ys.index(r[a].values.item())
        ix = xs.index(r[b].values.item())
        for k in names:
            out[k][iy, ix] = float(r[k])
        out["seeds"][iy, ix] = int(r.seeds)
        verdict[iy, ix] = str(r.verdict.values)
        amplified[iy, ix] = bool(r.amplified_ci)
    data = {k: (("y", "x"), v) for k, v in out.items()}
    data["verdict"] = (("y", "x"), verdict.astype(str))
    data["amplified_ci"] = (("y", "x"), amplified)
    attrs = {"a": a, "b": b, "method": method or ""}
    return xr.Dataset(data, coords={"y": ys, "x": xs}, attrs=attrs)


def sig3(value: float, low: float = np.nan, high: float = np.nan) -> str:
    """``value [low, high]`` to three significant figures; the value alone without a CI;
    :data:`MISSING` without a value."""
    if not np.isfinite(value):
        return MISSING
    ci = f" [{low:.3g}, {high:.3g}]" if np.isfinite(low) and np.isfinite(high) else ""
    return f"{value:.3g}{ci}"


def _cell_name(r: dict[str, Any]) -> dict[str, str]:
    """A cell's factor levels as the report writes them."""
    return {LABELS[f]: level_text(f, r[f]) for f in (*FACTORS, "method")}


def top_rows(results: StudyResults, n: int = 15, plain: bool = False) -> list[dict[str, Any]]:
    """The ``n`` cells of largest mean amplification (no NaN first): factors, seeds, amplification,
    peak excess, onset and accuracy with CIs (``plain``: the CLI's numbers, else the report's
    three-significant-figure text), the verdict and whether the amplification's CI is above 1."""
    cells = results.tables.get("cells")
    if cells is None:
        return []
    ordered = sorted(
        rows(cells),
        key=lambda r: -r["amplification"] if np.isfinite(r["amplification"]) else np.inf,
    )[:n]
    out = []
    for r in ordered:
        names = {f: level_text(f, r[f]) for f in (*FACTORS, "method")} if plain else _cell_name(r)
        row: dict[str, Any] = {**names, "seeds": r["seeds"]}
        if plain:
            row.update(
                {
                    "amplification": r["amplification"],
                    "CI low": r["amplification_low"],
                    "CI high": r["amplification_high"],
                    "peak excess": r["excess_peak"],
                    "accuracy": r["final_accuracy"],
                }
            )
        else:
            row.update(
                {
                    k: sig3(*(r[f"{v}{s}"] for s in ("", "_low", "_high")))
                    for k, v in (
                        ("amplification (excess)", "amplification"),
                        ("peak excess", "excess_peak"),
                        ("onset (steps)", "onset"),
                        ("accuracy", "final_accuracy"),
                        ("raw amplification", "raw_amplification"),
                    )
                }
            )
            if 0 < r["onset_seeds"] < r["seeds"]:
                row["onset (steps)"] += f" ({r['onset_seeds']} of {r['seeds']} seeds)"
        row["verdict"] = r["verdict"]
        row["A > 1 (CI)"] = "yes" if r["amplified_ci"] else "no"
        out.append(row)
    return out
