"""Renda et al. (2020): accuracy against compression for fine-tuning, weight rewinding and LR
rewinding, one-shot and iterative, across retraining budgets t.

One-shot runs prune once to each sparsity; an iterative run prunes ``iterative_fraction`` of the
remaining weights per round up to ``iterative_sparsity`` and every round is a point (its sparsity
and its accuracy at the round's end).
Compressions are on Renda's lattice 1/0.8^k (1.95x, 4.77x, 9.31x, 22.7x, ...).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shedding.config import RunConfig
from shedding.recipes import RECIPES
from shedding.studies.study_base import GridRun, Study, copy_config, fraction_of, seeds_of
from shedding.studies.study_registry import STUDIES


def density_lattice(*k: int) -> tuple[float, ...]:
    """Sparsities 1 - 0.8^k (compression 1/0.8^k), Renda's lattice. Not rounded: an iterative
    schedule of
    1 - 0.8^j per round then ends exactly on it (a rounded target can add a last round at the same
    sparsity)."""
    return tuple(1.0 - 0.8**i for i in k)


@dataclass(frozen=True)
class RewindingGrid:
    """Factor levels of the rewinding study."""

    techniques: tuple[str, ...]
    oneshot_sparsities: tuple[float, ...]
    oneshot_budgets: tuple[float, ...]  # t as fractions of T
    iterative_sparsity: float  # the last round's sparsity (0: no iterative runs)
    iterative_fraction: float  # share of the remaining weights pruned per round
    iterative_budgets: tuple[float, ...]
    seeds: int
    method: str = "gmp"


QUICK = RewindingGrid(
    techniques=("finetune", "weight_rewind", "lr_rewind"),
    oneshot_sparsities=density_lattice(7, 10, 14),
    oneshot_budgets=(0.5, 1.0),
    iterative_sparsity=density_lattice(15)[0],
    iterative_fraction=density_lattice(3)[0],
    iterative_budgets=(1.0,),
    seeds=2,
)
FULL = RewindingGrid(
    techniques=("finetune", "weight_rewind", "lr_rewind"),
    oneshot_sparsities=density_lattice(2, 4, 7, 10, 12, 14, 17, 20),
    oneshot_budgets=(0.25, 0.5, 0.75, 1.0),
    iterative_sparsity=density_lattice(20)[0],
    iterative_fraction=0.2,
    iterative_budgets=(0.5, 1.0),
    seeds=3,
)

TINY = RewindingGrid(
    techniques=("finetune", "lr_rewind"),
    oneshot_sparsities=density_lattice(3, 7),
    oneshot_budgets=(1.0,),
    iterative_sparsity=density_lattice(2)[0],
    iterative_fraction=0.2,
    iterative_budgets=(1.0,),
    seeds=2,
)


@dataclass(frozen=True)
class RewindingFactors:
    """One run of the rewinding study."""

    technique: str
    schedule: str  # oneshot or iterative
    sparsity: float  # the (last) target sparsity
    budget: float  # t / T as asked (the store's t is the exact value)
    seed: int


def renda_setting(T: str) -> RunConfig:
    """The digits recipe with a Renda-like step schedule: LR 0.1, x0.1 at T/2 and 3T/4 (91 and 136
    of 182)."""
    cfg = RECIPES.get("digits")()
    cfg.train.duration = T
    cfg.train.schedule = "multistep"
    cfg.train.milestones = [fraction_of(T, 0.5), fraction_of(T, 0.75)]
    cfg.train.gamma = 0.1
    cfg.prune.method = "gmp"
    return cfg


def follow_duration(cfg: RunConfig, setting: RunConfig) -> None:
    """Milestones at T/2 and 3T/4 of a changed --train-duration, unless the user gave milestones
    too."""
    if (
        cfg.train.duration != setting.train.duration
        and cfg.train.milestones == setting.train.milestones
    ):
        cfg.train.milestones = [
            fraction_of(cfg.train.duration, 0.5),
            fraction_of(cfg.train.duration, 0.75),
        ]


class Rewinding(Study):
    name = "rewinding"
    title = "Rewinding against fine-tuning (Renda, Frankle & Carbin 2020)"
    paper = (
        "Renda, Frankle, Carbin: Comparing Rewinding and Fine-tuning in Neural Network Pruning "
        "(ICLR 2020)"
    )
    sizes = {"quick": QUICK, "full": FULL, "tiny": TINY}
    question = (
        "Accuracy against compression for fine-tuning, weight rewinding and LR rewinding, one-shot "
        "and iterative, across retraining budgets t"
    )

    def setting(self, size: str) -> RunConfig:
        cfg = renda_setting("40ep" if size == "full" else "12ep")
        self.recording(cfg)
        return cfg

    def adapt(self, cfg: RunConfig, setting: RunConfig) -> None:
        follow_duration(cfg, setting)

    def runs(self, base: RunConfig, grid: RewindingGrid) -> list[GridRun]:
        out = []
        seeds = seeds_of(grid.seeds)
        plan = [("oneshot", s, b) for s in grid.oneshot_sparsities for b in grid.oneshot_budgets]
        if grid.iterative_sparsity > 0:
            plan += [("iterative", grid.iterative_sparsity, b) for b in grid.iterative_budgets]
        for (schedule, sparsity, budget), technique, seed in itertools.product(
            plan, grid.techniques, seeds
        ):
            cfg = copy_config(base)
            cfg.seed = seed
            cfg.prune.method = grid.method
            cfg.prune.schedule = schedule
            cfg.prune.sparsity = sparsity
            if schedule == "iterative":
                cfg.prune.fraction_per_round = grid.iterative_fraction
            cfg.retrain.technique = technique
            cfg.retrain.duration = fraction_of(cfg.train.duration, budget)
            f = RewindingFactors(technique, schedule, sparsity, budget, seed)
            out.append(
                GridRun(f"{schedule}-{technique}-sp{sparsity:.4f}-t{budget:g}-s{seed}", f, cfg)
            )
        return out

    def analyze(self, runs: Any, grid: Any) -> Any:
        from shedding.studies.rewinding_results import rewinding_results

        return rewinding_results(runs)

    def report(self, results: Any, out: Path, context: dict[str, Any]) -> Path:
        from shedding.studies.rewinding_report import write_rewinding_report

        return write_rewinding_report(results, out, context)

    def table(self, results: Any) -> list[dict[str, Any]]:
        from shedding.studies.rewinding_results import parity_table

        return parity_table(results)


STUDIES.register("rewinding")(Rewinding())
