"""What a built-in run's configuration says about its identity in an analysis: its condition's name,
whether it is a control, and the sparsity whose GMP cut value draws its first line.

The trainer writes these as the store attributes ``condition``, ``control`` and ``line_sparsity``
(beside ``seed``); the analysis reads the attributes, and derives them with these same functions for
stores recorded before the attributes existed (:mod:`shedding.analysis.run_identity`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

CONTROL_METHOD = "none"  # the prune method of the built-in control


def config_is_control(config: Mapping[str, Any]) -> bool:
    """True when the configuration's prune method is ``none``: the built-in control."""
    return (config.get("prune") or {}).get("method") == CONTROL_METHOD


def config_condition(config: Mapping[str, Any], alpha: float) -> str:
    """A condition's short name: method (with its block shape), sparsity, schedule unless one-shot,
    retraining technique, and alpha unless 1; a control: ``control SPARSITY (TECHNIQUE)``."""
    p, r = config.get("prune") or {}, config.get("retrain") or {}
    suffix = "" if alpha == 1.0 else f", alpha {alpha:g}"
    sparsity = p.get("sparsity")
    shown = f"{sparsity:g}" if isinstance(sparsity, int | float) else str(sparsity)
    if p.get("method") == CONTROL_METHOD:
        return f"control {shown} ({r.get('technique')}{suffix})"
    sched = "" if p.get("schedule") == "oneshot" else f" {p.get('schedule')}"
    block = f" {p['block_shape'][0]}x{p['block_shape'][1]}" if p.get("method") == "block" else ""
    return f"{p.get('method')}{block} {shown}{sched}, {r.get('technique')}{suffix}"


def config_line_sparsity(config: Mapping[str, Any]) -> float | None:
    """The sparsity of the first line: a control's ``prune.sparsity``; a pruned run's first planned
    target (:func:`shedding.pruning.schedule.sparsity_targets`). None without ``prune.sparsity`` or
    a planned event."""
    prune = dict(config.get("prune") or {})
    if prune.get("sparsity") is None:
        return None
    if config_is_control(config):
        return float(prune["sparsity"])
    from shedding.config import PruneConfig
    from shedding.pruning.schedule import sparsity_targets

    known = {f.name for f in dataclasses.fields(PruneConfig)}
    targets = sparsity_targets(PruneConfig(**{k: v for k, v in prune.items() if k in known}))
    return float(targets[0]) if targets else None


def identity_attributes(config: Mapping[str, Any], alpha: float) -> dict[str, Any]:
    """The root attributes ``condition``, ``seed``, ``control`` and ``line_sparsity`` of a
    configuration (as :func:`shedding.config.to_dict` gives it) recorded with line factor
    ``alpha``."""
    return {
        "condition": config_condition(config, alpha),
        "seed": int(config.get("seed", 0)),
        "control": config_is_control(config),
        "line_sparsity": config_line_sparsity(config),
    }
