"""Checks a :class:`RunConfig` before anything runs; each failure is one line naming the option.

Checks that follow from a field's declaration run for every field alike (:func:`check_field`): its
type, a finite number within the field's :class:`~shedding.config.Range`, a well-formed step string.
The rest (choices from the registries, relations between options) follow in
:func:`validate_run_config`.
"""

from __future__ import annotations

import math
import typing
from typing import Any

from shedding.config import (
    STEP,
    ConfigError,
    FlatField,
    PruneConfig,
    Range,
    RunConfig,
    flat_fields,
    parse_step,
)
from shedding.registry import PluginError, Registry, UnknownNameError, is_import_path


def check_number(value: Any, where: str, within: Range | None = None) -> None:
    """Raise :class:`ConfigError` unless ``value`` is a finite int or float (within ``within``, when
    given)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"{where}: {value} is not a finite number")
    if within is not None and value not in within:
        raise ConfigError(f"{where}: {value} {within.describe()}")


_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def check_field(f: FlatField, value: Any) -> None:
    """The checks a field's declaration implies, for ``value`` (each item of a list field)."""
    if typing.get_origin(f.type) in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{f.cli_name}: expected a list, got {value!r}")
        (item,) = typing.get_args(f.type)[:1]
        values = list(value)
    else:
        item, values = f.type, [value]
    for v in values:
        accepted = (int, float) if item is float else item
        if not isinstance(v, accepted) or (isinstance(v, bool) and item is not bool):
            raise ConfigError(f"{f.cli_name}: expected {_TYPE_NAMES.get(item, item)}, got {v!r}")
        if item in (int, float):
            check_number(v, f.cli_name, f.within)
        if f.kind == STEP:
            parse_step(v, f.cli_name)


def _registered(name: str, registry: Registry[Any], where: str) -> None:
    """A registered name (else the list of valid ones), or an import path package.module:factory
    that resolves (else what is wrong with it)."""
    if not (registry.import_paths and is_import_path(name)):
        _choice(name, registry.names(), where)
        return
    try:
        registry.get(name)
    except (UnknownNameError, PluginError) as e:
        raise ConfigError(f"{where}: {e}") from None


def _choice(value: str, choices: list[str] | tuple[str, ...], where: str) -> None:
    if value not in choices:
        raise ConfigError(f"{where}: {value!r} is not one of {', '.join(choices)}")


def _check_choices(cfg: RunConfig) -> None:
    from shedding.data import DATASETS
    from shedding.models import MODELS
    from shedding.pruning import PRUNERS
    from shedding.pruning.block import BLOCK_SCORES
    from shedding.pruning.schedule import SCHEDULES
    from shedding.retraining import TECHNIQUES
    from shedding.training.optim import OPTIMIZERS
    from shedding.training.schedules import SCHEDULE_KINDS

    _registered(cfg.model.name, MODELS, "--model-name")
    _registered(cfg.data.name, DATASETS, "--data-name")
    _choice(cfg.prune.method, PRUNERS.names(), "--prune-method")
    _choice(cfg.prune.schedule, SCHEDULES.names(), "--prune-schedule")
    _choice(cfg.prune.block_score, BLOCK_SCORES, "--prune-block-score")
    _choice(cfg.retrain.technique, TECHNIQUES.names(), "--retrain-technique")
    _choice(cfg.train.optimizer, OPTIMIZERS, "--train-optimizer")
    _choice(cfg.train.schedule, SCHEDULE_KINDS, "--train-schedule")
    _choice(cfg.record.dtype, ("float32", "float16", "log8"), "--record-dtype")
    if not cfg.device == "auto" and not (cfg.device == "cpu" or cfg.device.startswith("cuda")):
        raise ConfigError(f"--device: {cfg.device!r} is not auto, cpu, cuda or cuda:N")


