"""Retraining-technique registry (Renda et al.; SCIENCE.md section 3). One module per technique.

A technique turns a :class:`RetrainContext` into a :class:`RetrainPlan`: the weights to start the round
from (before the mask is applied) and the learning rate for each of the round's steps. The mask is always
computed from the weights the round prunes (theta_T in round 0); momentum always starts empty.
"""

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
    schedule_offset: int | None  # step of the original schedule the round starts at (None: constant LR)


@dataclass(frozen=True)
class Technique:
    """A retraining technique: its planner and which original-run checkpoint steps it needs."""

    plan: Callable[[RetrainContext], RetrainPlan]
    checkpoints_needed: Callable[[int, int], set[int]]  # (T, t) -> steps
    needs_t_within_T: bool


TECHNIQUES: Registry[Technique] = Registry("retraining technique")

from shedding.retraining import finetune
from shedding.retraining import lr_rewind
from shedding.retraining import reinit
from shedding.retraining import weight_rewind
