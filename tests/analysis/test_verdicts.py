"""The condition verdict (analysis.verdicts): one rule, checked case by case against hand-computed
expectations, and applied the same way by ``shedding analyze`` and the cascade study."""

from __future__ import annotations

import math

import pytest

from shedding.analysis.verdicts import condition_verdict

NAN = math.nan


@pytest.mark.parametrize(
    "mean, low, seeds, min_excess, has_control, expected",
    [
        # several seeds: the mean reaches the threshold and the CI's lower bound is above 0
        (0.08, 0.02, 3, 0.05, True, "cascade"),
        (0.05, 0.001, 2, 0.05, True, "cascade"),  # the threshold itself counts (>=)
        (0.08, 0.0, 3, 0.05, True, "no cascade"),  # a CI touching 0 is not above it
        (0.08, -0.01, 3, 0.05, True, "no cascade"),
        (0.049, 0.02, 3, 0.05, True, "no cascade"),  # below the threshold
        (0.08, NAN, 3, 0.05, True, "no cascade"),  # no CI: nothing lies above 0
        (-0.2, -0.3, 5, 0.05, True, "no cascade"),
        # one seed: no CI, the mean alone decides, flagged
        (0.06, NAN, 1, 0.05, True, "cascade (1 seed, no CI)"),
        (0.05, NAN, 1, 0.05, True, "cascade (1 seed, no CI)"),
        (0.04, NAN, 1, 0.05, True, "no cascade (1 seed, no CI)"),
        (0.06, -1.0, 1, 0.05, True, "cascade (1 seed, no CI)"),  # a bound is ignored
        # without every run's control there is no verdict, whatever the numbers
        (0.5, 0.4, 3, 0.05, False, "no control"),
        (0.5, NAN, 1, 0.05, False, "no control"),
        (NAN, NAN, 0, 0.05, False, "no control"),
        # the threshold is a parameter
        (0.02, 0.01, 2, 0.01, True, "cascade"),
        (0.02, 0.01, 2, 0.03, True, "no cascade"),
    ],
)
def test_condition_verdict(mean, low, seeds, min_excess, has_control, expected):
    assert condition_verdict(mean, low, seeds, min_excess, has_control) == expected


def test_a_missing_mean_is_never_a_cascade():
    assert condition_verdict(NAN, NAN, 3, 0.05, True) == "no cascade"
    assert condition_verdict(NAN, NAN, 1, 0.05, True) == "no cascade (1 seed, no CI)"


def test_the_study_table_applies_the_rule_to_its_means():
    """The cascade study's condition row: the verdict from its own mean and CI columns."""
    import numpy as np
    import xarray as xr

    from shedding.studies.cascade_results import _condition_row

    n = 3
    ds = xr.Dataset(
        {
            v: ("run", np.array(values, dtype=float))
            for v, values in {
                "excess_peak": [0.07, 0.08, 0.09],
                "amplification": [2.0, 2.0, 2.0],
                "final_excess": [0.0, 0.0, 0.0],
                "peak_shed_fraction": [0.1, 0.1, 0.1],
                "control_peak_shed_fraction": [0.02, 0.02, 0.02],
                "final_accuracy": [0.9, 0.9, 0.9],
            }.items()
        }
        | {"pruned_accuracy": (("run", "round"), np.full((n, 1), 0.5))},
        coords={"run": ["a", "b", "c"]},
    )
    row = _condition_row(ds, ("sgd_high_lr", 0.5, "random"), ["a", "b", "c"], n, 0.05)
    assert row["excess_peak"] == pytest.approx(0.08)
    assert 0 < row["excess_peak_low"] <= 0.08 <= row["excess_peak_high"]
    assert row["verdict"] == "cascade"
    assert _condition_row(ds, ("c", 0.5, "random"), ["a", "b", "c"], 2, 0.05)["verdict"] == (
        "no control"
    )
    assert _condition_row(ds, ("c", 0.5, "random"), ["a", "b", "c"], 3, 0.1)["verdict"] == (
        "no cascade"
    )
