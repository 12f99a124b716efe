"""Who a run is in an analysis: its condition, seed, whether it is a control, and its line.

The one rule every part of the analysis reads a run's identity by (grouping into conditions,
matching controls, the tables and reports). A store says it in its root attributes ``condition``,
``seed``, ``control`` and ``line_sparsity``, which the built-in trainer and ``shedding.watch`` both
write. An attribute that is absent or null falls back to what the store's ``config`` attribute (a
built-in run's full configuration) implies, by the rule the trainer writes the attributes with
(:mod:`shedding.recording.config_identity`), so stores recorded before these attributes existed
read as before. Without either, a run is its own condition (named after its store), is not a
control, and has no known line sparsity; a run whose seed is unknown is an error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xarray as xr

from shedding.recording.config_identity import (
    config_condition,
    config_is_control,
    config_line_sparsity,
)

SETTING = ("model", "data", "train", "retrain")  # what a built-in control shares with its runs
NOT_CONDITION = ("seed", "device", "record")  # what a condition's runs may differ in


@dataclass(frozen=True)
class RunIdentity:
    """A run's place in an analysis.

    ``condition``: the name of the condition whose seeds the run is one of. ``seed``: which seed.
    ``control``: a run that pruned nothing and only counts its line (the baseline of pruned runs of
    its seed). ``line_sparsity``: the sparsity whose GMP cut value (times ``alpha``) is the run's
    first line; None when unknown. ``setting`` and ``variant``: for a built-in run, the model,
    data, training and retraining sections of the configuration, and the whole configuration but
    for the seed, device and recording options, as canonical JSON; for a watched run, both are the
    ``setting`` attribute its user gave (None: not given, which matches any).
    """

    condition: str
    seed: int
    control: bool
    line_sparsity: float | None
    alpha: float = 1.0
    setting: str | None = None
    variant: str | None = None

    @property
    def group_key(self) -> str:
        """What the runs of one condition share: its name, line (sparsity to six decimals, and
        alpha) and, for built-in runs, the configuration but for seed, device and recording
        options."""
        sparsity = None if self.line_sparsity is None else round(self.line_sparsity, 6)
        return json.dumps([self.condition, sparsity, self.alpha, self.variant])


def _config(ds: xr.Dataset) -> dict[str, Any]:
    return dict(ds.attrs.get("config") or {})


def where(ds: xr.Dataset, name: str = "a run") -> str:
    """The run's store path for messages (``name`` when it has none)."""
    return str(ds.attrs.get("path") or name)


def line_alpha(ds: xr.Dataset) -> float:
    """alpha of the run's recorded line: the store's ``alpha`` attribute, else its configuration's
    ``record.alpha``, else 1."""
    alpha = ds.attrs.get("alpha")
    if alpha is None:
        alpha = (_config(ds).get("record") or {}).get("alpha", 1.0)
    return float(alpha)


def run_identity(ds: xr.Dataset) -> RunIdentity:
    """The run's identity from its store attributes, falling back to its configuration (see the
    module docstring). Raises ValueError (one line) when neither says its seed."""
    attrs, cfg = ds.attrs, _config(ds)
    alpha = line_alpha(ds)
    seed = attrs.get("seed")
    if seed is None:
        seed = cfg.get("seed")
    if seed is None:
        raise ValueError(
            f"{where(ds)}: its seed is unknown (no seed attribute and no configuration); "
            "set the store's seed attribute"
        )
    condition = attrs.get("condition")
    if condition is None:
        condition = config_condition(cfg, alpha) if cfg else _store_name(ds)
    control = attrs.get("control")
    if control is None:
        control = config_is_control(cfg) if cfg else False
    sparsity = attrs.get("line_sparsity")
    if sparsity is None and cfg:
        sparsity = config_line_sparsity(cfg)
    return RunIdentity(
        condition=str(condition),
        seed=int(seed),
        control=bool(control),
        line_sparsity=None if sparsity is None else float(sparsity),
        alpha=alpha,
        **_setting_and_variant(attrs.get("setting"), cfg),
    )


def _setting_and_variant(named: object, cfg: dict[str, Any]) -> dict[str, str | None]:
    """A built-in run's setting and variant from its configuration; a watched run's from the
    setting its user named (None: any)."""
    if cfg:
        return {
            "setting": _canonical({k: cfg.get(k) for k in SETTING}),
            "variant": _canonical({k: v for k, v in cfg.items() if k not in NOT_CONDITION}),
        }
    text = None if named is None else str(named)
    return {"setting": text, "variant": text}


def _canonical(value: dict[str, Any]) -> str:
    return json.dumps(value, sort_keys=True)


def _store_name(ds: xr.Dataset) -> str:
    return Path(str(ds.attrs.get("path", "run"))).name.removesuffix(".zarr")
