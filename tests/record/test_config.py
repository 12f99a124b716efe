"""Typed configuration: TOML round trip, string overrides, validation, hashing and the flat CLI
view."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import tomllib
from pathlib import Path

import pytest

from shedding.config import (
    NOT_HASHED,
    SECTIONS,
    ConfigError,
    Range,
    RunConfig,
    apply_overrides,
    flat_fields,
    from_dict,
    from_plain,
    load_toml,
    to_dict,
    to_toml,
)
from shedding.validate import validate_run_config


def _custom() -> RunConfig:
    cfg = RunConfig(seed=7, device="cuda:1")
    cfg.model.dense_layers = ["fc.weight", "conv1"]
    cfg.data.root = 'C:\\data\\"quoted"\tdir é'
    cfg.data.image_shape = [1, 28, 28]
    cfg.data.download = True
    cfg.train.milestones = ["91ep", "136ep"]
    cfg.train.weight_decay = 2e-4
    cfg.train.lr = 1e-05
    cfg.train.nesterov = True
    cfg.prune.method = "block"
    cfg.prune.block_shape = [2, 3]
    cfg.prune.sparsity = 0.36
    cfg.retrain.finetune_lr = 0.001
    cfg.record.alpha = 0.5
    return cfg


def _one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert msg and "\n" not in msg
    return msg


# --------------------------------------------------------------------------- TOML


@pytest.mark.parametrize("cfg", [RunConfig(), _custom()], ids=["defaults", "custom"])
def test_toml_round_trip(tmp_path: Path, cfg: RunConfig) -> None:
    text = to_toml(cfg)
    assert tomllib.loads(text)["prune"]["sparsity"] == cfg.prune.sparsity
    path = tmp_path / "run.toml"
    path.write_text(text)
    back = load_toml(path)
    assert back == cfg
    assert to_dict(back) == to_dict(cfg)
    assert back.hash() == cfg.hash()


def test_load_toml_overlays_a_partial_file_on_a_base(tmp_path: Path) -> None:
    path = tmp_path / "part.toml"
    path.write_text('seed = 3\n[prune]\nsparsity = 0.5\n[train]\nmilestones = ["2ep"]\nlr = 1\n')
    base = _custom()
    cfg = load_toml(path, base)
    assert cfg.seed == 3 and cfg.prune.sparsity == 0.5 and cfg.train.milestones == ["2ep"]
    assert cfg.train.lr == 1.0 and isinstance(cfg.train.lr, float)
    assert cfg.prune.method == "block" and cfg.data.root == base.data.root  # the rest from the base
    assert base.prune.sparsity == 0.36 and base.seed == 7  # the base is not modified
    assert load_toml(path).prune.method == "gmp"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[foo]\nx = 1\n", "'foo'"),
        ("bogus = 1\n", "'bogus'"),
        ("[prune]\nbogus = 1\n", "prune.bogus"),
        ('[prune]\nsparsity = "abc"\n', "prune.sparsity"),
        ('[train]\nnesterov = "maybe"\n', "train.nesterov"),
        ("[data]\nbatch_size = 1.5\n", "data.batch_size"),
        ("[data]\nbatch_size = true\n", "data.batch_size"),
        ("[train]\nmilestones = 5\n", "train.milestones"),
        ("[model]\nname = [1]\n", "model.name"),
        ("prune = 1\n", "[prune]"),
        ("[prune\n", "invalid TOML"),
    ],
)
def test_bad_toml_raises_a_one_line_config_error(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_toml(path)
    assert needle in _one_line(e)


def test_missing_toml_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found") as e:
        load_toml(tmp_path / "nope.toml")
    _one_line(e)


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("folder", "is a folder"),
        ("file/c.toml", "cannot be read: Not a directory"),
        ("binary.toml", "not UTF-8"),
    ],
)
def test_unreadable_toml_is_a_one_line_config_error(tmp_path: Path, name: str, needle: str) -> None:
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("x")
    (tmp_path / "binary.toml").write_bytes(b"\xff\xfe[prune]\n")
    with pytest.raises(ConfigError) as e:
        load_toml(tmp_path / name)
    assert _one_line(e).startswith(f"--config {tmp_path / name}: ") and needle in str(e.value)


def test_non_finite_toml_values_fail_validation_naming_the_option(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    for text, option in [
        ("[train]\nlr = nan\n", "--train-lr"),
        ("[record]\nalpha = -inf\n", "--record-alpha"),
        ("[record]\nhist_range = [-8.0, +inf]\n", "--record-hist-range"),
    ]:
        path.write_text(text)
        cfg = load_toml(path)
        with pytest.raises(ConfigError) as e:
            validate_run_config(cfg)
        assert _one_line(e).startswith(option + ":") and "is not a finite number" in str(e.value)


# --------------------------------------------------------------------------- string overrides


def test_apply_overrides_coerces_strings() -> None:
    base = RunConfig()
    cfg = apply_overrides(
        base,
        {
            "prune.sparsity": "0.5",
            "train.nesterov": "true",
            "train.milestones": "91ep, 136ep",
            "prune.block_shape": "2,3",
            "data.batch_size": "64",
            "seed": "3",
            "device": "cpu",
            "data.download": "off",
            "model.dense_layers": "",
            "train.lr": "1e-3",
        },
    )
    assert cfg.prune.sparsity == 0.5 and isinstance(cfg.prune.sparsity, float)
    assert cfg.train.nesterov is True and cfg.data.download is False
    assert cfg.train.milestones == ["91ep", "136ep"]
    assert cfg.prune.block_shape == [2, 3] and all(
        isinstance(v, int) for v in cfg.prune.block_shape
    )
    assert cfg.data.batch_size == 64 and cfg.seed == 3 and cfg.device == "cpu"
    assert cfg.model.dense_layers == [] and cfg.train.lr == 0.001
    assert base == RunConfig()  # a copy: the base is untouched
    for text, value in [("1", True), ("yes", True), ("FALSE", False), ("0", False), ("on", True)]:
        assert apply_overrides(base, {"train.nesterov": text}).train.nesterov is value


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"foo.bar": "1"}, "'foo'"),
        ({"prune.bogus": "1"}, "prune.bogus"),
        ({"bogus": "1"}, "'bogus'"),
        ({"prune.sparsity": "half"}, "prune.sparsity"),
        ({"train.nesterov": "maybe"}, "train.nesterov"),
        ({"data.batch_size": "1.5"}, "data.batch_size"),
        ({"prune.block_shape": "2,x"}, "prune.block_shape"),
        ({"seed": "one"}, "seed"),
    ],
)
def test_bad_overrides_raise_a_one_line_config_error(overrides: dict, needle: str) -> None:
    with pytest.raises(ConfigError) as e:
        apply_overrides(RunConfig(), overrides)
    assert needle in _one_line(e)


def test_unknown_option_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as e:
        from_dict({"prune": {"sparsty": 0.5}})
    msg = _one_line(e)
    assert "prune.sparsty" in msg and "sparsity" in msg.split("valid:")[1]


# --------------------------------------------------------------------------- validation


def test_defaults_and_custom_config_validate() -> None:
    validate_run_config(RunConfig())
    cfg = _custom()
    cfg.device = "cpu"
    validate_run_config(cfg)


def _with(**kw) -> RunConfig:
    cfg = RunConfig()
    for key, value in kw.items():
        sec, _, name = key.partition("__")
        if name:
            setattr(getattr(cfg, sec), name, value)
        else:
            setattr(cfg, sec, value)
    return cfg


@pytest.mark.parametrize(
    ("kw", "option"),
    [
        ({"prune__sparsity": 1.0}, "--prune-sparsity"),
        ({"prune__sparsity": -0.1}, "--prune-sparsity"),
        ({"prune__method": "magic"}, "--prune-method"),
        ({"prune__schedule": "exponential"}, "--prune-schedule"),
        ({"prune__block_score": "median"}, "--prune-block-score"),
        ({"prune__block_shape": [2, 2]}, "--prune-block-shape"),  # non-block method
        ({"prune__method": "block", "prune__block_shape": [0, 2]}, "--prune-block-shape"),
        ({"prune__method": "block", "prune__block_shape": [2, 2, 2]}, "--prune-block-shape"),
        ({"prune__fraction_per_round": 1.0}, "--prune-fraction-per-round"),
        ({"prune__method": "none", "prune__schedule": "iterative"}, "--prune-schedule"),
        ({"train__milestones": ["3 epochs"]}, "--train-milestones"),
        ({"train__duration": "x"}, "--train-duration"),
        ({"train__duration": "0ep"}, "--train-duration"),
        ({"retrain__duration": "0it"}, "--retrain-duration"),
        ({"train__warmup": "5"}, "--train-warmup"),
        ({"train__weight_decay": -1e-4}, "--train-weight-decay"),
        ({"train__lr": 0.0}, "--train-lr"),
        ({"train__momentum": 1.0}, "--train-momentum"),
        ({"train__optimizer": "rmsprop"}, "--train-optimizer"),
        ({"train__schedule": "linear"}, "--train-schedule"),
        ({"retrain__technique": "prayer"}, "--retrain-technique"),
        ({"retrain__finetune_lr": 0.0}, "--retrain-finetune-lr"),
        ({"data__batch_size": 0}, "--data-batch-size"),
        ({"model__name": "gpt"}, "--model-name"),
        ({"record__every": -1}, "--record-every"),
        ({"record__hist_every": -2}, "--record-hist-every"),
        ({"record__hist_range": [1.0, -1.0]}, "--record-hist-range"),
        ({"record__hist_bins": 0}, "--record-hist-bins"),
        ({"record__dtype": "int8"}, "--record-dtype"),
        ({"device": "tpu"}, "--device"),
    ],
)
def test_validate_rejects_bad_values_naming_the_option(kw: dict, option: str) -> None:
    with pytest.raises(ConfigError) as e:
        validate_run_config(_with(**kw))
    assert _one_line(e).startswith(option + ":")


def _number_fields() -> list:
    return [f for f in flat_fields() if f.type in (int, float, list[int], list[float])]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("key", [f.key for f in _number_fields() if f.type in (float, list[float])])
def test_every_float_field_must_be_finite(key: str, value: float) -> None:
    """Driven by the field types: a float field added later is covered without a line here."""
    f = next(f for f in flat_fields() if f.key == key)
    bad = [value] * len(f.default) if isinstance(f.default, list) else value
    with pytest.raises(ConfigError) as e:
        validate_run_config(_with(**{key.replace(".", "__"): bad}))
    assert _one_line(e) == f"{f.cli_name}: {value} is not a finite number"


@pytest.mark.parametrize("key", [f.key for f in _number_fields() if f.within is not None])
def test_every_bounded_field_rejects_a_value_below_its_range(key: str) -> None:
    f = next(f for f in flat_fields() if f.key == key)
    low = f.within.lo if f.within.lo_open else f.within.lo - 1
    if isinstance(f.default, list):
        low = [low] * len(f.default)
    elif f.type is int:
        low = int(low)
    with pytest.raises(ConfigError) as e:
        validate_run_config(_with(**{key.replace(".", "__"): low}))
    assert _one_line(e).startswith(f.cli_name + ":") and f.within.describe() in str(e.value)


@pytest.mark.parametrize(
    ("key", "value", "ok"),
    [
        ("seed", -1, False),
        ("seed", 2**32, False),
        ("seed", 2**32 - 1, True),
        ("seed", 0, True),
        ("data__split_seed", -1, False),
        ("data__split_seed", 2**40, False),
    ],
)
def test_seeds_fit_numpy_and_torch(key: str, value: int, ok: bool) -> None:
    cfg = _with(**{key: value})
    if ok:
        validate_run_config(cfg)
    else:
        with pytest.raises(ConfigError, match=r"is not in \[0, 4294967295\]"):
            validate_run_config(cfg)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"train__lr": "0.1"}, "--train-lr: expected a number, got '0.1'"),
        ({"data__batch_size": 64.0}, "--data-batch-size: expected an integer, got 64.0"),
        ({"data__batch_size": True}, "--data-batch-size: expected an integer, got True"),
        ({"record__hist_range": "-8,1"}, "--record-hist-range: expected a list, got '-8,1'"),
        ({"train__milestones": [5]}, "--train-milestones: expected a string, got 5"),
    ],
)
def test_validate_checks_types_set_through_the_api(kw: dict, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        validate_run_config(_with(**kw))
    assert _one_line(e) == message


def test_range_describes_itself() -> None:
    assert Range(0, lo_open=True).describe() == "must be positive"
    assert Range(0).describe() == "must not be negative"
    assert Range(2).describe() == "must be at least 2"
    assert Range(0, 1, hi_open=True).describe() == "is not in [0, 1)"
    assert 0.0 in Range(0, 1, hi_open=True) and 1.0 not in Range(0, 1, hi_open=True)
    assert math.nan not in Range(0, 1)


def test_block_shape_is_accepted_with_the_block_method() -> None:
    validate_run_config(_with(prune__method="block", prune__block_shape=[4, 4]))


# --------------------------------------------------------------------------- hashing


def test_hash_is_stable_and_independent_of_construction() -> None:
    a, b = RunConfig(), from_plain(to_dict(RunConfig()))
    assert a.hash() == b.hash() == RunConfig().hash()
    assert re.fullmatch(r"[0-9a-f]{12}", a.hash())
    expected = hashlib.sha256(json.dumps({}, sort_keys=True).encode()).hexdigest()[:12]
    assert a.hash() == expected  # only options that differ from the defaults are hashed (OpenLTH)
    c = _custom()
    changed = {
        sec: {
            k: v
            for k, v in vals.items()
            if v != to_dict(a)[sec][k] and f"{sec}.{k}" not in NOT_HASHED
        }
        for sec, vals in to_dict(c).items()
        if isinstance(vals, dict)
    }
    changed = {k: v for k, v in changed.items() if v}
    changed.update(
        {k: v for k, v in to_dict(c).items() if not isinstance(v, dict) and v != to_dict(a)[k]}
    )
    assert c.hash() == hashlib.sha256(json.dumps(changed, sort_keys=True).encode()).hexdigest()[:12]
    assert _custom().hash() == apply_overrides(_custom(), {}).hash()


def _changed(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value + 0.5
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, list):
        return [*value, value[0] if value else "x"]
    raise TypeError(value)


def test_hash_ignores_where_the_data_lives() -> None:
    base = RunConfig()
    moved = from_plain(to_dict(base))
    moved.data.root, moved.data.download = "/elsewhere/cifar", True
    assert moved.hash() == base.hash() and moved.hash(("model", "data", "train")) == base.hash(
        ("model", "data", "train")
    )


@pytest.mark.parametrize("key", [f.key for f in flat_fields() if f.key not in NOT_HASHED])
def test_hash_is_sensitive_to_every_field(key: str) -> None:
    base = RunConfig()
    cfg = from_plain(to_dict(base))
    sec, _, name = key.rpartition(".")
    holder = getattr(cfg, sec) if sec else cfg
    setattr(holder, name, _changed(getattr(holder, name)))
    assert cfg.hash() != base.hash()
    cached = ("model", "data", "train")
    if sec in cached:
        assert cfg.hash(cached) != base.hash(cached)
    else:  # the original-run cache key ignores pruning, retraining, recording, seed and device
        assert cfg.hash(cached) == base.hash(cached)


# --------------------------------------------------------------------------- the flat CLI view


def test_flat_fields_cover_every_field_with_cli_names() -> None:
    cfg = _custom()
    fields = flat_fields(cfg)
    expected = {
        f"{sec}.{f.name}" for sec in SECTIONS for f in dataclasses.fields(getattr(cfg, sec))
    }
    expected |= {"seed", "device"}
    keys = [f.key for f in fields]
    assert len(keys) == len(set(keys)) and set(keys) == expected
    names = {f.key: f.cli_name for f in fields}
    assert names["prune.sparsity"] == "--prune-sparsity"
    assert names["train.weight_decay"] == "--train-weight-decay"
    assert names["record.chunk_steps"] == "--record-chunk-steps"
    assert names["seed"] == "--seed"
    assert len(set(names.values())) == len(names)
    for f in fields:
        assert re.fullmatch(r"--[a-z0-9]+(-[a-z0-9]+)*", f.cli_name), f.cli_name
        assert f.help, f.key
        assert f.param_name == f.key.replace(".", "__")
        holder = getattr(cfg, f.section) if f.section else cfg
        assert f.default == getattr(holder, f.name)  # defaults taken from the given config
    assert {f.key: f.default for f in flat_fields()}["prune.sparsity"] == RunConfig().prune.sparsity


def test_every_flat_field_accepts_its_default_as_an_override_string() -> None:
    """The CLI passes strings: each default, printed, reads back to itself."""
    cfg = _custom()
    overrides = {}
    for f in flat_fields(cfg):
        v = f.default
        overrides[f.key] = (
            ",".join(map(str, v))
            if isinstance(v, list)
            else str(v).lower()
            if isinstance(v, bool)
            else str(v)
        )
    assert apply_overrides(RunConfig(), overrides) == cfg
