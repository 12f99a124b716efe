"""Everything ``shedding analyze`` and ``compare`` compute for a set of runs, as xarray objects (no
I/O).

Runs are grouped into conditions (runs that differ only in their seed); each run is matched with
its control by :func:`shedding.analysis.controls.match_controls` (same seed and setting, same line),
or has none; both by the runs' identities (:func:`shedding.analysis.run_identity.run_identity`).
Per run: cascade detection for every event and line. Per condition: means over seeds with
bootstrap confidence intervals, CI bands of S(t) and of the excess, and a verdict. Across runs: the
kept-set overlap matrices (masks and effective sets) and the convergence of random runs towards
GMP's set.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from shedding.analysis.cascade import DEFAULT_WINDOW, detect_cascades
from shedding.analysis.controls import is_control
from shedding.analysis.lines import Line
from shedding.analysis.overlap import convergence, kept_matrix
from shedding.analysis.run_identity import run_identity
from shedding.analysis.seeds import curve_band, group_conditions, group_runs, mean_ci
from shedding.analysis.shed import shed_curves, shed_fraction
from shedding.analysis.verdicts import condition_verdict

SCALARS = (
    "peak_shed_fraction",
    "time_to_peak",
    "amplification",
    "excess_peak",
    "final_excess",
    "final_shed_fraction",
    "recovered_events",
)


@dataclass
class Summary:
    """Per-run detections, per-condition statistics across seeds, and kept-set comparisons."""

    runs: dict[str, xr.Dataset]
    controls: set[str]
    control_of: dict[str, str | None]
    conditions: dict[str, list[str]]
    lines: list[Line]
    params: dict[str, object]
    fractions: dict[str, xr.Dataset]
    detections: dict[str, xr.Dataset]
    bands: dict[str, dict[str, xr.Dataset]] = field(default_factory=dict)
    condition_stats: dict[str, dict[str, object]] = field(default_factory=dict)
    overlap: xr.Dataset | None = None
    overlap_effective: xr.Dataset | None = None
    convergences: dict[tuple[str, str], xr.Dataset] = field(default_factory=dict)

    @property
    def cascades(self) -> dict[str, xr.Dataset]:
        """Per run: the detection of event 0 on the first line, with its verdict in the
        attributes."""
        out = {}
        for name, det in self.detections.items():
            d = det.isel(event=0, line=0)
            d.attrs.update(
                verdict=str(d.verdict.values),
                evidence=str(d.evidence.values),
                rule=det.attrs["rule"],
            )
            out[name] = d
        return out

    @property
    def overlaps(self) -> dict[tuple[str, str], xr.Dataset]:
        """Pairwise kept-set comparisons (upper triangle) from the overlap matrix."""
        if self.overlap is None:
            return {}
        names = list(self.overlap.run_a.values)
        return {
            (a, b): self.overlap.sel(run_a=a, run_b=b)
            for i, a in enumerate(names)
            for b in names[i + 1 :]
        }

    def table(self) -> list[dict[str, object]]:
        """One row of key statistics per run and event, first line (what the CLI prints;
        ``--json``)."""
        rows = []
        for name, det in self.detections.items():
            ds = self.runs[name]
            for e in range(det.sizes["event"]):
                c = det.isel(event=e, line=0)
                rows.append(
                    {
                        "run": name if det.sizes["event"] == 1 else f"{name}#{e}",
                        "method": ds.attrs.get("method"),
                        "technique": ds.attrs.get("technique"),
                        "seed": run_identity(ds).seed,
                        "event": e,
                        "sparsity": float(ds.event_sparsity.values[e]),
                        "final_accuracy": float(ds.event_final_test_accuracy.values[e]),
                        "peak_S": float(c.peak_shed_fraction),
                        "peak_step": int(c.peak_step),
                        "final_S": float(c.final_shed_fraction),
                        "excess_peak": float(c.excess_peak),
                        "onset_step": int(c.onset_step),
                        "amplification": float(c.amplification),
                        "recovered": int(c.recovered_events),
                        "verdict": "control" if name in self.controls else str(c.verdict.values),
                        "evidence": "" if name in self.controls else str(c.evidence.values),
                    }
                )
        return rows

    def line_table(self) -> list[dict[str, object]]:
        """Verdicts of every run, event and line."""
        rows = []
        for name, det in self.detections.items():
            if name in self.controls:
                continue
            for e in range(det.sizes["event"]):
                for ln in det.line.values:
                    c = det.sel(line=ln).isel(event=e)
                    rows.append(
                        {
                            "run": name,
                            "event": e,
                            "line": str(ln),
                            "resolution": str(c.resolution.values),
                            "peak_S": float(c.peak_shed_fraction),
                            "excess_peak": float(c.excess_peak),
                            "onset_step": int(c.onset_step),
                            "amplification": float(c.amplification),
                            "verdict": str(c.verdict.values),
                        }
                    )
        return rows

    def condition_table(self) -> list[dict[str, object]]:
        """Per condition: seeds, means with CIs, verdict."""
        return [{"condition": label, **stats} for label, stats in self.condition_stats.items()]


def _condition_statistics(
    names: list[str], detections: dict[str, xr.Dataset], min_excess: float, has_control: bool
) -> dict[str, object]:
    out: dict[str, object] = {"seeds": len(names), "runs": ", ".join(names)}
    for var in SCALARS:
        values = np.array([float(detections[n].isel(event=0, line=0)[var]) for n in names])
        mean, low, high = mean_ci(values[:, None], axis=0)
        out[var] = float(mean[0])
        out[f"{var}_ci"] = (float(low[0]), float(high[0]))
    low = out["excess_peak_ci"][0]
    out["verdict"] = condition_verdict(out["excess_peak"], low, len(names), min_excess, has_control)
    return out


def summarize(
    runs: dict[str, xr.Dataset],
    control: str | None = None,
    lines: list[Line] | None = None,
    min_excess: float = 0.05,
    onset_excess: float = 0.01,
    window: int | str | None = DEFAULT_WINDOW,
    denominator: str = "eligible",
    overlaps: bool = True,
) -> Summary:
    """Analyze ``runs`` together; see the module docstring. ``control`` forces one control for every
    run.

    Condition verdict (ours, :func:`shedding.analysis.verdicts.condition_verdict`): a cascade when
    the mean peak excess over seeds reaches ``min_excess`` and its 95% bootstrap CI lies above 0;
    with one seed, the run's own verdict, flagged as such.
    """
    controls, conditions, control_of = _match(runs, control)
    lines = lines or []
    fractions = {n: shed_fraction(ds, denominator).compute() for n, ds in runs.items()}
    detections = {}
    for n, ds in runs.items():
        ctrl = runs[control_of[n]] if control_of.get(n) else None
        run_lines = lines or [Line("gmp", float(ds.attrs.get("alpha", 1.0)))]
        detections[n] = detect_cascades(
            ds, ctrl, run_lines, min_excess, onset_excess, window, denominator
        )
    summary = Summary(
        runs,
        controls,
        control_of,
        conditions,
        lines,
        dict(
            min_excess=min_excess, onset_excess=onset_excess, window=window, denominator=denominator
        ),
        fractions,
        detections,
    )
    _add_conditions(summary, min_excess, denominator)
    if overlaps and len(runs) > 1:
        _add_kept_sets(summary)
    return summary


def _match(
    runs: dict[str, xr.Dataset], control: str | None
) -> tuple[set[str], dict[str, list[str]], dict[str, str | None]]:
    """(controls, conditions, control_of): by the matching rule, or ``control`` for every run."""
    if control is not None and control not in runs:
        raise ValueError(f"control {control!r} is not among the runs: {', '.join(runs)}")
    controls = {n for n, ds in runs.items() if is_control(ds)}
    if control is not None:  # the user's choice for every run, instead of the matching rule
        conditions = group_conditions(runs)
        controls.add(control)
        control_of = {n: (None if n in controls else control) for n in runs}
    else:
        conditions, control_of = group_runs(runs)
    return controls, conditions, control_of


def _add_conditions(summary: Summary, min_excess: float, denominator: str) -> None:
    """Per condition: the statistics over seeds (with the verdict) and the CI bands of S and of
    the excess; changes ``summary``."""
    runs, controls, control_of = summary.runs, summary.controls, summary.control_of
    for label, names in summary.conditions.items():
        pruned = [n for n in names if n not in controls]
        if not pruned:
            summary.bands[label] = {"S": curve_band([_curve(runs[n], denominator) for n in names])}
            continue
        has_control = all(control_of.get(n) for n in pruned)
        summary.condition_stats[label] = _condition_statistics(
            pruned, summary.detections, min_excess, has_control
        )
        bands = {"S": curve_band([_curve(runs[n], denominator) for n in pruned])}
        if has_control:
            bands["excess"] = curve_band(
                [
                    _curve(runs[n], denominator) - _curve(runs[control_of[n]], denominator)
                    for n in pruned
                ]
            )
        summary.bands[label] = bands


def _add_kept_sets(summary: Summary) -> None:
    """The kept-set overlap matrices and each random run's convergence towards the GMP runs of
    its seed; changes ``summary``."""
    runs = summary.runs
    summary.overlap = kept_matrix(runs)
    with_mags = {n: ds for n, ds in runs.items() if "magnitude" in ds}
    if len(with_mags) > 1:
        summary.overlap_effective = kept_matrix(with_mags, effective=True)
    seeds = {n: run_identity(ds).seed for n, ds in with_mags.items()}
    for n, ds in with_mags.items():
        if ds.attrs.get("method") not in ("random", "random_layerwise"):
            continue
        refs = [
            m
            for m, r in with_mags.items()
            if r.attrs.get("method") == "gmp"
            and seeds[m] == seeds[n]
            and list(r.layer.values) == list(ds.layer.values)
        ]
        for m in refs:
            summary.convergences[(n, m)] = convergence(ds, with_mags[m])


def _curve(ds: xr.Dataset, denominator: str) -> xr.DataArray:
    """Event 0's global S(t) on the recorded line, indexed by steps since the event."""
    c = shed_curves(ds, 0, denominator=denominator).shed_fraction_global.compute()
    return c.assign_coords(step=c.step.values - int(ds.event_step.values[0]))
