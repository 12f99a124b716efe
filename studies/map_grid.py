"""``shedding study map``: where do cascades happen? Amplification and excess shedding over the
factors that plausibly drive them (architecture, optimizer, weight decay, retraining LR, pruned
fraction, pruning method), each cell against seed-matched unpruned controls.

The design (sweeps around a base setting and 2-factor crosses) is
:mod:`shedding.studies.map_design`; the per-cell statistics :mod:`shedding.studies.map_results`; the
time estimate the command prints before it starts :mod:`shedding.studies.map_timing`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shedding.config import RunConfig
from shedding.recipes import RECIPES
from shedding.studies.map_design import (
    FACTORS,
    FULL,
    OPTIMIZER_LEVELS,
    QUICK,
    REWIND,
    TINY,
    MapFactors,
    MapGrid,
    Setting,
    setting_label,
    settings,
)
from shedding.studies.study_base import GridRun, Study, copy_config, seeds_of
from shedding.studies.study_registry import STUDIES


def apply_setting(cfg: RunConfig, setting: Setting, base_lr: float, base_momentum: float) -> None:
    """Set a setting's factors on ``cfg`` (a copy of the base configuration); changes ``cfg``.

    The optimizer level sets the optimizer, its LR (``lr_scale`` x the base's) and momentum; the
    weight decay is the level x the optimizer's ``decay_scale``; a retraining LR of 1 is LR
    rewinding, any other is fine-tuning at that multiple of the training LR.
    """
    f = dict(zip(FACTORS, setting, strict=True))
    opt = OPTIMIZER_LEVELS[f["optimizer"]]
    cfg.model.name = f["model"]
    cfg.train.optimizer = opt.optimizer
    cfg.train.lr = base_lr * opt.lr_scale
    cfg.train.momentum = base_momentum if opt.momentum is None else opt.momentum
    cfg.train.weight_decay = f["weight_decay"] * opt.decay_scale
    if f["retrain_lr"] == REWIND:
        cfg.retrain.technique = "lr_rewind"
    else:
        cfg.retrain.technique = "finetune"
        cfg.retrain.finetune_lr = cfg.train.lr * f["retrain_lr"]
    cfg.prune.schedule = "oneshot"
    cfg.prune.sparsity = f["sparsity"]


class Map(Study):
    name = "map"
    title = "Where do cascades happen? A map of amplification and excess shedding"
    paper = (
        "Azarian, Porikli: Cascade Weight Shedding in Deep Neural Networks: Benefits and Pitfalls "
        "for Network Pruning (arXiv 2103.10629, 2021)"
    )
    question = (
        "Where, over architecture, optimizer, weight decay, retraining LR, pruned fraction and "
        "pruning method, does pruning set off shedding beyond the unpruned control, and where is "
        "the amplification (excess shed / pruned) above 1"
    )
    sizes = {"quick": QUICK, "full": FULL, "tiny": TINY}

    def setting(self, size: str) -> RunConfig:
        cfg = RECIPES.get("digits")()  # the demo's: SGD 0.9, constant LR 0.1, wd 5e-4, T 40ep
        cfg.retrain.duration = self.grid(size).retrain
        self.recording(cfg)
        return cfg

    def runs(self, base: RunConfig, grid: MapGrid) -> list[GridRun]:
        out = []
        for setting in settings(grid, base.model.name):
            label = setting_label(setting)
            for method in (*grid.methods, "none"):
                for seed in seeds_of(grid.seeds):
                    cfg = copy_config(base)
                    apply_setting(cfg, setting, base.train.lr, base.train.momentum)
                    cfg.prune.method = method
                    cfg.seed = seed
                    f = MapFactors(*setting, method=method, seed=seed)
                    out.append(GridRun(f"{label}.{method}.s{seed}", f, cfg))
        return out

    def expected_time(self, configs: list[RunConfig], workers: int | None) -> str:
        """The grid's expected wall time, as the command prints it before it starts (see
        :mod:`shedding.studies.map_timing`)."""
        from shedding.studies.map_timing import expected_time

        return expected_time(configs, workers)

    def analyze(self, runs: Any, grid: Any) -> Any:
        from shedding.studies.map_results import map_results

        return map_results(runs, grid)

    def report(self, results: Any, out: Path, context: dict[str, Any]) -> Path:
        from shedding.studies.map_report import write_map_report

        return write_map_report(results, out, context)

    def table(self, results: Any) -> list[dict[str, Any]]:
        from shedding.studies.map_results import map_table

        return map_table(results)


STUDIES.register("map")(Map())
