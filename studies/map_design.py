"""The design of ``shedding study map``: which settings it runs (pure data, no I/O).

The full product of the factors would be tens of thousands of runs, so the map is a set of
*one-factor-at-a-time sweeps* around a base setting (each factor through its levels, the others
at the base) plus *2-factor crosses* (two factors through all their level pairs, the others at the
base) for the heatmaps. Every setting is run with GMP and random pruning and an unpruned control
(prune method ``none`` at the setting's sparsity, the line of both pruned runs) for every seed.

A *setting* is one value per :data:`FACTORS` entry; a *cell* is a setting and a pruning method.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

FACTORS = ("model", "optimizer", "weight_decay", "retrain_lr", "sparsity")
REWIND = 1.0  # retrain_lr of LR rewinding: the original schedule, here its high LR
LABELS = {
    "model": "architecture",
    "optimizer": "optimizer",
    "weight_decay": "weight decay (SGD-equivalent)",
    "retrain_lr": "retraining LR / training LR",
    "sparsity": "pruned fraction",
    "method": "pruning method",
}


@dataclass(frozen=True)
class OptimizerLevel:
    """An optimizer level: what it sets on the base configuration.

    ``lr_scale`` multiplies the base's training LR (Adam at 1% of SGD's 0.1: 0.001), ``momentum``
    replaces SGD's (None: keep), and ``decay_scale`` multiplies the weight-decay level, so that
    AdamW's decoupled decay shrinks a weight by the same lr * weight_decay per step as SGD at the
    same level (0.1 * 5e-4 = 0.001 * 0.05).
    """

    name: str
    optimizer: str
    lr_scale: float = 1.0
    momentum: float | None = None
    decay_scale: float = 1.0


OPTIMIZER_LEVELS = {
    o.name: o
    for o in (
        OptimizerLevel("sgd", "sgd"),
        OptimizerLevel("sgd_nomom", "sgd", momentum=0.0),
        OptimizerLevel("adam", "adam", lr_scale=0.01),
        OptimizerLevel("adamw", "adamw", lr_scale=0.01, decay_scale=100.0),
    )
}
DIGITS_FAMILY = (
    "small_cnn",
    "mlp",
    "digits_cnn_narrow",
    "digits_cnn_wide",
    "digits_cnn_nobn",
    "digits_resnet",
    "digits_mobilenet",
)

Setting = tuple[Any, ...]  # one value per FACTORS entry, in that order


@dataclass(frozen=True)
class MapFactors:
    """One run of the map: its setting, pruning method (``none``: the control) and seed."""

    model: str
    optimizer: str
    weight_decay: float
    retrain_lr: float
    sparsity: float
    method: str
    seed: int


@dataclass(frozen=True)
class MapGrid:
    """Factor levels of the map: the base setting, the sweeps, the crosses and the seeds.

    ``sweeps`` maps a factor to its levels (the base's level among them); ``crosses`` are pairs
    ``((factor, levels), (factor, levels))`` run as their full product. The model of the base is
    the configuration's own (``small_cnn`` on the digits setting).
    """

    base: dict[str, Any]
    sweeps: dict[str, tuple[Any, ...]]
    crosses: tuple[tuple[tuple[str, tuple[Any, ...]], tuple[str, tuple[Any, ...]]], ...]
    seeds: int
    methods: tuple[str, ...] = ("gmp", "random")
    window: str = "5ep"  # the cascade window after the prune event
    min_excess: float = 0.05  # a cascade: the mean peak excess reaches this, its CI above 0
    onset_excess: float = 0.01  # onset: the first step the excess reaches this
    retrain: str = "5ep"  # retraining budget t
    top: int = 15  # rows of the report's table of top cells
    notes: dict[str, str] = field(default_factory=dict)


BASE = {
    "model": "small_cnn",
    "optimizer": "sgd",
    "weight_decay": 5e-4,
    "retrain_lr": REWIND,
    "sparsity": 0.05,
}

QUICK = MapGrid(
    base=BASE,
    sweeps={
        "model": DIGITS_FAMILY,
        "optimizer": tuple(OPTIMIZER_LEVELS),
        "weight_decay": (0.0, 5e-4, 5e-3),
        "retrain_lr": (REWIND, 0.1, 0.01),
        "sparsity": (0.01, 0.05, 0.2, 0.5),
    },
    crosses=((("weight_decay", (0.0, 5e-4, 5e-3)), ("retrain_lr", (REWIND, 0.01))),),
    seeds=3,
)
FULL = MapGrid(
    base=BASE,
    sweeps={
        "model": DIGITS_FAMILY,
        "optimizer": tuple(OPTIMIZER_LEVELS),
        "weight_decay": (0.0, 5e-5, 5e-4, 2e-3, 5e-3),
        "retrain_lr": (REWIND, 0.3, 0.1, 0.01),
        "sparsity": (0.01, 0.05, 0.1, 0.2, 0.5),
    },
    crosses=(
        (("weight_decay", (0.0, 5e-5, 5e-4, 2e-3, 5e-3)), ("retrain_lr", (REWIND, 0.3, 0.1, 0.01))),
        (("optimizer", tuple(OPTIMIZER_LEVELS)), ("weight_decay", (0.0, 5e-4, 5e-3))),
        (("sparsity", (0.01, 0.05, 0.1, 0.2, 0.5)), ("retrain_lr", (REWIND, 0.1, 0.01))),
        (("model", DIGITS_FAMILY), ("sparsity", (0.01, 0.05, 0.2))),
    ),
    seeds=5,
    retrain="10ep",
)
TINY = MapGrid(
    base={**BASE, "sparsity": 0.2},
    sweeps={"sparsity": (0.2,)},
    crosses=(),
    seeds=2,
    window="round",
    retrain="2ep",
)


def settings(grid: MapGrid, base_model: str | None = None) -> list[Setting]:
    """The distinct settings of ``grid`` (sweeps first, then crosses), each a tuple over
    :data:`FACTORS`; ``base_model`` replaces the base's model (and joins the model levels)."""
    base = {**grid.base, **({"model": base_model} if base_model else {})}
    out: dict[Setting, None] = {tuple(base[f] for f in FACTORS): None}
    for factor, levels in grid.sweeps.items():
        for v in _with_base(levels, grid.base[factor], base[factor]):
            out[tuple({**base, factor: v}[f] for f in FACTORS)] = None
    for (fa, la), (fb, lb) in grid.crosses:
        la, lb = _with_base(la, grid.base[fa], base[fa]), _with_base(lb, grid.base[fb], base[fb])
        for va, vb in itertools.product(la, lb):
            out[tuple({**base, fa: va, fb: vb}[f] for f in FACTORS)] = None
    return list(out)


def _with_base(levels: tuple[Any, ...], grid_base: Any, base: Any) -> tuple[Any, ...]:
    """``levels``, led by the actual base when it is not the grid's (the configuration's own
    model)."""
    return levels if base == grid_base else tuple(dict.fromkeys((base, *levels)))


def setting_label(setting: Setting) -> str:
    """A short unique label of a setting: ``small_cnn.sgd.wd0.0005.lr1.sp0.05``."""
    m, o, wd, lr, sp = setting
    return f"{m}.{o}.wd{wd:g}.lr{lr:g}.sp{sp:g}"


def level_text(factor: str, value: Any) -> str:
    """A factor level as the report writes it (LR rewinding as ``rewind (x1)``)."""
    if factor == "retrain_lr":
        return "rewind (x1)" if value == REWIND else f"finetune x{value:g}"
    return f"{value:g}" if isinstance(value, float) else str(value)
