"""Number formatting (reports.numbers): the one place the CLI's and the reports' tables and texts
write their numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shedding.cli.feedback import fmt
from shedding.reports.numbers import (
    MISSING,
    estimate,
    html_cell,
    interval,
    percent,
    scaled,
    text_cell,
    times,
)


@pytest.mark.parametrize(
    "v, expected",
    [
        (0.123456, "0.1235"),
        (12345.678, "1.235e+04"),
        (1.0, "1"),
        (-0.000123456, "-0.0001235"),
        (math.nan, "-"),
        (math.inf, "inf"),  # only NaN is missing in a text table
        (np.float64(0.5), "0.5"),
        (3, "3"),  # not a float: as text
        (True, "True"),
        ("cascade", "cascade"),
        (None, "None"),
    ],
)
def test_text_cell(v, expected):
    assert text_cell(v) == expected
    assert fmt(v) == expected  # the CLI's tables write their cells with it


@pytest.mark.parametrize(
    "v, expected",
    [
        (0.123456, "0.1235"),
        (math.nan, MISSING),
        (math.inf, MISSING),
        (np.float64(-2.5), "-2.5"),
        ((0.01234, 0.5678), "[0.0123, 0.568]"),
        ((math.nan, 0.5), MISSING),
        ((0.1, math.inf), MISSING),
        ((1, 2), "[1, 2]"),
        ("a<b & c", "a&lt;b &amp; c"),
        (7, "7"),
        ((1, 2, 3), "(1, 2, 3)"),  # not a pair: as text
    ],
)
def test_html_cell(v, expected):
    assert html_cell(v) == expected


def test_scaled_interval_and_estimate():
    assert scaled(0.012345) == "+0.012"
    assert scaled(0.012345, 100, "+.2f") == "+1.23"
    assert interval(-0.01, 0.02) == "[-0.010, +0.020]"
    assert interval(0.9, 0.92, 100, ".2f") == "[90.00, 92.00]"
    assert estimate(0.05, 0.01, 0.09) == "+0.050 [+0.010, +0.090]"
    assert estimate(0.05, math.nan, math.nan) == "+0.050"  # one seed: no CI
    assert estimate(-0.0123, -0.02, -0.004, 100, "+.2f") == "-1.23 [-2.00, -0.40]"
    assert estimate(1.5, 1.2, 1.8, spec=".3f") == "1.500 [1.200, 1.800]"


def test_percent_and_times():
    assert percent(0.9346) == "93.46%"
    assert percent(1.0) == "100.00%"
    assert percent(0.5, ".0f") == "50%"
    assert times(4.7684) == "4.77x"
    assert times(1 / 0.8**7) == "4.77x"
    assert times(12.0) == "12x"
    assert times(math.nan) == "none"
