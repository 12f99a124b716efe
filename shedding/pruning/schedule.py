"""Pruning schedules: when prune events happen, the sparsity each targets, and how retraining
follows them.

A schedule turns the :class:`~shedding.config.PruneConfig` into a list of :class:`Round`: one prune
event each, followed by ``length`` retraining steps. Registered schedules (a new one is a function
and one decorator line):

- ``oneshot``: one event to the target, then the retraining budget t.
- ``iterative``: each round removes ``fraction_per_round`` of the *remaining* weights (densities
  0.8, 0.64,
  0.512, ... for 20%), the last stopping at the target; every round is a full retraining of t steps
  from the technique's start weights (Renda et al.).
- ``gradual`` (Zhu & Gupta): ``gradual_events`` = n events every ``interval`` = dt steps inside one
  retraining phase of t steps (one optimizer, one LR schedule, no rewinding between events). Event j
  (0-based, at retraining step j*dt) prunes to s_f + (s_i - s_f)(1 - (j + 1)/n)^3, i.e. Zhu &
  Gupta's s_t with t0 one interval before the first event; the last event reaches s_f at step (n -
  1)*dt and the phase trains on to t.
- ``cascade`` (cascade-aware pruning; the cascade paper's promised use, our operationalisation): a
  trigger event prunes ``cascade_fraction`` of the remaining weights, the cascade runs for
  ``interval`` steps (same optimizer and LR schedule, weights not rewound), then the next event
  removes every weight shed below the previous event's line plus a new trigger, until the target
  sparsity; the event that reaches it is followed by a full retraining round of t steps as in
  one-shot. How many events that takes is known only while the run goes: :func:`cascade_target`
  decides each one, and the planned rounds are an upper bound (no weight shed at all: one trigger
  per event).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from shedding.config import PruneConfig
from shedding.registry import Registry


@dataclass(frozen=True)
class Round:
    """One prune event and the retraining steps after it."""

    # overall sparsity after the event (cascade: decided at the event, this is an upper bound)
    target: float
    length: int  # retraining steps after the event
    restart: (
        bool  # a new optimizer and the technique's LR schedule from its start (else both continue)
    )
    rewind: bool  # start from the technique's start weights (else keep the current weights)


ScheduleFn = Callable[[PruneConfig, int, int], list[Round]]  # (cfg, t, interval steps) -> rounds
SCHEDULES: Registry[ScheduleFn] = Registry("pruning schedule")
DYNAMIC = ("cascade",)  # schedules whose event count is decided during the run


def _geometric(sparsity: float, fraction: float) -> list[float]:
    """Targets removing ``fraction`` of the remaining weights per event, the last exactly at
    ``sparsity``."""
    target_density = 1.0 - sparsity
    # a target within rounding of the lattice (1 - 0.8**14 written to 6 decimals) takes no extra,
    # empty round
    rounds = max(1, math.ceil(math.log(target_density) / math.log(1.0 - fraction) - 1e-3))
    targets = [min(1.0 - (1.0 - fraction) ** (r + 1), sparsity) for r in range(rounds)]
    targets[-1] = sparsity  # exactly the target, not 1 - 0.8**r's rounding of it
    return targets


@SCHEDULES.register("oneshot")
def oneshot(cfg: PruneConfig, t: int, interval: int) -> list[Round]:
    """One event to the target, then t retraining steps."""
    return [Round(cfg.sparsity, t, True, True)]


@SCHEDULES.register("iterative")
def iterative(cfg: PruneConfig, t: int, interval: int) -> list[Round]:
    """``fraction_per_round`` of the remaining weights per round, each round a full retraining."""
    return [Round(s, t, True, True) for s in _geometric(cfg.sparsity, cfg.fraction_per_round)]


def gradual_targets(cfg: PruneConfig) -> list[float]:
    """Zhu & Gupta's cubic sparsities at the n events (the last is exactly the target)."""
    n, s_i, s_f = cfg.gradual_events, cfg.initial_sparsity, cfg.sparsity
    out = [s_f + (s_i - s_f) * (1.0 - (j + 1) / n) ** 3 for j in range(n)]
    out[-1] = s_f
    return out


@SCHEDULES.register("gradual")
def gradual(cfg: PruneConfig, t: int, interval: int) -> list[Round]:
    """n events every ``interval`` steps inside one retraining phase of t steps."""
    targets = gradual_targets(cfg)
    n = len(targets)
    lengths = [interval] * (n - 1) + [t - (n - 1) * interval]
    return [
        Round(s, length, j == 0, j == 0)
        for j, (s, length) in enumerate(zip(targets, lengths, strict=True))
    ]


@SCHEDULES.register("cascade")
def cascade(cfg: PruneConfig, t: int, interval: int) -> list[Round]:
    """The most rounds cascade-aware pruning can take (nothing shed): windows of ``interval``, then
    t."""
    targets = _geometric(cfg.sparsity, cfg.cascade_fraction)
    rounds = [Round(s, interval, j == 0, False) for j, s in enumerate(targets[:-1])]
    return rounds + [Round(cfg.sparsity, t, True, True)]


def cascade_target(sparsity: float, shed: int, total: int, cfg: PruneConfig) -> tuple[float, bool]:
    """The next cascade-aware event's sparsity and whether it is the last.

    ``sparsity`` is the current overall sparsity, ``shed`` how many survivors of the previous event
    are below its line now, ``total`` the number of prunable weights. The event removes the shed
    weights and a new trigger of ``cascade_fraction`` of what remains; it is the last when that
    reaches the target.
    """
    after_shed = sparsity + shed / total
    nxt = 1.0 - (1.0 - after_shed) * (1.0 - cfg.cascade_fraction)
    if nxt >= cfg.sparsity - 1e-12 or after_shed >= cfg.sparsity:
        return cfg.sparsity, True
    return nxt, False


def plan_rounds(cfg: PruneConfig, t: int, interval: int) -> list[Round]:
    """The rounds of ``cfg.schedule`` (the unpruned control is one round)."""
    if cfg.method == "none":
        return oneshot(cfg, t, interval)
    return SCHEDULES.get(cfg.schedule)(cfg, t, interval)


def sparsity_targets(cfg: PruneConfig) -> list[float]:
    """Overall sparsity after each planned event, ending exactly at ``cfg.sparsity``."""
    return [
        r.target for r in plan_rounds(cfg, 1, 1)
    ]  # the targets do not depend on the round lengths
