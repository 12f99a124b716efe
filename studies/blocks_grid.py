"""Siswanto (2021): accuracy against block size at fixed sparsity, for fine-tuning, weight rewinding
and random re-initialisation of the pruned structure.

Block pruning removes whole (bh x bw) blocks of each weight's (out, in*kh*kw) view, lowest mean |w|
first, globally (docs/science.md#pruning); 1x1 is unstructured GMP. Fine-tuning and weight rewinding
retrain for
``budget`` * T; random re-initialisation replays the whole original schedule (t = T).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shedding.config import RunConfig
from shedding.studies.rewinding_grid import follow_duration, renda_setting
from shedding.studies.study_base import GridRun, Study, copy_config, fraction_of, seeds_of
from shedding.studies.study_registry import STUDIES


@dataclass(frozen=True)
class BlocksGrid:
    """Factor levels of the block-sparsity study."""

    techniques: tuple[str, ...]
    block_shapes: tuple[tuple[int, int], ...]
    sparsities: tuple[float, ...]
    budget: float  # t / T for fine-tuning and weight rewinding; reinit always retrains for T
    seeds: int
    schedule: str = "oneshot"
    block_score: str = "mean_abs"


QUICK = BlocksGrid(
    techniques=("finetune", "weight_rewind", "reinit"),
    block_shapes=((1, 1), (2, 2), (4, 4), (8, 8)),
    sparsities=(0.8, 0.9),
    budget=0.75,
    seeds=2,
)
FULL = BlocksGrid(
    techniques=("finetune", "weight_rewind", "reinit"),
    block_shapes=((1, 1), (1, 4), (2, 2), (4, 4), (8, 8), (16, 16)),
    sparsities=(0.5, 0.8, 0.9, 0.95),
    budget=0.75,
    seeds=3,
)

TINY = BlocksGrid(
    techniques=("finetune", "reinit"),
    block_shapes=((1, 1), (4, 4)),
    sparsities=(0.8,),
    budget=1.0,
    seeds=2,
)


@dataclass(frozen=True)
class BlocksFactors:
    """One run of the block-sparsity study."""

    technique: str
    block: str  # "BHxBW"
    block_size: int  # bh * bw
    sparsity: float
    budget: float
    seed: int


class Blocks(Study):
    name = "blocks"
    title = "Block sparsity and weight initialisation (Siswanto 2021)"
    paper = (
        "Siswanto: Block sparsity and weight initialization in neural network pruning "
        "(MIT M.Eng thesis, 2021)"
    )
    sizes = {"quick": QUICK, "full": FULL, "tiny": TINY}
    question = (
        "Accuracy against block size at fixed sparsity for fine-tuning, weight rewinding and "
        "random re-initialisation"
    )

    def setting(self, size: str) -> RunConfig:
        cfg = renda_setting("40ep" if size == "full" else "12ep")
        self.recording(cfg)
        return cfg

    def adapt(self, cfg: RunConfig, setting: RunConfig) -> None:
        follow_duration(cfg, setting)

    def runs(self, base: RunConfig, grid: BlocksGrid) -> list[GridRun]:
        out = []
        for sparsity, (bh, bw), technique, seed in itertools.product(
            grid.sparsities, grid.block_shapes, grid.techniques, seeds_of(grid.seeds)
        ):
            cfg = copy_config(base)
            cfg.seed = seed
            cfg.prune.method = "block"
            cfg.prune.block_shape = [bh, bw]
            cfg.prune.block_score = grid.block_score
            cfg.prune.schedule = grid.schedule
            cfg.prune.sparsity = sparsity
            cfg.retrain.technique = technique
            budget = 1.0 if technique == "reinit" else grid.budget
            cfg.retrain.duration = fraction_of(cfg.train.duration, budget)
            f = BlocksFactors(technique, f"{bh}x{bw}", bh * bw, sparsity, budget, seed)
            out.append(GridRun(f"{technique}-{bh}x{bw}-sp{sparsity:g}-s{seed}", f, cfg))
        return out

    def analyze(self, runs: Any, grid: Any) -> Any:
        from shedding.studies.blocks_results import blocks_results

        return blocks_results(runs)

    def report(self, results: Any, out: Path, context: dict[str, Any]) -> Path:
        from shedding.studies.blocks_report import write_blocks_report

        return write_blocks_report(results, out, context)

    def table(self, results: Any) -> list[dict[str, Any]]:
        from shedding.studies.blocks_results import blocks_table

        return blocks_table(results)


STUDIES.register("blocks")(Blocks())
