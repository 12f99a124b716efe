"""Models and datasets from outside the package, named by import path ``package.module:factory``:
resolution, the tolerant factory call, transformers-style ``Conv1D`` weights as prunable tensors,
records equal to the built-in route, and ``--resume`` of a killed run in a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from torch import nn

from shedding.config import ConfigError
from shedding.models import build_model
from shedding.models.prunable import all_prunable_names, prunable_parameters
from shedding.registry import (
    FactoryError,
    PluginError,
    Registry,
    UnknownNameError,
    call_factory,
    resolve_import_path,
)

ROOT = Path(__file__).resolve().parents[2]

MYNETS = r'''
"""A package outside shedding, written by the tests: models and datasets named by import path."""

import os

import torch
from torch import nn
from torch.utils.data import TensorDataset

from shedding.data.datasets import DataBundle
from shedding.data.digits import digits
from shedding.models.small import SmallCNN

NOT_A_FACTORY = 3


def tiny(in_channels, num_classes, image_size):
    """One small convolution and a linear head (noting the building process in $MYNETS_PID_LOG)."""
    if os.environ.get("MYNETS_PID_LOG"):
        with open(os.environ["MYNETS_PID_LOG"], "a") as log:
            log.write(f"{os.getpid()}\n")
    h, w = image_size
    conv = nn.Conv2d(in_channels, 4, 3, padding=1)
    return nn.Sequential(conv, nn.ReLU(), nn.Flatten(), nn.Linear(4 * h * w, num_classes))


def small(in_channels, num_classes, image_size):
    """The built-in small_cnn, by another route."""
    return SmallCNN(in_channels, num_classes, image_size)


def classes_only(num_classes):
    """Takes one of the three arguments, by name."""
    return nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes))


def fixed():
    """Takes none."""
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 10))


def needs_depth(depth):
    return nn.Linear(depth, 10)


def not_a_model(in_channels, num_classes, image_size):
    return [nn.Linear(64, num_classes)]


class Conv1D(nn.Module):
    """A stand-in for transformers' Conv1D: a linear layer whose weight is (in, out)."""

    def __init__(self, nf, nx):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(nx, nf) * 0.1)
        self.bias = nn.Parameter(torch.zeros(nf))

    def forward(self, x):
        return x @ self.weight + self.bias


def gpt_mlp(in_channels, num_classes, image_size):
    """A GPT-2 style MLP of Conv1D layers."""
    n = in_channels * image_size[0] * image_size[1]
    return nn.Sequential(nn.Flatten(), Conv1D(32, n), nn.GELU(), Conv1D(num_classes, 32))


def digits_again(cfg):
    """The built-in digits builder, by another route."""
    return digits(cfg)


