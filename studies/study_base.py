"""What every study shares: a grid of labelled runs built from a base configuration, and how it is
reported.

A study is a grid over (pruning method x sparsity x retraining technique x seed ...) ending in one
report. Its
*grid options* (a dataclass per study: the factor levels, the number of seeds) come in a quick and a
full size.
Its *setting* is the embedded digits configuration it runs on by default; with ``--recipe``,
``--config`` or options, the user's configuration replaces it (the grid factors are then set on top
of the user's).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shedding.config import ConfigError, RunConfig, apply_overrides, from_plain, load_toml, to_dict
from shedding.steps import Step
from shedding.validate import validate_run_config


@dataclass(frozen=True)
class GridRun:
    """One entry of a study's grid: a unique label, its factor values (a frozen dataclass) and its
    configuration."""

    label: str
    factors: Any
    config: RunConfig

    def factor_dict(self) -> dict[str, Any]:
        """The factors as a plain dict (the coordinates of the results Dataset)."""
        return dataclasses.asdict(self.factors)


def copy_config(cfg: RunConfig) -> RunConfig:
    """A deep copy of a configuration."""
    return from_plain(to_dict(cfg))


def fraction_of(duration: str, fraction: float) -> str:
    """``fraction`` of an OpenLTH length, rounded to whole epochs (and iterations), at least one
    step.

    ``fraction_of('12ep', 0.5) == '6ep'``, ``fraction_of('182ep', 0.25) == '46ep'``,
    ``fraction_of('500it', .5)
    == '250it'``. The exact t of a run is the store's ``t`` attribute.
    """
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"retraining budget {fraction:g} of T is not in (0, 1]")
    s = Step.parse(duration)
    ep = math.floor(s.ep * fraction + 0.5)
    it = math.floor(s.it * fraction + 0.5)
    if ep == 0 and it == 0:
        ep, it = (1, 0) if s.ep else (0, 1)
    return str(Step(ep, it))


def seeds_of(n: int) -> tuple[int, ...]:
    """Seeds 0..n-1."""
    if n < 1:
        raise ConfigError(f"--seeds: {n} must be at least 1")
    return tuple(range(n))


class Study:
    """Base class of a study. Subclasses set the class attributes and implement :meth:`grid`,
    :meth:`setting` and :meth:`runs`; :meth:`analyze` and :meth:`report` import their analysis and
    figures lazily."""

    name: str = ""
    title: str = ""
    paper: str = ""
    question: str = ""

    # ---------------------------------------------------------------- the grid

    sizes: dict[
        str, Any
    ] = {}  # "quick", "full" (and "tiny", for the tests): the grid options of each size

    def grid(self, size: str) -> Any:
        """The grid options (a dataclass) of a size."""
        if size not in self.sizes:
            raise ConfigError(
                f"study {self.name}: unknown size {size!r}; choose one of {', '.join(self.sizes)}"
            )
        return self.sizes[size]

    def setting(self, size: str) -> RunConfig:
        """The embedded configuration the study runs on when the user gives no recipe or
        configuration file."""
        raise NotImplementedError

    def recording(self, cfg: RunConfig) -> None:
        """Set what the study's analysis needs recorded (default: a summary-only store); changes
        ``cfg``."""
        cfg.record.every = 0
        cfg.record.hist_every = 0
        cfg.record.sample_every = 0
        cfg.record.lines = []

    def runs(self, base: RunConfig, grid: Any) -> list[GridRun]:
        """Every run of the grid, each a copy of ``base`` with the grid's factors set."""
        raise NotImplementedError

    def with_seeds(self, grid: Any, seeds: int | None) -> Any:
        """The grid with ``seeds`` seeds (0..seeds-1) instead of its own number (None:
        unchanged)."""
        return grid if seeds is None else dataclasses.replace(grid, seeds=len(seeds_of(seeds)))

    # ---------------------------------------------------------------- configuration

    def base_config(
        self,
        size: str,
        recipe: str | None = None,
        config_file: str | Path | None = None,
        overrides: dict[str, str] | None = None,
    ) -> RunConfig:
        """The base configuration: defaults < (--recipe or the study's setting) < --config file <
        options.

        The study's recording needs are set before the file and the options, so a user can change
        them too.
        """
        from shedding.recipes import RECIPES

        setting = None
        if recipe:
            cfg = RECIPES.get(recipe)()
            self.recording(cfg)
        else:
            setting = self.setting(size)
            cfg = copy_config(setting)
        if config_file is not None:
            cfg = load_toml(config_file, cfg)
        if overrides:
            cfg = apply_overrides(cfg, overrides)
        validate_run_config(cfg)
        if setting is not None:
            self.adapt(cfg, setting)
            validate_run_config(cfg)
        return cfg

    def adapt(self, cfg: RunConfig, setting: RunConfig) -> None:
        """Keep the study's setting consistent after the user's changes to it (default: nothing);
        changes ``cfg``."""

    def plan(
        self,
        size: str,
        seeds: int | None = None,
        recipe: str | None = None,
        config_file: str | Path | None = None,
        overrides: dict[str, str] | None = None,
    ) -> tuple[RunConfig, Any, list[GridRun]]:
        """(base configuration, grid options, validated grid runs): everything checked before
        anything runs."""
        grid = self.with_seeds(self.grid(size), seeds)
        base = self.base_config(size, recipe, config_file, overrides)
        runs = self.runs(base, grid)
        labels = [r.label for r in runs]
        if len(set(labels)) != len(labels):  # pragma: no cover - a study bug, not a user error
            raise RuntimeError(f"study {self.name}: duplicate run labels")
        for r in runs:
            try:
                validate_run_config(r.config)
            except ConfigError as e:
                raise ConfigError(f"{r.label}: {e}") from None
        return base, grid, runs

    # ---------------------------------------------------------------- analysis and report

    def analyze(self, runs: Any, grid: Any) -> Any:
        """Per-study results from :class:`shedding.studies.study_runs.StudyRuns` (default: the
        plain results Dataset)."""
        from shedding.studies.study_runs import results_dataset

        return results_dataset(runs)

    def report(self, results: Any, out: Path, context: dict[str, Any]) -> Path:
        """Write the study's HTML report to ``out``."""
        raise NotImplementedError

    def table(self, results: Any) -> list[dict[str, Any]]:
        """The rows of the final table printed by the CLI."""
        return []
