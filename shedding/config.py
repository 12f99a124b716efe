"""Typed configuration: the single source of truth for the CLI, TOML files and the store's metadata.

Every option is a field of a section dataclass; each field carries its help text in ``metadata``.
The CLI builds one ``--section-field`` option per field (see :func:`flat_fields`), TOML files use
``[section] field = value`` and the store keeps :func:`to_dict` of the whole :class:`RunConfig`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shedding.steps import Step, StepError, normalise


class ConfigError(ValueError):
    """A configuration value is invalid; the message is one line naming the option."""


def _num(x: float) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


@dataclass(frozen=True)
class Range:
    """The allowed values of a number option: ``lo`` to ``hi``, each end open or closed."""

    lo: float = -math.inf
    hi: float = math.inf
    lo_open: bool = False
    hi_open: bool = False

    def __contains__(self, value: float) -> bool:
        above = value > self.lo if self.lo_open else value >= self.lo
        below = value < self.hi if self.hi_open else value <= self.hi
        return above and below

    def describe(self) -> str:
        """What is wrong with a value outside: 'must be positive', 'must be at least 1', 'is not in
        [0, 1)'."""
        if self.hi == math.inf:
            if self.lo == 0:
                return "must be positive" if self.lo_open else "must not be negative"
            return f"must be {'greater than' if self.lo_open else 'at least'} {_num(self.lo)}"
        return (
            f"is not in {'(' if self.lo_open else '['}{_num(self.lo)}, {_num(self.hi)}"
            f"{')' if self.hi_open else ']'}"
        )


POSITIVE = Range(0, lo_open=True)
NON_NEGATIVE = Range(0)
AT_LEAST_1 = Range(1)
OPEN_FRACTION = Range(0, 1, lo_open=True, hi_open=True)
FRACTION = Range(0, 1, hi_open=True)
SEED = Range(0, 2**32 - 1)  # what numpy's and scikit-learn's seeds take (torch takes more)
STEP = "step"  # ``kind`` of a field holding step strings (one, or a list of them)


def _f(default: Any, help: str, **kw: Any) -> Any:
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class ModelConfig:
    """Which network to train."""

    name: str = _f("small_cnn", "model name from the model registry (see `shedding list`)")
    dense_layers: list[str] = _f(
        [],
        "prunable parameter names to leave dense, e.g. 'fc.weight' (vgg16_bn "
        "prunes its fc.weight unless it is listed here; OpenLTH leaves it dense)",
    )


@dataclass
class DataConfig:
    """Which data to train on and how to batch it."""

    name: str = _f("digits", "dataset name from the dataset registry")
    root: str = _f("", "folder holding the dataset files (CIFAR, ImageFolder)")
    download: bool = _f(False, "allow torchvision to download the dataset into root")
    batch_size: int = _f(128, "training batch size", within=AT_LEAST_1)
    augment: bool = _f(
        True, "standard augmentation where the recipe has it (CIFAR crop+flip, ImageNet)"
    )
    num_workers: int = _f(
        0, "DataLoader worker processes for on-disk datasets", within=NON_NEGATIVE
    )
    test_fraction: float = _f(
        0.2, "digits: share of the bundled set held out for testing", within=OPEN_FRACTION
    )
    split_seed: int = _f(0, "digits: seed of the fixed train/test split", within=SEED)
    image_shape: list[int] = _f(
        [3, 32, 32], "synthetic: image shape as channels, height, width", within=AT_LEAST_1
    )
    num_classes: int = _f(10, "synthetic: number of classes", within=Range(2))
    train_size: int = _f(1024, "synthetic: number of training examples", within=AT_LEAST_1)
    test_size: int = _f(256, "synthetic: number of test examples", within=AT_LEAST_1)


@dataclass
class TrainConfig:
    """The original (pre-pruning) training run, whose schedule retraining reuses."""

    duration: str = _f(
        "40ep", "length of the original training run T (e.g. 40ep, 500it, 10ep20it)", kind=STEP
    )
    optimizer: str = _f(
        "sgd",
        "sgd, adam (L2 weight decay) or adamw (decoupled weight decay: each step multiplies a "
        "weight by 1 - lr * weight_decay)",
    )
    lr: float = _f(0.1, "peak learning rate", within=POSITIVE)
    momentum: float = _f(0.9, "SGD momentum", within=FRACTION)
    nesterov: bool = _f(False, "SGD Nesterov momentum")
    weight_decay: float = _f(5e-4, "L2 weight decay", within=NON_NEGATIVE)
    schedule: str = _f("multistep", "learning-rate schedule: constant, step, multistep or cosine")
    milestones: list[str] = _f(
        [], "multistep: steps where the LR is multiplied by gamma (e.g. 91ep,136ep)", kind=STEP
    )
    step_size: str = _f("30ep", "step: the LR is multiplied by gamma every step_size", kind=STEP)
    gamma: float = _f(0.1, "step/multistep: LR multiplier", within=POSITIVE)
    warmup: str = _f(
        "0it",
        "linear warm-up length W: step k < W (from 0) uses lr*(k+1)/W, so the first step "
        "trains at lr/W (OpenLTH's warm-up starts at 0)",
        kind=STEP,
    )
    mixed_precision: bool = _f(False, "bf16 autocast on CUDA (ignored on CPU)")


