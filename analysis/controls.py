"""Which control a run is measured against: the one rule that ``analyze``, ``compare``, the reports
and the studies all use (docs/science.md#shedding: a cascade is only the excess of a run's shedding
over its control's).

A *control* is a run recorded with prune method ``none``. It prunes nothing, and during its
retraining it counts the weights falling under one line: alpha * tau, where tau is the GMP cut value
of its trained weights at the sparsity in its own ``prune.sparsity`` and alpha is its
``record.alpha``. Its shed curve is the baseline for a pruned run only when both were trained and
retrained alike and count against the same line, so a control *matches* a pruned run when

* their ``model``, ``data``, ``train`` and ``retrain`` sections and their ``seed`` are the same
  (recording options and the device may differ), and
* the control's line is the run's first line: the control's ``prune.sparsity`` equals the sparsity
  of the run's first prune event (its planned target, which its tau is computed at: the run's
  ``prune.sparsity`` for one-shot pruning; the first round's for iterative pruning, 0.2 at 20% per
  round; the first cubic step for gradual pruning; the first trigger for cascade-aware pruning),
  within :data:`SPARSITY_TOLERANCE`, and their alphas are equal.

The later events of a run with several are compared with the control's only event (see
:mod:`shedding.analysis.cascade`), whose line is that of the run's first event. A run that no
control matches has none: it is never measured against a control of another sparsity, alpha, seed or
setting. Two controls that both match one run are an error, since either would do and the result
must not depend on which is taken.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import xarray as xr

SAME = (
    "model",
    "data",
    "train",
    "retrain",
    "seed",
)  # what a control shares with its runs, beside the line
SPARSITY_TOLERANCE = (
    1e-6  # a sparsity written to six decimals (1 - 0.8**2 as 0.36) is the same line
)
ALPHA_TOLERANCE = 1e-9  # relative


def _config(ds: xr.Dataset) -> dict[str, Any]:
    return dict(ds.attrs.get("config") or {})


def is_control(ds: xr.Dataset) -> bool:
    """True for a run recorded with prune method ``none`` (the store's ``control`` attribute)."""
    if "control" in ds.attrs:
        return bool(ds.attrs["control"])
    return (_config(ds).get("prune") or {}).get("method") == "none"


def setting_key(ds: xr.Dataset) -> str:
    """The model, data, training and retraining sections and the seed, as a canonical JSON
    string."""
    cfg = _config(ds)
    return json.dumps({k: cfg.get(k) for k in SAME}, sort_keys=True)


def line_sparsity(ds: xr.Dataset) -> float:
    """The sparsity whose GMP cut value draws the run's first line: a control's ``prune.sparsity``,
    a pruned run's first planned target (from its schedule:
    :func:`shedding.pruning.schedule.sparsity_targets`)."""
    prune = dict(_config(ds).get("prune") or {})
    if "sparsity" not in prune:
        raise ValueError(
            f"{ds.attrs.get('path', 'a run')}: its configuration has no prune.sparsity; "
            "it cannot be matched with a control"
        )
    if is_control(ds):
        return float(prune["sparsity"])
    from shedding.config import PruneConfig
    from shedding.pruning.schedule import sparsity_targets

    known = {f.name for f in dataclasses.fields(PruneConfig)}
    return float(sparsity_targets(PruneConfig(**{k: v for k, v in prune.items() if k in known}))[0])


def line_alpha(ds: xr.Dataset) -> float:
    """alpha of the run's recorded line (the store's ``alpha`` attribute, else its
    ``record.alpha``)."""
    return float(ds.attrs.get("alpha", (_config(ds).get("record") or {}).get("alpha", 1.0)))


def matches(run: xr.Dataset, control: xr.Dataset) -> bool:
    """Whether ``control`` is a control of ``run`` by the rule of the module docstring."""
    return (
        is_control(control)
        and not is_control(run)
        and setting_key(run) == setting_key(control)
        and math.isclose(
            line_sparsity(run), line_sparsity(control), rel_tol=0.0, abs_tol=SPARSITY_TOLERANCE
        )
        and math.isclose(line_alpha(run), line_alpha(control), rel_tol=ALPHA_TOLERANCE)
    )


def _where(name: str, ds: xr.Dataset) -> str:
    return str(ds.attrs.get("path") or name)


def match_controls(runs: dict[str, xr.Dataset]) -> dict[str, str | None]:
    """Run name -> the name of its one matching control, or None (for controls, and runs no control
    matches).

    Raises ValueError (one line, naming both stores) when two controls match the same run.
    """
    controls = {n: ds for n, ds in runs.items() if is_control(ds)}
    out: dict[str, str | None] = {}
    for name, ds in runs.items():
        if name in controls:
            out[name] = None
            continue
        found = [c for c, control in controls.items() if matches(ds, control)]
        if len(found) > 1:
            a, b = found[:2]
            raise ValueError(
                f"{_where(name, ds)}: two controls match it equally, {_where(a, controls[a])} and "
                f"{_where(b, controls[b])} (same setting, seed, line sparsity and alpha); "
                "analyze one of them"
            )
        out[name] = found[0] if found else None
    return out
