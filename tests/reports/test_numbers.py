"""Number formatting (reports.numbers): the one place the CLI's and the reports' tables and texts
write their numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shedding.cli.feedback import fmt
from shedding.reports.numbers import (
    MISSING,
    Estimate,
    PValue,
    cell_text,
    ci_pair,
    decimals,
    estimate,
    html_cell,
    interval,
    is_number,
    negative,
    number,
    percent,
    pvalue,
    scaled,
    sort_value,
    times,
    with_ci,
)


@pytest.mark.parametrize(
    "v, key, expected",
    [
        (0.123456, "", "0.123"),
        (12345.678, "", "12346"),
        (-0.000123456, "", "−0.000123"),
        (math.nan, "", MISSING),
        (None, "", MISSING),
        (0.0127, "excess_peak", "+0.0127"),  # an excess carries its sign
        (0.0127, "peak_S", "0.0127"),
        (-1, "onset_step", MISSING),  # no onset
        (-1, "", "−1"),  # outside a step column, -1 is a number
        (120, "peak_step", "120"),
        ("cascade", "", "cascade"),
    ],
)
def test_the_cli_tables_write_cells_by_the_reports_rule(v, key, expected):
    assert fmt(v, key) == expected


@pytest.mark.parametrize(
    "v, expected",
    [
        (0.123456, "0.123"),
        (math.nan, MISSING),
        (math.inf, MISSING),
        (None, MISSING),
        (np.float64(-2.5), "−2.50"),
        (-8.744e-05, "−0.0000874"),  # positional, never 8.7e-05
        (4.2751e-07, "0.000000428"),
        (0.001268, "0.00127"),
        (0.0009996, "0.00100"),  # rounding up to the next decade keeps 3 figures
        (254.3, "254"),
        (12345.678, "12346"),  # integer digits are never rounded away
        (0.0, "0"),
        (7, "7"),
        (-1, "−1"),  # an integer is written as it is; -1 as "none" is the caller's to map
        (np.int64(3), "3"),
        (True, "yes"),
        ((0.01234, 0.5678), "[0.012, 0.568]"),  # bounds alone: decimals of the larger
        ((math.nan, 0.5), MISSING),
        ((0.1, math.inf), MISSING),
        ("a<b & c", "a&lt;b &amp; c"),
        ("nan", MISSING),
        ("None", MISSING),
        ("null", MISSING),
        ("-1", MISSING),
        ("none", "none"),  # a real name (the control's pruning method), not a placeholder
        ((1, 2, 3), "(1, 2, 3)"),  # not a pair: as text
    ],
)
def test_html_cell(v, expected):
    assert html_cell(v) == expected


@pytest.mark.parametrize(
    "v, expected",
    [(0.0127, "+0.0127"), (-0.0127, "−0.0127"), (0.0, "0"), (3, "+3"), (1e-20, "0")],
)
def test_signed_numbers_carry_their_sign(v, expected):
    assert number(v, signed=True) == expected
    assert cell_text(v, signed=True) == expected


def test_p_values():
    assert pvalue(8.938e-07) == "< 1e-6" and cell_text(PValue(4.275e-07)) == "< 1e-6"
    assert pvalue(3.53e-05) == "0.0000353" and pvalue(0.00188) == "0.00188"
    assert pvalue(1.0) == "1.00" and pvalue(math.nan) == MISSING


def test_an_interval_is_written_like_its_estimate():
    assert with_ci(0.001268, 0.000984, 0.00177) == "0.00127 [0.00098, 0.00177]"
    assert with_ci(0.1206, 0.0985, 0.142) == "0.121 [0.099, 0.142]"
    assert with_ci(-0.00083, -0.00512, 0.00249, signed=True) == ("−0.00083 [−0.00512, +0.00249]")
    assert with_ci(0.05, math.nan, math.nan, signed=True) == "+0.0500"  # one seed: no CI
    assert cell_text(Estimate(0.1206, 0.0985, 0.142)) == "0.121 [0.099, 0.142]"
    assert ci_pair(60.0, 60.0, 60.0) == ("60.0", "[60.0, 60.0]")


def test_sorting_and_sign_helpers():
    assert sort_value(Estimate(0.5, 0.1, 0.9)) == 0.5 and sort_value((0.2, 0.4)) == 0.2
    assert sort_value(math.nan) is None and sort_value("x") is None
    assert negative((-0.1, 0.2)) and negative(Estimate(0.1, -0.2, 0.3)) and not negative(0.0)
    assert is_number(PValue(0.5)) and is_number(Estimate(1, 0, 2)) and not is_number(True)
    assert decimals(0.001268) == 5 and decimals(254.3) == 0 and decimals(0) == 0


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
    assert times(12345.0) == "12345x"  # never 1.23e+04x