def noise():
    """A builder without arguments: 8x8 grey noise in two classes."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, 1, 8, 8, generator=g)
    y = (x.mean(dim=(1, 2, 3)) > 0).long()
    train, test = TensorDataset(x[:64], y[:64]), TensorDataset(x[64:], y[64:])
    return DataBundle("noise", train, test, 1, 2, (8, 8))
'''


def write_mynets(root: Path) -> Path:
    """Write the package ``mynets`` (and ``mynets.broken``, which fails on import) under
    ``root``; returns ``root``, the folder to put on ``sys.path`` / ``PYTHONPATH``."""
    pkg = root / "mynets"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text(textwrap.dedent(MYNETS))
    (pkg / "broken.py").write_text("raise RuntimeError('this module is broken')\n")
    return root


@pytest.fixture
def mynets(tmp_path, monkeypatch) -> Path:
    """``mynets`` importable in this process (sys.path) and in child processes (PYTHONPATH)."""
    root = write_mynets(tmp_path / "pkgs")
    monkeypatch.syspath_prepend(str(root))
    old = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(root), *([old] if old else [])]))
    yield root
    for name in [m for m in sys.modules if m == "mynets" or m.startswith("mynets.")]:
        del sys.modules[name]


# ------------------------------------------------------------------------------- resolution


def test_an_import_path_resolves_to_the_module_attribute(mynets):
    import mynets as module

    from shedding.data import DATASETS
    from shedding.models import MODELS

    assert MODELS.get("mynets:tiny") is module.tiny
    assert MODELS.get("mynets:Conv1D") is module.Conv1D  # a class is a factory too
    assert DATASETS.get("mynets:digits_again") is module.digits_again
    assert "mynets:tiny" in MODELS and "mynets:nope" not in MODELS
    assert not any(":" in n for n in MODELS.names())  # nothing is registered by a lookup
    torch.manual_seed(3)
    got = build_model("mynets:tiny", 1, 10, (8, 8))
    torch.manual_seed(3)
    want = module.tiny(1, 10, (8, 8))
    assert got.state_dict().keys() == want.state_dict().keys()
    assert all(torch.equal(got.state_dict()[k], want.state_dict()[k]) for k in want.state_dict())


@pytest.mark.parametrize(
    "name, error, message",
    [
        (
            "nosuch_pkg.models:net",
            UnknownNameError,
            "unknown model 'nosuch_pkg.models:net': no module named 'nosuch_pkg' "
            "(install it or add its folder to PYTHONPATH)",
        ),
        (
            "mynets:nope",
            UnknownNameError,
            "unknown model 'mynets:nope': 'mynets' has no attribute 'nope'",
        ),
        (
            "mynets:Conv1D.nope",
            UnknownNameError,
            "unknown model 'mynets:Conv1D.nope': 'mynets.Conv1D' has no attribute 'nope'",
        ),
        (
            "mynets:NOT_A_FACTORY",
            UnknownNameError,
            "model 'mynets:NOT_A_FACTORY' is not callable (a value of type int)",
        ),
        ("mynets:", UnknownNameError, "an import path is package.module:factory"),
        (":tiny", UnknownNameError, "an import path is package.module:factory"),
        (
            "mynets.broken:net",
            PluginError,
            "model 'mynets.broken:net': importing module 'mynets.broken' failed: "
            "RuntimeError: this module is broken",
        ),
    ],
)
def test_a_bad_import_path_fails_with_one_line_naming_it(mynets, name, error, message):
    from shedding.models import MODELS

    with pytest.raises(error) as caught:
        MODELS.get(name)
    assert message in str(caught.value) and len(str(caught.value).splitlines()) == 1


def test_only_registries_that_allow_import_paths_take_them(mynets):
    plain: Registry = Registry("thing")
    with pytest.raises(UnknownNameError, match="unknown thing 'mynets:tiny'; choose one of"):
        plain.get("mynets:tiny")
    assert resolve_import_path("mynets:tiny", "thing").__name__ == "tiny"


# -------------------------------------------------------------------------- the factory call


def test_a_factory_that_takes_the_three_arguments_gets_them_positionally():
    calls = []

    def registered_style(a, b, c):  # any names: the call is positional, as it always was
        calls.append((a, b, c))
        return "built"

    shape = {"in_channels": 3, "num_classes": 7, "image_size": (5, 6)}
    assert call_factory(registered_style, shape, "model 'x'") == "built"
    assert calls == [(3, 7, (5, 6))]


def test_a_factory_may_take_fewer_arguments_by_name_or_none(mynets):
    shape = {"in_channels": 3, "num_classes": 7, "image_size": (5, 6)}
    got = []
    assert call_factory(lambda num_classes: got.append(num_classes), shape, "m") is None
    assert (
        call_factory(
            lambda image_size, in_channels: got.append((image_size, in_channels)), shape, "m"
        )
        is None
    )
    assert (
        call_factory(lambda *, num_classes, depth=2: got.append((num_classes, depth)), shape, "m")
        is None
    )
    assert call_factory(lambda: got.append("nothing"), shape, "m") is None
    assert got == [7, ((5, 6), 3), (7, 2), "nothing"]
    assert build_model("mynets:classes_only", 1, 4, (8, 8))[1].out_features == 4
    assert build_model("mynets:fixed", 1, 4, (8, 8))[1].out_features == 10  # its own choice


def test_a_factory_that_cannot_be_called_fails_with_one_line(mynets):
    with pytest.raises(ConfigError) as caught:
        build_model("mynets:needs_depth", 1, 10, (8, 8))
    assert str(caught.value) == (
        "--model-name: model 'mynets:needs_depth': cannot call the factory: it requires depth; "
        "it may take (in_channels, num_classes, image_size), any of them by name, or nothing"
    )
    with pytest.raises(FactoryError, match=r"^m: cannot call the factory: it requires a, b; "):
        call_factory(lambda a, b, num_classes: None, {"num_classes": 2}, "m")
    with pytest.raises(ConfigError, match=r"returned a list, not a torch\.nn\.Module"):
        build_model("mynets:not_a_model", 1, 10, (8, 8))


def test_a_type_error_inside_a_factory_is_its_own_and_not_retried():
    calls = []

    def faulty(in_channels, num_classes, image_size):
        calls.append(1)
        raise TypeError("a bug inside the factory")

    with pytest.raises(TypeError, match="a bug inside the factory"):
        call_factory(faulty, {"in_channels": 1, "num_classes": 2, "image_size": (3, 3)}, "m")
    assert calls == [1]


def test_a_dataset_builder_gets_the_data_section_or_nothing(mynets):
    from shedding.config import DataConfig
    from shedding.data import build_data

    cfg = DataConfig(name="mynets:digits_again")
    a, b = build_data(cfg), build_data(DataConfig(name="digits"))
    assert all(torch.equal(x, y) for x, y in zip(a.train.tensors, b.train.tensors, strict=True))
    noise = build_data(DataConfig(name="mynets:noise"))
    assert (noise.num_classes, len(noise.train), len(noise.test)) == (2, 64, 32)
    with pytest.raises(ConfigError, match=r"'mynets:fixed': the builder returned a Sequential"):
        build_data(DataConfig(name="mynets:fixed"))
    with pytest.raises(ConfigError) as caught:
        build_data(DataConfig(name="mynets:tiny"))
    assert str(caught.value) == (
        "--data-name: dataset 'mynets:tiny': cannot call the factory: it requires in_channels, "
        "num_classes, image_size; it may take (cfg), any of them by name, or nothing"
    )


# ------------------------------------------------------------------------ prunable Conv1D


class Conv1D(nn.Module):
    """Stand-in for ``transformers.pytorch_utils.Conv1D`` (matched by class name only)."""

    def __init__(self, nf: int, nx: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(nx, nf))
        self.bias = nn.Parameter(torch.zeros(nf))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight + self.bias


class Scale(nn.Module):
    """A 2-D weight in a layer of another name: not prunable."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(4, 4))