@dataclass
class PruneConfig:
    """How to choose the mask."""

    method: str = _f(
        "gmp",
        "pruning method: gmp, layerwise, random, random_layerwise, block, nm, channel, file "
        "or none",
    )
    sparsity: float = _f(
        0.2,
        "target fraction of prunable weights removed (none: the line's reference)",
        within=FRACTION,
    )
    schedule: str = _f(
        "oneshot",
        "oneshot, iterative, gradual (Zhu & Gupta) or cascade (cascade-aware); "
        "docs/science.md#pruning and docs/recording.md",
    )
    fraction_per_round: float = _f(
        0.2, "iterative: share of the remaining weights removed per round", within=OPEN_FRACTION
    )
    interval: str = _f(
        "1ep",
        "gradual: steps between prune events; cascade: the window each trigger's cascade "
        "runs before what it shed is removed (whole epochs)",
        kind=STEP,
    )
    gradual_events: int = _f(
        10,
        "gradual: number of prune events n from initial_sparsity to the target",
        within=AT_LEAST_1,
    )
    initial_sparsity: float = _f(
        0.0, "gradual: s_i in s_t = s_f + (s_i - s_f)(1 - (t - t0)/(n dt))^3", within=FRACTION
    )
    cascade_fraction: float = _f(
        0.05,
        "cascade: share of the remaining weights each trigger prunes by GMP",
        within=OPEN_FRACTION,
    )
    block_shape: list[int] = _f(
        [1, 1], "block: block height, width over the (out, in*kh*kw) view", within=AT_LEAST_1
    )
    block_score: str = _f("mean_abs", "block: block score, mean_abs, l2 or max_abs")
    nm: str = _f(
        "2:4",
        "nm: keep the N largest |w| of every M consecutive weights along each row of the "
        "(out, in*kh*kw) view, as N:M (sparsity 1 - N/M)",
    )
    mask_file: str = _f(
        "", "file: masks written by `shedding export-mask` ({parameter name: mask}, torch.save)"
    )


@dataclass
class RetrainConfig:
    """How to retrain the survivors (Renda et al.'s techniques)."""

    technique: str = _f(
        "lr_rewind", "finetune, weight_rewind, lr_rewind or reinit (docs/science.md#retraining)"
    )
    duration: str = _f(
        "40ep", "retraining budget t per round (at most T for rewinding techniques)", kind=STEP
    )
    finetune_lr: float = _f(-1.0, "finetune: constant LR; negative means the schedule's last LR")


@dataclass
class RecordConfig:
    """What the recorder writes into the Zarr store."""

    every: int = _f(
        1,
        "snapshot every prunable weight's magnitude every N retraining steps (0: none)",
        within=NON_NEGATIVE,
    )
    hist_every: int = _f(
        0,
        "per-layer histogram of log10|w|, computed on the device, every N steps (0: none); "
        "with every 0, a compact summary-only store",
        within=NON_NEGATIVE,
    )
    hist_bins: int = _f(64, "histogram bins, equal in log10|w|", within=AT_LEAST_1)
    hist_range: list[float] = _f(
        [-8.0, 1.0], "histogram range of log10|w| (values outside go to the end bins)"
    )
    dtype: str = _f(
        "float32",
        "magnitude encoding: float32, float16 or log8 (1 byte, <= 1% relative error; "
        "see docs/recording.md)",
    )
    alpha: float = _f(
        1.0,
        "shed line = alpha * tau, tau being the GMP cut value at the event's sparsity",
        within=POSITIVE,
    )
    sample_every: int = _f(
        0,
        "full trajectories of a fixed, seeded subset of weights every N steps (0: none)",
        within=NON_NEGATIVE,
    )
    sample_per_layer: int = _f(
        256, "weights per layer in the sampled subset (all of a smaller layer)", within=AT_LEAST_1
    )
    lines: list[str] = _f(
        [],
        "extra shed lines counted on the device every step, as kind:value "
        "(gmp:A, std:C, abs:V, next:D; see docs/science.md#shedding)",
    )
    record_pretrain: bool = _f(False, "also snapshot magnitudes during the original training run")
    chunk_steps: int = _f(
        64,
        "snapshots per Zarr chunk along the step dimension, at most (the run's snapshots "
        "are split into chunks of about one length)",
        within=AT_LEAST_1,
    )


