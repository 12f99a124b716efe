"""How numbers are written: the cells of the CLI's and the reports' tables, confidence intervals,
compressions and percentages. Every table and text of the package formats its numbers here.
"""

from __future__ import annotations

import html

import numpy as np

MISSING = "—"  # a number a report's table does not have (NaN, or an interval without its bounds)


def text_cell(v: object) -> str:
    """A plain-text table cell (the CLI's tables): floats to 4 significant figures, NaN as "-"."""
    if isinstance(v, float):
        return "-" if v != v else f"{v:.4g}"
    return str(v)


def html_cell(v: object) -> str:
    """An HTML table cell: floats to 4 significant figures, a (low, high) pair as an interval to 3,
    anything else as escaped text; a float or a bound that is not finite is :data:`MISSING`."""
    if isinstance(v, float):
        return MISSING if not np.isfinite(v) else f"{v:.4g}"
    if isinstance(v, tuple) and len(v) == 2:
        lo, hi = v
        if not (np.isfinite(lo) and np.isfinite(hi)):
            return MISSING
        return interval(lo, hi, spec=".3g")
    return html.escape(str(v))


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
    return "none" if not np.isfinite(v) else f"{v:.3g}x"