def test_conv1d_weights_are_prunable_by_class_name():
    block = nn.Module()
    block.c_attn = Conv1D(12, 4)
    block.c_proj = Conv1D(4, 4)
    block.ln = nn.LayerNorm(4)
    block.scale = Scale()
    block.conv = nn.Conv1d(4, 4, 3)  # torch's Conv1d stays prunable
    block.head = nn.Linear(4, 2)
    odd = Conv1D(3, 3)
    odd.weight = nn.Parameter(torch.ones(3))  # a Conv1D with a 1-D weight is not a layer to prune
    block.odd = odd
    names = ["c_attn.weight", "c_proj.weight", "conv.weight", "head.weight"]
    assert all_prunable_names(block) == names
    params = prunable_parameters(block, dense_layers=["c_proj"])
    assert list(params) == ["c_attn.weight", "conv.weight", "head.weight"]
    assert params["c_attn.weight"] is block.c_attn.weight and params["c_attn.weight"].shape == (
        4,
        12,
    )


# ------------------------------------------------------------------------ recording


def _config(model: str, data: str = "digits"):
    from conftest import tiny_config

    cfg = tiny_config("gmp", 0.5)
    cfg.model.name, cfg.data.name = model, data
    return cfg


def _same_arrays(a: Path, b: Path) -> None:
    from zarr_readers import open_group

    from shedding.experiment import FINAL_MODEL

    ga, gb = open_group(a), open_group(b)
    assert sorted(ga.array_keys()) == sorted(gb.array_keys())
    for k in ga.array_keys():
        np.testing.assert_array_equal(np.asarray(ga[k][:]), np.asarray(gb[k][:]), err_msg=k)
    wa = torch.load(a / FINAL_MODEL, weights_only=True)
    wb = torch.load(b / FINAL_MODEL, weights_only=True)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_a_run_by_import_path_equals_the_same_run_by_registered_name(mynets, tmp_path):
    from shedding.experiment import record

    cache = tmp_path / "cache"
    ours = record(
        _config("mynets:small", "mynets:digits_again"), tmp_path / "ours.zarr", cache_dir=cache
    )
    builtin = record(_config("small_cnn"), tmp_path / "builtin.zarr", cache_dir=cache)
    _same_arrays(ours, builtin)
    ds = xr.open_zarr(ours)
    assert ds.attrs["config"]["model"]["name"] == "mynets:small"  # the import path is the name
    assert ds.attrs["config"]["data"]["name"] == "mynets:digits_again"
    assert ds.attrs["status"] == "complete"


