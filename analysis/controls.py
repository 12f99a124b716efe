"""Which control a run is measured against: the one rule that ``analyze``, ``compare``, the reports
and the studies all use (docs/science.md#shedding: a cascade is only the excess of a run's shedding
over its control's).

A *control* is a run that prunes nothing and, during its retraining, counts the weights falling
under one line: alpha * tau, where tau is the GMP cut value of its weights at its line sparsity. The
built-in control is a run recorded with prune method ``none`` (its line sparsity is its own
``prune.sparsity``); a watched run is one when its store says ``control``. Which runs are
controls, their seeds and lines come from :func:`shedding.analysis.run_identity.run_identity`. A
control's shed curve is the baseline for a pruned run only when both were trained and retrained
alike and count against the same line, so a control *matches* a pruned run when

* their seeds are the same, and, when both are built-in runs, their ``model``, ``data``, ``train``
  and ``retrain`` sections too (recording options and the device may differ; runs without a
  configuration are taken to share their setting, which the user vouches for by analysing them
  together), and
* the control's line is the run's first line: the control's line sparsity equals the sparsity
  of the run's first prune event (its planned target, which its tau is computed at: the run's
  ``prune.sparsity`` for one-shot pruning; the first round's for iterative pruning, 0.2 at 20% per
  round; the first cubic step for gradual pruning; the first trigger for cascade-aware pruning),
  within :data:`SPARSITY_TOLERANCE` (not compared where either is unknown), and their alphas are
  equal.

The later events of a run with several are compared with the control's only event (see
:mod:`shedding.analysis.cascade`), whose line is that of the run's first event. A run that no
control matches has none: it is never measured against a control of another sparsity, alpha, seed or
setting. Two controls that both match one run are an error, since either would do and the result
must not depend on which is taken.
"""

from __future__ import annotations

import math

import xarray as xr

from shedding.analysis.run_identity import RunIdentity, run_identity, where

SPARSITY_TOLERANCE = (
    1e-6  # a sparsity written to six decimals (1 - 0.8**2 as 0.36) is the same line
)
ALPHA_TOLERANCE = 1e-9  # relative


def is_control(ds: xr.Dataset) -> bool:
    """True for a control run (:func:`shedding.analysis.run_identity.run_identity`)."""
    return run_identity(ds).control


def line_sparsity(ds: xr.Dataset) -> float | None:
    """The sparsity whose GMP cut value draws the run's first line: a control's own, a pruned run's
    first planned target (None when the store does not say)."""
    return run_identity(ds).line_sparsity


def _same_line(a: float | None, b: float | None) -> bool:
    return a is None or b is None or math.isclose(a, b, rel_tol=0.0, abs_tol=SPARSITY_TOLERANCE)


def identities_match(run: RunIdentity, control: RunIdentity) -> bool:
    """Whether a run of identity ``control`` is a control of one of identity ``run`` (the rule of
    the module docstring)."""
    return (
        control.control
        and not run.control
        and run.seed == control.seed
        and (run.setting is None or control.setting is None or run.setting == control.setting)
        and _same_line(run.line_sparsity, control.line_sparsity)
        and math.isclose(run.alpha, control.alpha, rel_tol=ALPHA_TOLERANCE)
    )


def matches(run: xr.Dataset, control: xr.Dataset) -> bool:
    """Whether ``control`` is a control of ``run`` by the rule of the module docstring."""
    return identities_match(run_identity(run), run_identity(control))


def match_controls(runs: dict[str, xr.Dataset]) -> dict[str, str | None]:
    """Run name -> the name of its one matching control, or None (for controls, and runs no control
    matches).

    Raises ValueError (one line, naming both stores) when two controls match the same run.
    """
    ids = {n: run_identity(ds) for n, ds in runs.items()}
    controls = [n for n, i in ids.items() if i.control]
    out: dict[str, str | None] = {}
    for name, ident in ids.items():
        if ident.control:
            out[name] = None
            continue
        found = [c for c in controls if identities_match(ident, ids[c])]
        if len(found) > 1:
            a, b = found[:2]
            raise ValueError(
                f"{where(runs[name], name)}: two controls match it equally, "
                f"{where(runs[a], a)} and {where(runs[b], b)} (same setting, seed, line sparsity "
                "and alpha); analyze one of them"
            )
        out[name] = found[0] if found else None
    return out
