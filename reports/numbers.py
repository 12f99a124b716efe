"""How numbers are written: the cells of the CLI's and the reports' tables, confidence intervals,
p-values, compressions and percentages. Every table and text of the package formats its numbers
here.

The reports' rule (:func:`cell_text`): three significant figures in positional notation (never
``1.2e-05``), a true minus sign, an explicit ``+`` where a column holds signed quantities, ``—``
for anything missing (None, NaN, an interval without its bounds), p-values below 1e-6 as
``< 1e-6``, and an interval with the same number of decimals as its estimate.
"""

from __future__ import annotations

import html
import math
from typing import NamedTuple

import numpy as np

MISSING = "—"  # a number a report's table does not have (NaN, or an interval without its bounds)
MINUS = "\u2212"  # the minus sign of a formatted number (not the hyphen)
TINY_P = 1e-6  # p-values below this are written TINY_P_TEXT
TINY_P_TEXT = "< 1e-6"
PLACEHOLDERS = ("", "nan", "NaN", "None", "null", "-1")  # texts for "nothing": written MISSING
MAX_DECIMALS = 12  # a number smaller than 1e-12 in magnitude is written 0


class PValue(float):
    """A float that is a p-value: a table writes it with :func:`pvalue`."""


class Estimate(NamedTuple):
    """A value with its confidence interval: a table writes it with :func:`with_ci`."""

    value: float
    low: float
    high: float


def _finite(v: object) -> bool:
    """Whether ``v`` is a real number (not a bool) that is finite."""
    return (
        isinstance(v, (int, float, np.integer, np.floating))
        and not isinstance(v, (bool, np.bool_))
        and bool(np.isfinite(v))
    )


def decimals(v: float, digits: int = 3) -> int:
    """The decimals that write ``v`` with ``digits`` significant figures (none for a number with at
    least ``digits`` integer digits; 0 for 0)."""
    if not _finite(v) or v == 0:
        return 0
    exp = math.floor(math.log10(abs(v)))
    places = digits - 1 - exp
    if places > 0 and round(abs(v), places) >= 10 ** (exp + 1):  # 0.0009996 rounds to 0.00100
        places -= 1
    return max(0, min(places, MAX_DECIMALS))


def number(v: object, signed: bool = False, places: int | None = None) -> str:
    """``v`` with three significant figures (``places`` decimals when given), positional notation,
    a true minus sign and, when ``signed``, a ``+`` before a positive number; integers as they are;
    :data:`MISSING` when ``v`` is not a finite number."""
    if not _finite(v):
        return MISSING
    if isinstance(v, (int, np.integer)):
        text = str(abs(int(v)))
        negative, zero = v < 0, v == 0
    else:
        f = float(v)  # type: ignore[arg-type]
        d = decimals(f) if places is None else places
        text = f"{abs(f):.{d}f}"
        zero = float(text) == 0
        text = "0" if zero and places is None else text  # smaller than 1e-12: 0
        negative = f < 0 and not zero
    if negative:
        return MINUS + text
    return ("+" + text) if signed and not zero else text


def pvalue(p: float) -> str:
    """A p-value: ``< 1e-6`` below 1e-6, else three significant figures; :data:`MISSING` if not
    finite."""
    if not _finite(p):
        return MISSING
    return TINY_P_TEXT if p < TINY_P else number(p)


def ci_pair(value: float, low: float, high: float, signed: bool = False) -> tuple[str, str]:
    """(value, ``[low, high]``) with one number of decimals for all three: three significant
    figures of the largest in magnitude. The interval is empty when a bound is not finite (one
    seed: no CI)."""
    if not (_finite(low) and _finite(high)):
        return number(value, signed), ""
    finite = [abs(float(x)) for x in (value, low, high) if _finite(x)]  # type: ignore[arg-type]
    d = decimals(max(finite))
    bounds = f"[{number(low, signed, d)}, {number(high, signed, d)}]"
    return (number(value, signed, d) if _finite(value) else ""), bounds


def with_ci(value: float, low: float, high: float, signed: bool = False) -> str:
    """``value [low, high]`` as :func:`ci_pair` writes them (the value alone without a CI, the
    interval alone without a value)."""
    return " ".join(t for t in ci_pair(value, low, high, signed) if t) or MISSING


def is_number(v: object) -> bool:
    """Whether a table writes ``v`` as a number (right-aligned, sortable by value)."""
    if isinstance(v, (bool, np.bool_)):
        return False
    return isinstance(v, (int, float, np.integer, np.floating, Estimate)) or (
        isinstance(v, tuple) and len(v) == 2
    )


def sort_value(v: object) -> float | None:
    """The number a table sorts ``v`` by (an estimate by its value, an interval by its low
    bound); None when it has none."""
    if isinstance(v, Estimate):
        v = v.value
    elif isinstance(v, tuple) and len(v) == 2:
        v = v[0]
    return float(v) if _finite(v) else None  # type: ignore[arg-type]


def negative(v: object) -> bool:
    """Whether ``v`` (a number, an estimate or an interval) holds a negative number, so that its
    column is written with signs."""
    parts = v if isinstance(v, tuple) else (v,)
    return any(_finite(x) and float(x) < 0 for x in parts)  # type: ignore[arg-type]


def cell_text(v: object, signed: bool = False) -> str:
    """A table cell by the reports' rule (see the module docstring): a :class:`PValue`, an
    :class:`Estimate`, a (low, high) interval, a number, a bool as yes/no, else the text itself;
    None, NaN and placeholder texts ("nan", "None", "null", "-1", empty) as :data:`MISSING`."""
    if v is None:
        return MISSING
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, PValue):
        return pvalue(v)
    if isinstance(v, Estimate):
        return with_ci(v.value, v.low, v.high, signed)
    if isinstance(v, tuple) and len(v) == 2:
        return with_ci(math.nan, v[0], v[1], signed) if all(map(_finite, v)) else MISSING
    if isinstance(v, (int, float, np.integer, np.floating)):
        return number(v, signed)
    text = str(v)
    return MISSING if text.strip() in PLACEHOLDERS else text


def html_cell(v: object, signed: bool = False) -> str:
    """An HTML table cell: :func:`cell_text`, escaped."""
    return html.escape(cell_text(v, signed))


def scaled(v: float, scale: float = 1.0, spec: str = "+.3f") -> str:
    """``scale * v`` in the format ``spec`` (``v`` itself when ``scale`` is 1)."""
    return format(v if scale == 1.0 else scale * v, spec)


def interval(low: float, high: float, scale: float = 1.0, spec: str = "+.3f") -> str:
    """A confidence interval, ``[low, high]``, each bound :func:`scaled`."""
    return f"[{scaled(low, scale, spec)}, {scaled(high, scale, spec)}]"


def estimate(value: float, low: float, high: float, scale: float = 1.0, spec: str = "+.3f") -> str:
    """``value [low, high]``, each :func:`scaled`; the value alone when ``low`` is not finite (one
    seed: no CI)."""
    ci = f" {interval(low, high, scale, spec)}" if np.isfinite(low) else ""
    return f"{scaled(value, scale, spec)}{ci}"


def percent(v: float, spec: str = ".2f") -> str:
    """A fraction as a percentage: ``0.9346`` is ``93.46%``."""
    return f"{scaled(v, 100, spec)}%"


def times(v: float) -> str:
    """A compression factor to 3 significant figures, ``4.77x``; ``none`` when there is none
    (NaN)."""
    if not np.isfinite(v):
        return "none"
    return f"{v:.0f}x" if abs(v) >= 1000 else f"{v:.3g}x"
