"""Weight rewinding: start from the original run's weights at T - t, replay the schedule from
there."""

from __future__ import annotations

from shedding.retraining.techniques import TECHNIQUES, RetrainContext, RetrainPlan, Technique
from shedding.training.schedules import shifted


def plan(ctx: RetrainContext) -> RetrainPlan:
    """theta_{T-t} ⊙ m (saved during the original run), LR at round step k = schedule(T - t + k)."""
    offset = ctx.T - ctx.t
    return RetrainPlan(
        start=ctx.checkpoints[offset],
        schedule=shifted(ctx.schedule, offset),
        schedule_offset=offset,
    )


TECHNIQUES.register("weight_rewind")(
    Technique(plan, lambda T, t: {T, T - t}, needs_t_within_T=True)
)
