"""Test-only retraining techniques that fail on purpose (imported by the tests and preloaded by dask
workers).

``grid_test_broken`` raises at the third retraining step of every attempt (before any resume
checkpoint);
``grid_test_flaky`` raises once, in the second retraining epoch (after the first checkpoint), and
leaves a marker file in ``$SHEDDING_GRID_FAULTS`` so that its retry runs through. Otherwise both are
lr_rewind.
"""

from __future__ import annotations

import os
from pathlib import Path

from shedding.retraining import TECHNIQUES, RetrainContext, RetrainPlan, Technique, lr_rewind

FLAKY_STEP = (
    15  # digits: 12 steps per epoch, so the first retraining epoch's checkpoint exists by then
)
BROKEN_STEP = 2


def flaky_marker() -> Path:
    return Path(os.environ["SHEDDING_GRID_FAULTS"]) / "flaky-failed-once"


def _flaky(ctx: RetrainContext) -> RetrainPlan:
    plan = lr_rewind.plan(ctx)

    def schedule(k: int) -> float:
        if k == FLAKY_STEP and not flaky_marker().exists():
            flaky_marker().touch()
            raise RuntimeError("injected flaky failure")
        return plan.schedule(k)

    return RetrainPlan(plan.start, schedule, plan.schedule_offset)


def _broken(ctx: RetrainContext) -> RetrainPlan:
    plan = lr_rewind.plan(ctx)

    def schedule(k: int) -> float:
        if k == BROKEN_STEP:
            raise RuntimeError("injected failure\nsecond line")
        return plan.schedule(k)

    return RetrainPlan(plan.start, schedule, plan.schedule_offset)


for _name, _plan in (("grid_test_flaky", _flaky), ("grid_test_broken", _broken)):
    if _name not in TECHNIQUES:
        TECHNIQUES.register(_name)(Technique(_plan, lambda T, t: {T}, needs_t_within_T=True))