def _check_relations(cfg: RunConfig) -> None:
    """Checks that involve more than one option, or one option's value beyond its range."""
    for name, text in [
        ("--train-duration", cfg.train.duration),
        ("--retrain-duration", cfg.retrain.duration),
    ]:
        if parse_step(text, name) == parse_step("0it", name):
            raise ConfigError(f"{name}: {text} is no training at all; give a positive length")
    if cfg.train.schedule == "step" and parse_step(cfg.train.step_size, "") == parse_step(
        "0it", ""
    ):
        raise ConfigError("--train-step-size: must be longer than 0 for the step schedule")
    if cfg.prune.method == "none" and cfg.prune.schedule != "oneshot":
        raise ConfigError("--prune-schedule: the unpruned control (method none) is one-shot only")
    if cfg.prune.initial_sparsity > cfg.prune.sparsity:
        raise ConfigError(
            f"--prune-initial-sparsity: {cfg.prune.initial_sparsity} is not in "
            "[0, --prune-sparsity]"
        )
    if len(cfg.prune.block_shape) != 2:
        raise ConfigError(
            f"--prune-block-shape: expected two positive integers, got {cfg.prune.block_shape}"
        )
    if cfg.prune.method != "block" and cfg.prune.block_shape != [1, 1]:
        raise ConfigError("--prune-block-shape: only used with --prune-method block")
    _check_nm(cfg.prune)
    _check_mask_file(cfg.prune)
    if len(cfg.data.image_shape) != 3:
        raise ConfigError(
            f"--data-image-shape: expected three sizes C,H,W, got {cfg.data.image_shape}"
        )
    if len(cfg.record.hist_range) != 2 or not cfg.record.hist_range[0] < cfg.record.hist_range[1]:
        raise ConfigError(
            f"--record-hist-range: expected LO,HI with LO < HI, got {cfg.record.hist_range}"
        )
    if cfg.retrain.finetune_lr == 0:
        raise ConfigError(
            "--retrain-finetune-lr: 0 would not train; use a positive LR or -1 for the default"
        )
    _check_lines(cfg.record.lines)


def _check_nm(pc: PruneConfig) -> None:
    """``--prune-nm`` well formed, only with the nm method, which is one-shot at 1 - N/M."""
    from shedding.pruning.nm import parse_nm

    try:
        n, m = parse_nm(pc.nm)
    except ValueError as e:
        raise ConfigError(f"--prune-nm: {e}") from None
    if pc.method != "nm":
        if pc.nm != PruneConfig().nm:
            raise ConfigError("--prune-nm: only used with --prune-method nm")
        return
    if pc.schedule != "oneshot":
        raise ConfigError(
            f"--prune-schedule: {pc.schedule} with --prune-method nm; N:M pruning reaches its "
            "fixed pattern in one event, use oneshot"
        )
    pattern = f"{1 - n / m:.10g}"
    if abs(pc.sparsity - (1 - n / m)) > 1e-9:
        raise ConfigError(
            f"--prune-sparsity: {pc.sparsity:g} with --prune-nm {pc.nm}, which prunes exactly "
            f"1 - N/M = {pattern} of every layer; give --prune-sparsity {pattern}"
        )


def _check_mask_file(pc: PruneConfig) -> None:
    """``--prune-mask-file`` only with the file method, which needs a readable mask file whose
    sparsity is the target (its names and shapes: :func:`check_prune_layers`)."""
    from shedding.pruning.mask_file import check_sparsity, load_mask_file

    if pc.method != "file":
        if pc.mask_file:
            raise ConfigError("--prune-mask-file: only used with --prune-method file")
        return
    if not pc.mask_file:
        raise ConfigError(
            "--prune-mask-file: --prune-method file needs the masks file (written by "
            "`shedding export-mask`)"
        )
    if pc.schedule != "oneshot":
        raise ConfigError(
            f"--prune-schedule: {pc.schedule} with --prune-method file; the file's masks are "
            "one event's, use oneshot"
        )
    try:
        check_sparsity(load_mask_file(pc.mask_file), pc.sparsity, pc.mask_file)
    except ValueError as e:
        raise ConfigError(f"--prune-mask-file: {e}") from None


def check_prune_layers(pc: PruneConfig, shapes: dict[str, tuple[int, ...]]) -> None:
    """Checks of the pruning method against the run's prunable tensors (``{name: shape}``), before
    anything trains: every tensor's rows divisible by M for nm; the mask file's names and shapes
    for file."""
    if pc.method == "nm":
        from shedding.pruning.nm import nm_layer_problem, parse_nm

        _, m = parse_nm(pc.nm)
        for name, shape in shapes.items():
            problem = nm_layer_problem(name, tuple(shape), m)
            if problem is not None:
                raise ConfigError(f"--prune-nm: {pc.nm}: {problem}")
    elif pc.method == "file":
        from shedding.pruning.mask_file import check_layout, load_mask_file

        try:
            check_layout(load_mask_file(pc.mask_file), shapes, pc.mask_file)
        except ValueError as e:
            raise ConfigError(f"--prune-mask-file: {e}") from None


def _check_lines(lines: list[str]) -> None:
    from shedding.lines import Line

    for text in lines:
        try:
            Line.parse(text)
        except ValueError as e:
            raise ConfigError(f"--record-lines: {e}") from None
    if len(set(lines)) != len(lines):
        raise ConfigError("--record-lines: a line is given twice")


def validate_run_config(cfg: RunConfig) -> None:
    """Raise :class:`ConfigError` on the first invalid value of ``cfg``."""
    for f in flat_fields(cfg):  # each field's value is its ``default`` here
        check_field(f, f.default)
    _check_choices(cfg)
    _check_relations(cfg)
