"""The retraining-technique registry and the types a technique uses (see
:mod:`shedding.retraining`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from shedding.registry import Registry
from shedding.training.schedules import LRSchedule, ScheduleSpec

StateDict = dict[str, torch.Tensor]


@dataclass
class RetrainContext:
    """Everything a technique may need to plan one round."""

    trained: StateDict  # the weights this round prunes: theta_T, or the previous round's result
    checkpoints: dict[int, StateDict]  # the original run's checkpoints by step (T included)
    schedule: ScheduleSpec  # the original training schedule
    T: int  # original training length, iterations
    t: int  # retraining budget of this round, iterations
    finetune_lr: float  # negative: the schedule's last LR
    fresh_init: Callable[[], StateDict]  # a new random initialisation (reinit)


@dataclass
class RetrainPlan:
    """Start weights (unmasked) and per-step learning rate of one retraining round."""

    start: StateDict
    schedule: LRSchedule
    schedule_offset: (
        int | None
    )  # step of the original schedule the round starts at (None: constant LR)


@dataclass(frozen=True)
class Technique:
    """A retraining technique: its planner and which original-run checkpoint steps it needs."""

    plan: Callable[[RetrainContext], RetrainPlan]
    checkpoints_needed: Callable[[int, int], set[int]]  # (T, t) -> steps
    needs_t_within_T: bool


TECHNIQUES: Registry[Technique] = Registry("retraining technique")