def test_a_gpt2_style_model_records_its_conv1d_weights_pruned_exactly(mynets, tmp_path):
    from shedding.experiment import record

    out = record(_config("mynets:gpt_mlp"), tmp_path / "gpt.zarr", cache_dir=tmp_path / "cache")
    ds = xr.open_zarr(out)
    assert ds.layer.attrs["labels"] == ["1.weight", "3.weight"]  # the two Conv1D layers
    assert ds.layer_shape.attrs["labels"] == ["64x32", "32x10"]  # stored (in, out), as Conv1D does
    pre = ds.pre_prune_magnitude.values[0]
    kept = ds.mask.values[0].astype(bool)
    # GMP, checked independently: the round(0.5 N) smallest pre-prune magnitudes are the pruned ones
    assert (~kept).sum() == round(0.5 * pre.size)
    assert pre[~kept].max() <= pre[kept].min()
    last = ds.magnitude.values[-1]
    assert (last[~kept] == 0).all() and (last[kept] > 0).all()  # pruned weights stayed exactly 0


# --------------------------------------------------------------------------- resume


def _cli(args: list[str], cwd: Path, env: dict[str, str], script: str | None = None):
    """Run the CLI (or ``tests/signal_cli.py``, which kills itself as told) in a fresh process."""
    entry = [str(ROOT / "tests" / script)] if script else ["-m", "shedding.cli.main"]
    return subprocess.run(
        [sys.executable, *entry, *args],
        env={**env, "OMP_NUM_THREADS": "1"},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _pythonpath(*folders: Path | str, without: Path | None = None) -> str:
    """``folders`` before this process's PYTHONPATH, less ``without``."""
    old = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    paths = [str(f) for f in folders] + [p for p in old if p]
    return os.pathsep.join(p for p in paths if p != str(without))


@pytest.mark.slow
def test_a_killed_run_of_an_imported_model_resumes_in_a_fresh_process(mynets, tmp_path):
    """Killed (SIGKILL) inside retraining, the run resumes from the configuration in its store, in a
    new process that imports ``mynets`` again, and ends equal to the uninterrupted run."""
    from shedding.config import to_toml
    from shedding.experiment import record

    cfg = _config("mynets:tiny")
    cfg.train.duration, cfg.retrain.duration, cfg.record.every = "6ep", "6ep", 3
    cache = tmp_path / "cache"
    reference = record(cfg, tmp_path / "reference.zarr", cache_dir=cache)
    (tmp_path / "run.toml").write_text(to_toml(cfg))
    out = tmp_path / "killed.zarr"
    env = {**os.environ, "PYTHONPATH": _pythonpath(ROOT, ROOT / "tests")}  # mynets is on it
    killer = {"SHEDDING_SIGNAL": "KILL", "SHEDDING_SIGNAL_AT": "retrain:40"}
    args = [
        "record",
        "--config",
        str(tmp_path / "run.toml"),
        "--out",
        str(out),
        "--cache",
        str(cache),
    ]
    res = _cli(args, tmp_path, {**env, **killer}, script="signal_cli.py")
    assert res.returncode == -9, res.stderr[-2000:]
    attrs = json.loads((out / "zarr.json").read_text())["attributes"]
    assert attrs["status"] == "running" and attrs["config"]["model"]["name"] == "mynets:tiny"
    # without the package on the path, resume names the module it cannot import, in one line
    bare = {**os.environ, "PYTHONPATH": _pythonpath(ROOT, without=mynets)}
    res = _cli(["record", "--resume", str(out)], tmp_path, bare)
    assert res.returncode == 2, res.stderr[-2000:]
    assert res.stderr.strip().splitlines() == [
        "error: --model-name: unknown model 'mynets:tiny': no module named 'mynets' (install it or "
        "add its folder to PYTHONPATH)"
    ]
    res = _cli(["record", "--resume", str(out)], tmp_path, env)
    assert res.returncode == 0, res.stderr[-2000:]
    _same_arrays(out, reference)
