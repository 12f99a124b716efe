"""Azarian & Porikli (2021): shedding with and without the conditions that cause it, random pruning
with and without a cascade against GMP, and whether random pruning's kept set converges towards
GMP's.

Every condition has its own unpruned control per seed and sparsity (same training and retraining,
prune method
``none``): retraining alone sheds, so only the excess over that control can show a cascade
(docs/science.md#shedding).

A second part compares cascade-aware pruning (``--prune-schedule cascade``) with one-shot and
iterative GMP at the same final sparsity, in accuracy and in training steps.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shedding.config import RunConfig
from shedding.recipes import RECIPES
from shedding.studies.study_base import GridRun, Study, copy_config, seeds_of
from shedding.studies.study_registry import STUDIES


@dataclass(frozen=True)
class Condition:
    """A retraining condition: what it changes in the base configuration (None: keep the base's
    value)."""

    name: str
    description: str
    expectation: str  # what docs/science.md#shedding leads us to expect
    optimizer: str | None = None
    lr: float | None = None
    weight_decay: float | None = None
    technique: str | None = None
    finetune_lr: float | None = None

    def apply(self, cfg: RunConfig) -> None:
        """Set the condition's values on ``cfg``."""
        if self.optimizer is not None:
            cfg.train.optimizer = self.optimizer
        if self.lr is not None:
            cfg.train.lr = self.lr
        if self.weight_decay is not None:
            cfg.train.weight_decay = self.weight_decay
        if self.technique is not None:
            cfg.retrain.technique = self.technique
        if self.finetune_lr is not None:
            cfg.retrain.finetune_lr = self.finetune_lr


HIGH_LR = Condition(
    "sgd_high_lr",
    "SGD with weight decay at the base's high LR, LR rewinding (digits: constant LR "
    "0.1, weight decay 5e-4)",
    expectation="sheds (docs/science.md#shedding)",
)
SMALL_LR = Condition(
    "sgd_small_lr",
    "SGD with weight decay, fine-tuned at a small constant LR 0.001",
    expectation="little shedding (docs/science.md#shedding)",
    technique="finetune",
    finetune_lr=1e-3,
)
ADAM = Condition(
    "adam",
    "Adam (LR 0.001, the base's L2 weight decay) for training and retraining, LR rewinding",
    expectation="not stated: shedding depends on the optimizer",
    optimizer="adam",
    lr=1e-3,
)
CONDITIONS = (HIGH_LR, SMALL_LR, ADAM)


@dataclass(frozen=True)
class CascadeGrid:
    """Factor levels of the cascade study."""

    conditions: tuple[Condition, ...]
    methods: tuple[str, ...]  # pruned methods; the control (none) is always added
    sparsities: tuple[float, ...]
    seeds: int
    window: str = "5ep"  # the cascade window after the prune event
    min_excess: float = (
        0.05  # a cascade when the excess over the control reaches this within the window
    )
    aware_sparsity: float = 0.8  # cascade-aware part: the final sparsity of every schedule compared
    aware_schedules: tuple[str, ...] = ("oneshot", "iterative", "cascade")


QUICK = CascadeGrid(
    conditions=CONDITIONS,
    methods=("gmp", "random"),
    sparsities=(0.2, 0.5),
    seeds=3,
    aware_sparsity=0.5,
)  # iterative: 4 rounds of t; cascade-aware: at most 13 windows + t
FULL = CascadeGrid(
    conditions=CONDITIONS, methods=("gmp", "random"), sparsities=(0.2, 0.5, 0.8), seeds=5
)

TINY = CascadeGrid(
    conditions=(HIGH_LR, SMALL_LR),
    methods=("gmp", "random"),
    sparsities=(0.5,),
    seeds=2,
    window="1ep",
    aware_sparsity=0.36,
)


@dataclass(frozen=True)
class CascadeFactors:
    """One run of the cascade study."""

    # main: conditions x methods; aware: cascade-aware pruning against one-shot and iterative GMP
    part: str
    condition: str
    method: str  # gmp, random or none (the control)
    sparsity: float
    schedule: str
    seed: int


class Cascade(Study):
    name = "cascade"
    title = "Cascade weight shedding (Azarian & Porikli 2021)"
    paper = (
        "Azarian, Porikli: Cascade Weight Shedding in Deep Neural Networks: Benefits and Pitfalls "
        "for Network Pruning (arXiv 2103.10629, 2021)"
    )
    sizes = {"quick": QUICK, "full": FULL, "tiny": TINY}
    question = (
        "Shedding with and without the conditions that cause it, random pruning with and without a "
        "cascade against GMP, and the convergence of random pruning's kept set towards GMP's"
    )

    def setting(self, size: str) -> RunConfig:
        cfg = RECIPES.get(
            "digits"
        )()  # the demo's setting: SGD 0.9, constant LR 0.1, wd 5e-4, LR rewinding
        cfg.retrain.duration = "40ep" if size == "full" else "10ep"
        self.recording(cfg)
        return cfg

    def recording(self, cfg: RunConfig) -> None:
        """Per-step shed counts (always) and sparse magnitude snapshots for the kept-set
        convergence."""
        super().recording(cfg)
        cfg.record.every = 4
        cfg.record.dtype = "float16"

    def runs(self, base: RunConfig, grid: CascadeGrid) -> list[GridRun]:
        out = []
        methods = (*grid.methods, "none")
        for cond, sparsity, method, seed in itertools.product(
            grid.conditions, grid.sparsities, methods, seeds_of(grid.seeds)
        ):
            cfg = copy_config(base)
            cond.apply(cfg)
            cfg.seed = seed
            cfg.prune.method = method
            cfg.prune.schedule = "oneshot"
            cfg.prune.sparsity = sparsity
            f = CascadeFactors("main", cond.name, method, sparsity, "oneshot", seed)
            out.append(GridRun(f"{cond.name}-{method}-sp{sparsity:g}-s{seed}", f, cfg))
        for schedule, seed in itertools.product(grid.aware_schedules, seeds_of(grid.seeds)):
            cfg = copy_config(base)
            grid.conditions[0].apply(cfg)
            cfg.seed = seed
            cfg.prune.method = "gmp"
            cfg.prune.schedule = schedule
            cfg.prune.sparsity = grid.aware_sparsity
            f = CascadeFactors(
                "aware", grid.conditions[0].name, "gmp", grid.aware_sparsity, schedule, seed
            )
            out.append(GridRun(f"aware-{schedule}-sp{grid.aware_sparsity:g}-s{seed}", f, cfg))
        return out

    def analyze(self, runs: Any, grid: Any) -> Any:
        from shedding.studies.cascade_results import cascade_results

        return cascade_results(runs, window=grid.window, min_excess=grid.min_excess)

    def report(self, results: Any, out: Path, context: dict[str, Any]) -> Path:
        from shedding.studies.cascade_report import write_cascade_report

        return write_cascade_report(results, out, context)

    def table(self, results: Any) -> list[dict[str, Any]]:
        from shedding.studies.cascade_results import cascade_table

        return cascade_table(results)


STUDIES.register("cascade")(Cascade())
