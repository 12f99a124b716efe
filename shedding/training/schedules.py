"""Learning-rate schedules as pure functions of the global step (OpenLTH style).

A schedule maps the 0-based index of an optimizer step to the learning rate used by that step.
Retraining techniques reuse the original schedule shifted by an offset (see :func:`shifted`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from shedding.config import TrainConfig, parse_step

LRSchedule = Callable[[int], float]


@dataclass(frozen=True)
class ScheduleSpec:
    """A resolved schedule: every length in iterations.

    Warm-up: step ``k < warmup`` (0-based) trains at ``lr(k) * (k + 1) / warmup``, so the first step
    uses
    ``lr / warmup`` and step ``warmup - 1`` the full rate. OpenLTH's warm-up starts at 0 instead
    (``lr * k / warmup``); both ramp linearly over ``warmup`` steps.
    """

    kind: str
    lr: float
    total: int
    milestones: tuple[int, ...] = ()
    step_size: int = 0
    gamma: float = 0.1
    warmup: int = 0

    def __call__(self, step: int) -> float:
        lr = self.lr
        if self.kind == "constant":
            pass
        elif self.kind == "multistep":
            lr *= self.gamma ** sum(step >= m for m in self.milestones)
        elif self.kind == "step":
            lr *= self.gamma ** (step // self.step_size)
        elif self.kind == "cosine":
            start = self.warmup
            span = max(self.total - start, 1)
            progress = min(max(step - start, 0) / span, 1.0)
            lr *= 0.5 * (1.0 + math.cos(math.pi * progress))
        else:  # pragma: no cover - validated earlier
            raise ValueError(self.kind)
        if self.warmup and step < self.warmup:
            lr *= (step + 1) / self.warmup
        return lr


SCHEDULE_KINDS = ("constant", "step", "multistep", "cosine")


def build_schedule(cfg: TrainConfig, iterations_per_epoch: int) -> ScheduleSpec:
    """Resolve ``cfg``'s schedule (step strings included) for a given epoch length."""
    ipe = iterations_per_epoch
    return ScheduleSpec(
        kind=cfg.schedule,
        lr=cfg.lr,
        total=parse_step(cfg.duration, "train.duration").iterations(ipe),
        milestones=tuple(parse_step(m, "train.milestones").iterations(ipe) for m in cfg.milestones),
        step_size=parse_step(cfg.step_size, "train.step_size").iterations(ipe),
        gamma=cfg.gamma,
        warmup=parse_step(cfg.warmup, "train.warmup").iterations(ipe),
    )


def shifted(schedule: LRSchedule, offset: int) -> LRSchedule:
    """The schedule as seen from step ``offset`` on: ``shifted(s, o)(k) == s(o + k)``."""
    return lambda k: schedule(offset + k)


def constant(lr: float) -> LRSchedule:
    """A constant learning rate."""
    return lambda k: lr
