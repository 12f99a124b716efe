"""Random re-initialisation: a fresh random init of the pruned structure, the original schedule from
0."""

from __future__ import annotations

from shedding.retraining.techniques import TECHNIQUES, RetrainContext, RetrainPlan, Technique
from shedding.training.schedules import shifted


def plan(ctx: RetrainContext) -> RetrainPlan:
    """fresh init ⊙ m, LR at round step k = schedule(k)."""
    return RetrainPlan(start=ctx.fresh_init(), schedule=shifted(ctx.schedule, 0), schedule_offset=0)


TECHNIQUES.register("reinit")(Technique(plan, lambda T, t: {T}, needs_t_within_T=False))
