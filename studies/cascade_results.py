"""Results of the cascade study (Azarian & Porikli): per run, the cascade detection against its
matched control; per condition, means over seeds with CIs and a verdict, S(t) bands, the kept-set
convergence of random pruning towards GMP's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from shedding.analysis.seeds import curve_band
from shedding.analysis.verdicts import condition_verdict
from shedding.studies.study_runs import (
    Entry,
    StudyResults,
    StudyRuns,
    dense_summary,
    frame,
    mean_ci_row,
    results_dataset,
    rows,
)

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
CONVERGENCE_VARS = (  # (name in the results, variable of shedding.analysis.overlap.convergence)
    ("toward", "toward_above_line"),
    ("jaccard", "jaccard_above_line"),
    ("chance", "chance_above_line"),
    ("effective_toward", "toward_effective"),
)
RANDOM = ("random", "random_layerwise")
CONDITION_VARS = (
    "excess_peak",
    "amplification",
    "final_excess",
    "peak_shed_fraction",
    "control_peak_shed_fraction",
    "final_accuracy",
)

Key = tuple[Any, ...]  # (condition, sparsity, method)


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


def cascade_results(
    study_runs: StudyRuns,
    window: str | int | None = "5ep",
    min_excess: float = 0.05,
    onset_excess: float = 0.01,
) -> StudyResults:
    """Shedding statistics of the cascade study; see the module docstring.

    Per main-part run: the :func:`shedding.analysis.cascade.cascade_summary` variables against its
    control (matched by :func:`shedding.analysis.controls.match_controls`: the same condition, seed
    and line sparsity; NaN without one), S(t) and the excess over the control by steps since the
    event (``shed_fraction``, ``excess`` over ``since``), and for random runs the kept-set
    convergence towards the GMP run of the same condition, sparsity and seed (``convergence`` over
    ``conv_step``). Tables: ``conditions`` (means over seeds with CIs, verdict), ``controls``,
    ``random_vs_gmp`` (accuracy), ``convergence`` and, when the cascade-aware part ran, ``aware``.
    Extras: ``bands`` (S and excess CI bands per condition, sparsity and method).
    """
    from shedding.analysis.controls import match_controls

    ds = results_dataset(study_runs)
    runs, entries = study_runs.runs, study_runs.entries
    labels = [e.label for e in entries]
    fac = {e.label: e.factors for e in entries}
    main = [e.label for e in entries if e.factors["part"] == "main" and e.label in runs]
    matched = match_controls(
        {lbl: runs[lbl] for lbl in main}
    )  # the one rule: same setting, seed and line
    control_of = {lbl: matched[lbl] for lbl in main if fac[lbl]["method"] != "none"}
    curves = {lbl: _relative_curve(runs[lbl]) for lbl in main}
    excess = _excess_curves(curves, control_of)
    scalars, verdict = _detections(labels, runs, control_of, window, min_excess, onset_excess)
    for lbl in main:
        if fac[lbl]["method"] == "none":
            verdict[labels.index(lbl)] = "control"
    conv, conv_curves = _convergences(labels, runs, fac, main)
    ds = ds.assign({v: ("run", a) for v, a in {**scalars, **conv}.items()})
    ds["verdict"] = ("run", verdict.astype(str))
    ds = _with_curves(ds, labels, curves, excess, conv_curves)
    tables, bands = _cascade_tables(ds, entries, runs, control_of, curves, excess, min_excess)
    tables.update(_aware_table(ds))
    rule = (
        "a condition shows a cascade when the mean over seeds of the peak excess S_run - S_control "
        f"within {window} of pruning reaches {min_excess:g} and its 95% bootstrap CI lies above 0"
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
            "dense": dense_summary(ds),
        },
    )


def _excess_curves(
    curves: dict[str, xr.DataArray], control_of: dict[str, str | None]
) -> dict[str, xr.DataArray]:
    """S_run - S_control over the steps since the event both have, per run with a control."""
    excess = {}
    for lbl, ctrl in control_of.items():
        if ctrl is not None:
            common = np.intersect1d(curves[lbl].since.values, curves[ctrl].since.values)
            excess[lbl] = curves[lbl].sel(since=common) - curves[ctrl].sel(since=common)
    return excess


def _detections(
    labels: list[str],
    runs: dict[str, xr.Dataset],
    control_of: dict[str, str | None],
    window: str | int | None,
    min_excess: float,
    onset_excess: float,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """(the :data:`CASCADE_VARS` per run, the verdict per run): each pruned run's cascade summary
    against its control; NaN and an empty verdict for the other runs."""
    from shedding.analysis.cascade import cascade_summary

    scalars = {v: np.full(len(labels), np.nan) for v in CASCADE_VARS}
    verdict = np.full(len(labels), "", dtype=object)
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
    return scalars, verdict


def _convergences(
    labels: list[str],
    runs: dict[str, xr.Dataset],
    fac: dict[str, dict[str, Any]],
    main: list[str],
) -> tuple[dict[str, np.ndarray], dict[str, xr.DataArray]]:
    """(``conv_{name}_{start,end}`` per run, the curve per random run): the kept-set convergence of
    each random run towards the GMP run of the same condition, sparsity and seed (NaN without
    one, or without magnitudes)."""
    from shedding.analysis.overlap import convergence

    def key(lbl: str, method: str | None = None) -> tuple:
        f = fac[lbl]
        return (f["condition"], f["sparsity"], f["seed"], method or f["method"])

    by_key = {key(lbl): lbl for lbl in main}
    conv = {
        f"conv_{name}_{end}": np.full(len(labels), np.nan)
        for name, _ in CONVERGENCE_VARS
        for end in ("start", "end")
    }
    conv_curves = {}
    for lbl in main:
        if fac[lbl]["method"] not in RANDOM:
            continue
        ref = by_key.get(key(lbl, "gmp"))
        if ref is None or "magnitude" not in runs[lbl] or "magnitude" not in runs[ref]:
            continue
        i = labels.index(lbl)
        c = convergence(runs[lbl], runs[ref])
        rel = c.record_step.values - int(c.attrs["event_step"])
        conv_curves[lbl] = xr.DataArray(
            c.toward_above_line.values, dims="conv_step", coords={"conv_step": rel}
        )
        for name, var in CONVERGENCE_VARS:
            conv[f"conv_{name}_start"][i] = float(c[var].values[0])
            conv[f"conv_{name}_end"][i] = float(c[var].values[-1])
    return conv, conv_curves


def _with_curves(
    ds: xr.Dataset,
    labels: list[str],
    curves: dict[str, xr.DataArray],
    excess: dict[str, xr.DataArray],
    conv_curves: dict[str, xr.DataArray],
) -> xr.Dataset:
    """``ds`` with the per-run curves stacked: ``shed_fraction``, ``excess``, ``convergence``."""
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
    return ds


def _values(ds: xr.Dataset, names: list[str], var: str) -> list[float]:
    """``var`` of the runs ``names`` (their labels)."""
    sel = {str(r): i for i, r in enumerate(ds.run.values)}
    return [float(ds[var].values[sel[n]]) for n in names]


def _groups(entries: list[Entry], runs: dict[str, xr.Dataset]) -> dict[Key, list[str]]:
    """The complete main-part runs by (condition, sparsity, method)."""
    groups: dict[Key, list[str]] = {}
    for e in entries:
        if e.factors["part"] == "main" and e.label in runs:
            groups.setdefault(
                (e.factors["condition"], e.factors["sparsity"], e.factors["method"]), []
            ).append(e.label)
    return groups


def _cascade_tables(
    ds: xr.Dataset,
    entries: list[Entry],
    runs: dict[str, xr.Dataset],
    control_of: dict[str, str | None],
    curves: dict[str, xr.DataArray],
    excess: dict[str, xr.DataArray],
    min_excess: float,
) -> tuple[dict[str, xr.Dataset | None], dict[Key, dict[str, xr.Dataset]]]:
    """The tables ``conditions``, ``controls``, ``random_vs_gmp`` and ``convergence`` (None when
    empty), and the S (and excess) CI bands per (condition, sparsity, method)."""
    groups = _groups(entries, runs)
    cond_rows, ctrl_rows, rvg_rows, conv_rows = [], [], [], []
    bands: dict[Key, dict[str, xr.Dataset]] = {}
    for (cond, sp, method), names in groups.items():
        b = {"S": curve_band([curves[n] for n in names], dim="since")}
        bands[(cond, sp, method)] = b
        if method == "none":
            ctrl_rows.append(_control_row(ds, cond, sp, names, curves))
            continue
        with_ctrl = [n for n in names if control_of.get(n)]
        if with_ctrl:
            b["excess"] = curve_band([excess[n] for n in with_ctrl], dim="since")
        row = _condition_row(ds, (cond, sp, method), names, len(with_ctrl), min_excess)
        cond_rows.append(row)
        if method in RANDOM:
            gmp = groups.get((cond, sp, "gmp"), [])
            rvg_rows.extend(_random_vs_gmp_rows(ds, cond, sp, names, gmp, row["verdict"]))
            conv_rows.extend(_convergence_rows(ds, cond, sp, names))
    return (
        {
            "conditions": frame(cond_rows),
            "controls": frame(ctrl_rows),
            "random_vs_gmp": frame(rvg_rows),
            "convergence": frame(conv_rows),
        },
        bands,
    )


def _control_row(
    ds: xr.Dataset, cond: str, sp: float, names: list[str], curves: dict[str, xr.DataArray]
) -> dict[str, Any]:
    """The unpruned controls of a condition and sparsity: final S and accuracy over seeds."""
    return {
        "condition": cond,
        "sparsity": sp,
        "seeds": len(names),
        **mean_ci_row("final_shed_fraction", [float(curves[n].values[-1]) for n in names]),
        **mean_ci_row("final_accuracy", _values(ds, names, "final_accuracy")),
    }


def _condition_row(
    ds: xr.Dataset, key: Key, names: list[str], controls: int, min_excess: float
) -> dict[str, Any]:
    """A pruned condition (condition, sparsity, method): means over seeds with CIs and the verdict
    (:func:`shedding.analysis.verdicts.condition_verdict`)."""
    cond, sp, method = key
    row: dict[str, Any] = {
        "condition": cond,
        "sparsity": sp,
        "method": method,
        "seeds": len(names),
        "controls": controls,
    }
    for v in CONDITION_VARS:
        row.update(mean_ci_row(v, _values(ds, names, v)))
    sel = {str(r): i for i, r in enumerate(ds.run.values)}
    row["pruned_accuracy"] = float(
        np.nanmean([float(ds.pruned_accuracy.values[sel[n], 0]) for n in names])
    )
    row["verdict"] = condition_verdict(
        row["excess_peak"], row["excess_peak_low"], len(names), min_excess, controls >= len(names)
    )
    return row


def _random_vs_gmp_rows(
    ds: xr.Dataset, cond: str, sp: float, names: list[str], gmp: list[str], verdict: str
) -> list[dict[str, Any]]:
    """Random against GMP runs of the same seed: their accuracies and differences (mean, CI), at
    the end and right after pruning; no row without a pair."""
    sel = {str(r): i for i, r in enumerate(ds.run.values)}
    pairs = [(n, m) for n in names for m in gmp if ds.seed.values[sel[n]] == ds.seed.values[sel[m]]]
    if not pairs:
        return []
    final, pruned = ds.final_accuracy.values, ds.pruned_accuracy.values
    diff = [float(final[sel[n]] - final[sel[m]]) for n, m in pairs]
    pdiff = [float(pruned[sel[n], 0] - pruned[sel[m], 0]) for n, m in pairs]
    return [
        {
            "condition": cond,
            "sparsity": sp,
            "pairs": len(pairs),
            "random_cascade": verdict,
            **mean_ci_row("random_accuracy", [float(final[sel[n]]) for n, _ in pairs]),
            **mean_ci_row("gmp_accuracy", [float(final[sel[m]]) for _, m in pairs]),
            **mean_ci_row("random_minus_gmp", diff),
            **mean_ci_row("random_minus_gmp_after_pruning", pdiff),
        }
    ]


def _convergence_rows(
    ds: xr.Dataset, cond: str, sp: float, names: list[str]
) -> list[dict[str, Any]]:
    """The kept-set convergence of a condition's random runs towards GMP's: Jaccard and chance at
    the start and the end, the change (mean, CI) and which way it goes; no row without one."""
    conv_names = [n for n in names if np.isfinite(_values(ds, [n], "conv_toward_start")[0])]
    if not conv_names:
        return []
    start, end = (
        _values(ds, conv_names, "conv_toward_start"),
        _values(ds, conv_names, "conv_toward_end"),
    )
    change = [b_ - a_ for a_, b_ in zip(start, end, strict=True)]
    c_row = {
        "condition": cond,
        "sparsity": sp,
        "seeds": len(conv_names),
        "jaccard_start": float(np.mean(_values(ds, conv_names, "conv_jaccard_start"))),
        "chance_start": float(np.mean(_values(ds, conv_names, "conv_chance_start"))),
        "jaccard_end": float(np.mean(_values(ds, conv_names, "conv_jaccard_end"))),
        "chance_end": float(np.mean(_values(ds, conv_names, "conv_chance_end"))),
        **mean_ci_row("toward_change", change),
        **mean_ci_row("effective_toward_end", _values(ds, conv_names, "conv_effective_toward_end")),
    }
    lo, hi = c_row["toward_change_low"], c_row["toward_change_high"]
    c_row["converges"] = (
        "towards GMP's set"
        if c_row["toward_change"] > 0 and lo > 0
        else "away from GMP's set"
        if c_row["toward_change"] < 0 and hi < 0
        else "no clear change"
    )
    return [c_row]


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
                **mean_ci_row("final_accuracy", list(map(float, s.final_accuracy.values))),
                "final_sparsity": float(np.mean(last)),
                "events": float(s.rounds.mean()),
                "retrain_steps": float(s.retrain_steps.mean()),
                "total_steps": float((s.retrain_steps + s["T"]).mean()),
            }
        )
    return {"aware": frame(rows)}


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
        for r in (rows(t) if t is not None else [])
    ]