@dataclass
class RunConfig:
    """One record run: train (or reuse a cached run), prune, retrain while recording."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    prune: PruneConfig = field(default_factory=PruneConfig)
    retrain: RetrainConfig = field(default_factory=RetrainConfig)
    record: RecordConfig = field(default_factory=RecordConfig)
    seed: int = _f(0, "seed of initialisation, data order and random pruning", within=SEED)
    device: str = _f("auto", "auto, cpu, cuda or cuda:N")

    def hash(self, sections: tuple[str, ...] | None = None) -> str:
        """A short stable hash of the configuration (or of some sections), as OpenLTH names runs.

        Only options that differ from their defaults enter it (so adding an option with a default
        keeps every earlier name), and not where the dataset lives (:data:`NOT_HASHED`), which does
        not change a result.
        """
        d = hashed_dict(self)
        if sections is not None:
            d = {k: d[k] for k in sections if k in d}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


SECTIONS = ("model", "data", "train", "prune", "retrain", "record")
NOT_HASHED = frozenset({"data.root", "data.download"})  # where the data lives, not what it is


def hashed_dict(cfg: RunConfig) -> dict[str, Any]:
    """The options that name a run: those differing from the defaults, minus :data:`NOT_HASHED`.

    Step strings enter in their normal form, so ``05ep`` and ``5ep`` name the same run.
    """
    default, d = _normal_steps(RunConfig()), _normal_steps(cfg)
    out: dict[str, Any] = {}
    for key, value in d.items():
        if isinstance(value, dict):
            changed = {
                k: v
                for k, v in value.items()
                if f"{key}.{k}" not in NOT_HASHED and v != default[key].get(k)
            }
            if changed:
                out[key] = changed
        elif value != default[key]:
            out[key] = value
    return out


def _normal_steps(cfg: RunConfig) -> dict[str, Any]:
    """:func:`to_dict` with every step string (a field of kind :data:`STEP`) in its normal form
    where it parses."""
    d = to_dict(cfg)

    def normal(text: Any) -> Any:
        try:
            return normalise(text)
        except StepError:
            return text  # validation names it; the hash keeps it as written

    for f in flat_fields(cfg):
        if f.kind == STEP:
            holder = d[f.section] if f.section else d
            value = holder[f.name]
            holder[f.name] = (
                [normal(v) for v in value] if isinstance(value, list) else normal(value)
            )
    return d


# --------------------------------------------------------------------------- conversion helpers


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain, JSON-serialisable nested dict of a config dataclass."""
    return dataclasses.asdict(cfg)


def _field_type(cls: type, name: str) -> Any:
    return typing.get_type_hints(cls)[name]


def coerce(value: Any, typ: Any, where: str) -> Any:
    """Convert ``value`` (a string from the CLI or a TOML value) to ``typ``; raise ConfigError
    otherwise."""
    origin = typing.get_origin(typ)
    if origin in (list, tuple):
        (item,) = typing.get_args(typ)[:1]
        if isinstance(value, str):
            value = [v for v in (s.strip() for s in value.split(",")) if v]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [coerce(v, item, where) for v in value]
    if origin is types.UnionType:
        raise ConfigError(f"{where}: unsupported type {typ}")
    if typ is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if typ is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        try:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected an integer, got {value!r}") from None
    if typ is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if typ is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return str(value)
    raise ConfigError(f"{where}: unsupported type {typ}")


def from_dict(
    data: dict[str, Any], base: RunConfig | None = None, source: str = "config"
) -> RunConfig:
    """Overlay a nested dict (TOML layout) onto ``base`` (default: the defaults); unknown keys are
    errors."""
    cfg = dataclasses.replace(base) if base is not None else RunConfig()
    cfg = _deepcopy(cfg)
    for key, value in data.items():
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: [{key}] must be a table")
            section = getattr(cfg, key)
            names = {f.name for f in dataclasses.fields(section)}
            for k, v in value.items():
                if k not in names:
                    raise ConfigError(
                        f"{source}: unknown option {key}.{k}; valid: {', '.join(sorted(names))}"
                    )
                setattr(
                    section, k, coerce(v, _field_type(type(section), k), f"{source}: {key}.{k}")
                )
        elif key in ("seed", "device"):
            setattr(cfg, key, coerce(value, _field_type(RunConfig, key), f"{source}: {key}"))
        else:
            raise ConfigError(f"{source}: unknown section or option {key!r}")
    return cfg


