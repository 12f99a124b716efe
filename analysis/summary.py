"""Everything ``shedding analyze`` computes for a set of runs, as xarray objects (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import xarray as xr

from analysis.cascade import cascade_summary
from analysis.overlap import compare_kept
from analysis.shed import shed_fraction


@dataclass
class Summary:
    """Per-run shed fractions and cascade statistics, plus pairwise kept-set overlaps."""

    runs: dict[str, xr.Dataset]
    controls: set[str]
    fractions: dict[str, xr.Dataset]
    cascades: dict[str, xr.Dataset]
    overlaps: dict[tuple[str, str], xr.Dataset] = field(default_factory=dict)

    def table(self) -> list[dict[str, object]]:
        """One row of key statistics per run (what the CLI prints and ``--json`` emits)."""
        rows = []
        for name, c in self.cascades.items():
            ds = self.runs[name]
            rows.append({
                "run": name,
                "method": ds.attrs.get("method"),
                "technique": ds.attrs.get("technique"),
                "sparsity": float(ds.event_sparsity.values[-1]),
                "final_accuracy": float(ds.attrs.get("final_test_accuracy", np.nan)),
                "peak_S": float(c.peak_shed_fraction),
                "peak_step": int(c.peak_step),
                "final_S": float(c.final_shed_fraction),
                "excess_peak": float(c.excess_peak),
                "onset_step": int(c.onset_step),
                "amplification": float(c.amplification),
                "verdict": "control" if name in self.controls else c.attrs["verdict"],
                "evidence": "" if name in self.controls else c.attrs["evidence"],
            })
        return rows


def find_controls(runs: dict[str, xr.Dataset]) -> set[str]:
    """Names of the runs recorded as unpruned controls (prune method ``none``)."""
    return {n for n, ds in runs.items() if bool(ds.attrs.get("control"))}


def summarize(runs: dict[str, xr.Dataset], control: str | None = None, min_excess: float = 0.05,
              onset_excess: float = 0.01, window: int | str | None = "5ep", denominator: str = "eligible",
              overlaps: bool = True) -> Summary:
    """Shed fractions and cascade statistics of every run against the control, and kept-set overlaps.

    ``control`` names the control run; by default the run recorded with prune method ``none`` is used
    (an error if there are several and none is named).
    """
    controls = find_controls(runs)
    if control is not None:
        if control not in runs:
            raise ValueError(f"control {control!r} is not among the runs: {', '.join(runs)}")
        controls.add(control)
        ctrl_name: str | None = control
    elif len(controls) > 1:
        raise ValueError(f"several control runs ({', '.join(sorted(controls))}); name one with --control")
    else:
        ctrl_name = next(iter(controls), None)
    ctrl = runs[ctrl_name] if ctrl_name is not None else None
    fractions = {n: shed_fraction(ds, denominator).compute() for n, ds in runs.items()}
    cascades = {}
    for n, ds in runs.items():
        cascades[n] = cascade_summary(ds, None if n == ctrl_name else ctrl, min_excess=min_excess,
                                      onset_excess=onset_excess, window=window, denominator=denominator)
    pairs: dict[tuple[str, str], xr.Dataset] = {}
    if overlaps:
        for a, b in combinations(list(runs), 2):
            try:
                pairs[(a, b)] = compare_kept(runs[a], runs[b])
            except ValueError:
                continue  # different architectures: not comparable
    return Summary(runs, controls, fractions, cascades, pairs)
