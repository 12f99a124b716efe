"""The condition verdict: whether a condition (its seeds) shows a cascade, the one rule that
``shedding analyze`` and the cascade study both apply.

Ours (docs/science.md#shedding): a condition shows a cascade when the mean over seeds of the peak
excess S_run - S_control reaches ``min_excess`` and its 95% bootstrap CI lies above 0. With one seed
there is no CI: the mean alone decides, flagged as such. A condition whose runs are not all matched
with a control has no verdict ("no control").
"""

from __future__ import annotations


def condition_verdict(
    mean: float, low: float, seeds: int, min_excess: float, has_control: bool
) -> str:
    """The verdict of a condition from the mean peak excess over its ``seeds`` and the CI's lower
    bound ``low``.

    Returns ``cascade``, ``no cascade``, either with `` (1 seed, no CI)`` appended when
    ``seeds < 2``, or ``no control`` when ``has_control`` is false (every run needs its control).
    """
    if not has_control:
        return "no control"
    if seeds < 2:
        return ("cascade" if mean >= min_excess else "no cascade") + " (1 seed, no CI)"
    return "cascade" if mean >= min_excess and low > 0 else "no cascade"