def _deepcopy(cfg: RunConfig) -> RunConfig:
    return from_plain(to_dict(cfg))


def from_plain(d: dict[str, Any]) -> RunConfig:
    """Rebuild a RunConfig from :func:`to_dict` output (e.g. the store's ``config`` attribute)."""
    kw: dict[str, Any] = {}
    for f in dataclasses.fields(RunConfig):
        if f.name in SECTIONS:
            cls = typing.get_type_hints(RunConfig)[f.name]
            kw[f.name] = cls(
                **{
                    k: (list(v) if isinstance(v, (list, tuple)) else v)
                    for k, v in d.get(f.name, {}).items()
                }
            )
        elif f.name in d:
            kw[f.name] = d[f.name]
    return RunConfig(**kw)


def load_toml(path: str | Path, base: RunConfig | None = None) -> RunConfig:
    """Read a TOML config file (``[prune] sparsity = 0.5`` ...) on top of ``base``."""
    p = Path(path)
    where = f"--config {p}"
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{where}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{where}: is a folder, not a TOML file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not a TOML file (not UTF-8 text)") from None
    except OSError as e:
        raise ConfigError(f"{where}: cannot be read: {e.strerror or type(e).__name__}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{where}: invalid TOML: {' '.join(str(e).split())}") from None
    return from_dict(data, base, source=where)


def to_toml(cfg: RunConfig) -> str:
    """Serialise to TOML text that :func:`load_toml` reads back to an equal config."""
    d = to_dict(cfg)
    lines = [f"seed = {d['seed']}", f"device = {_toml_string(d['device'])}", ""]
    for sec in SECTIONS:
        lines.append(f"[{sec}]")
        for k, v in d[sec].items():
            lines.append(f"{k} = {_toml_value(v)}")
        lines.append("")
    return "\n".join(lines)


def _toml_string(text: str) -> str:
    """A TOML basic string: backslash, quote and control characters escaped, other characters as
    they are."""
    out = []
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return _toml_string(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(v)


@dataclass(frozen=True)
class FlatField:
    """One leaf option: ``section.name`` (section empty for top-level fields)."""

    section: str
    name: str
    type: Any
    default: Any
    help: str
    within: Range | None = None  # allowed values of a number (of each item of a list of numbers)
    kind: str = ""  # STEP: a step string, or a list of them

    @property
    def key(self) -> str:
        return f"{self.section}.{self.name}" if self.section else self.name

    @property
    def cli_name(self) -> str:
        return "--" + self.key.replace(".", "-").replace("_", "-")

    @property
    def param_name(self) -> str:
        return self.key.replace(".", "__")


def flat_fields(cfg: RunConfig | None = None) -> list[FlatField]:
    """Every leaf option of :class:`RunConfig`, with defaults taken from ``cfg`` (default: the
    defaults)."""
    cfg = cfg or RunConfig()
    out: list[FlatField] = []
    for f in dataclasses.fields(RunConfig):
        if f.name in SECTIONS:
            section = getattr(cfg, f.name)
            for g in dataclasses.fields(section):
                out.append(
                    FlatField(
                        f.name,
                        g.name,
                        _field_type(type(section), g.name),
                        getattr(section, g.name),
                        g.metadata.get("help", ""),
                        g.metadata.get("within"),
                        g.metadata.get("kind", ""),
                    )
                )
        else:
            out.append(
                FlatField(
                    "",
                    f.name,
                    _field_type(RunConfig, f.name),
                    getattr(cfg, f.name),
                    f.metadata.get("help", ""),
                    f.metadata.get("within"),
                    f.metadata.get("kind", ""),
                )
            )
    return out


def apply_overrides(cfg: RunConfig, overrides: dict[str, str]) -> RunConfig:
    """Apply ``{'prune.sparsity': '0.5'}``-style string overrides (from the CLI) to a copy of
    ``cfg``."""
    nested: dict[str, Any] = {}
    for key, value in overrides.items():
        if "." in key:
            sec, name = key.split(".", 1)
            nested.setdefault(sec, {})[name] = value
        else:
            nested[key] = value
    return from_dict(nested, cfg, source="option")


def parse_step(text: str, where: str) -> Step:
    """Parse a step string, turning errors into a ConfigError naming the option."""
    try:
        return Step.parse(text)
    except StepError as e:
        raise ConfigError(f"{where}: {e}") from None
