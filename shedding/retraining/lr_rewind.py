"""Learning-rate rewinding: start from the trained weights, replay the original schedule from T -
t."""

from __future__ import annotations

from shedding.retraining.techniques import TECHNIQUES, RetrainContext, RetrainPlan, Technique
from shedding.training.schedules import shifted


def plan(ctx: RetrainContext) -> RetrainPlan:
    """theta ⊙ m, LR at round step k = schedule(T - t + k)."""
    offset = ctx.T - ctx.t
    return RetrainPlan(
        start=ctx.trained, schedule=shifted(ctx.schedule, offset), schedule_offset=offset
    )


TECHNIQUES.register("lr_rewind")(Technique(plan, lambda T, t: {T}, needs_t_within_T=True))
