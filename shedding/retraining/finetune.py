"""Fine-tuning: start from the trained weights, constant LR equal to the original schedule's last
LR."""

from __future__ import annotations

from shedding.retraining.techniques import TECHNIQUES, RetrainContext, RetrainPlan, Technique
from shedding.training.schedules import constant


def plan(ctx: RetrainContext) -> RetrainPlan:
    """theta ⊙ m, LR = schedule(T - 1) (or the configured fine-tuning LR) for every step."""
    lr = ctx.finetune_lr if ctx.finetune_lr >= 0 else ctx.schedule(ctx.T - 1)
    return RetrainPlan(start=ctx.trained, schedule=constant(lr), schedule_offset=None)


TECHNIQUES.register("finetune")(Technique(plan, lambda T, t: {T}, needs_t_within_T=False))
