"""Checks a :class:`RunConfig` before anything runs; each failure is one line naming the option."""

from __future__ import annotations

from shedding.config import ConfigError, RunConfig, parse_step


def _choice(value: str, choices: list[str] | tuple[str, ...], where: str) -> None:
    if value not in choices:
        raise ConfigError(f"{where}: {value!r} is not one of {', '.join(choices)}")


def validate_run_config(cfg: RunConfig) -> None:
    """Raise :class:`ConfigError` on the first invalid value of ``cfg``."""
    from shedding.data import DATASETS
    from shedding.models import MODELS
    from shedding.pruning import PRUNERS
    from shedding.pruning.block import BLOCK_SCORES
    from shedding.pruning.schedule import SCHEDULES
    from shedding.retraining import TECHNIQUES
    from shedding.training.optim import OPTIMIZERS
    from shedding.training.schedules import SCHEDULE_KINDS

    _choice(cfg.model.name, MODELS.names(), "--model-name")
    _choice(cfg.data.name, DATASETS.names(), "--data-name")
    _choice(cfg.prune.method, PRUNERS.names(), "--prune-method")
    _choice(cfg.prune.schedule, SCHEDULES.names(), "--prune-schedule")
    _choice(cfg.prune.block_score, BLOCK_SCORES, "--prune-block-score")
    _choice(cfg.retrain.technique, TECHNIQUES.names(), "--retrain-technique")
    _choice(cfg.train.optimizer, OPTIMIZERS, "--train-optimizer")
    _choice(cfg.train.schedule, SCHEDULE_KINDS, "--train-schedule")
    _choice(cfg.record.dtype, ("float32", "float16", "log8"), "--record-dtype")
    if not cfg.device == "auto" and not (cfg.device == "cpu" or cfg.device.startswith("cuda")):
        raise ConfigError(f"--device: {cfg.device!r} is not auto, cpu, cuda or cuda:N")

    for name, text in [("--train-duration", cfg.train.duration), ("--retrain-duration", cfg.retrain.duration),
                       ("--train-step-size", cfg.train.step_size), ("--train-warmup", cfg.train.warmup)]:
        parse_step(text, name)
    for m in cfg.train.milestones:
        parse_step(m, "--train-milestones")
    for name, text in [("--train-duration", cfg.train.duration), ("--retrain-duration", cfg.retrain.duration)]:
        if parse_step(text, name) == parse_step("0it", name):
            raise ConfigError(f"{name}: {text} is no training at all; give a positive length")
    if cfg.train.schedule == "step" and parse_step(cfg.train.step_size, "") == parse_step("0it", ""):
        raise ConfigError("--train-step-size: must be longer than 0 for the step schedule")

    if not 0.0 <= cfg.prune.sparsity < 1.0:
        raise ConfigError(f"--prune-sparsity: {cfg.prune.sparsity} is not in [0, 1)")
    if cfg.prune.method == "none" and cfg.prune.schedule != "oneshot":
        raise ConfigError("--prune-schedule: the unpruned control (method none) is one-shot only")
    if not 0.0 < cfg.prune.fraction_per_round < 1.0:
        raise ConfigError(f"--prune-fraction-per-round: {cfg.prune.fraction_per_round} is not in (0, 1)")
    if cfg.prune.gradual_events < 1:
        raise ConfigError(f"--prune-gradual-events: {cfg.prune.gradual_events} must be at least 1")
    if not 0.0 <= cfg.prune.initial_sparsity <= cfg.prune.sparsity:
        raise ConfigError(f"--prune-initial-sparsity: {cfg.prune.initial_sparsity} is not in [0, --prune-sparsity]")
    if not 0.0 < cfg.prune.cascade_fraction < 1.0:
        raise ConfigError(f"--prune-cascade-fraction: {cfg.prune.cascade_fraction} is not in (0, 1)")
    parse_step(cfg.prune.interval, "--prune-interval")
    if len(cfg.prune.block_shape) != 2 or min(cfg.prune.block_shape) < 1:
        raise ConfigError(f"--prune-block-shape: expected two positive integers, got {cfg.prune.block_shape}")
    if cfg.prune.method != "block" and cfg.prune.block_shape != [1, 1]:
        raise ConfigError("--prune-block-shape: only used with --prune-method block")

    if cfg.train.lr <= 0:
        raise ConfigError(f"--train-lr: {cfg.train.lr} must be positive")
    if not 0.0 <= cfg.train.momentum < 1.0:
        raise ConfigError(f"--train-momentum: {cfg.train.momentum} is not in [0, 1)")
    if cfg.train.weight_decay < 0:
        raise ConfigError(f"--train-weight-decay: {cfg.train.weight_decay} must not be negative")
    if cfg.train.gamma <= 0:
        raise ConfigError(f"--train-gamma: {cfg.train.gamma} must be positive")
    if cfg.data.batch_size < 1:
        raise ConfigError(f"--data-batch-size: {cfg.data.batch_size} must be at least 1")
    if not 0.0 < cfg.data.test_fraction < 1.0:
        raise ConfigError(f"--data-test-fraction: {cfg.data.test_fraction} is not in (0, 1)")
    if cfg.data.num_workers < 0:
        raise ConfigError("--data-num-workers: must not be negative")
    from shedding.lines import Line

    for text in cfg.record.lines:
        try:
            Line.parse(text)
        except ValueError as e:
            raise ConfigError(f"--record-lines: {e}") from None
    if len(set(cfg.record.lines)) != len(cfg.record.lines):
        raise ConfigError("--record-lines: a line is given twice")
    if cfg.record.every < 0:
        raise ConfigError(f"--record-every: {cfg.record.every} must be 0 (no snapshots) or more")
    if cfg.record.hist_every < 0:
        raise ConfigError(f"--record-hist-every: {cfg.record.hist_every} must be 0 (no histograms) or more")
    if cfg.record.sample_every < 0:
        raise ConfigError(f"--record-sample-every: {cfg.record.sample_every} must be 0 (no samples) or more")
    if cfg.record.sample_per_layer < 1:
        raise ConfigError(f"--record-sample-per-layer: {cfg.record.sample_per_layer} must be at least 1")
    if cfg.record.hist_bins < 1:
        raise ConfigError(f"--record-hist-bins: {cfg.record.hist_bins} must be at least 1")
    if len(cfg.record.hist_range) != 2 or not cfg.record.hist_range[0] < cfg.record.hist_range[1]:
        raise ConfigError(f"--record-hist-range: expected LO,HI with LO < HI, got {cfg.record.hist_range}")
    if cfg.record.chunk_steps < 1:
        raise ConfigError(f"--record-chunk-steps: {cfg.record.chunk_steps} must be at least 1")
    if cfg.record.alpha <= 0:
        raise ConfigError(f"--record-alpha: {cfg.record.alpha} must be positive")
    if cfg.retrain.finetune_lr == 0:
        raise ConfigError("--retrain-finetune-lr: 0 would not train; use a positive LR or -1 for the default")
