"""Registries: entries from installed plugins (entry points) are seen by every process, the CLI's
included, like built-in ones; bad names fail with the list of valid ones."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shedding.analysis import open_run
from shedding.registry import GROUPS, Registry, UnknownNameError

PLUGIN_MODELS = '''
from torch import nn

from shedding.models.factories import MODELS


@MODELS.register("plugin_mlp")
def plugin_mlp(in_channels, num_classes, image_size):
    """One hidden layer of 16 units."""
    n = in_channels * image_size[0] * image_size[1]
    return nn.Sequential(nn.Flatten(), nn.Linear(n, 16), nn.ReLU(), nn.Linear(16, num_classes))
'''

PLUGIN_PRUNING = '''
import torch


def prune_nothing(weights, masks, sparsity, cfg, generator):
    """Keeps every weight (an object entry point: registered under the entry point's name)."""
    return {k: torch.ones_like(m) for k, m in masks.items()}
'''


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """A folder holding an installed distribution 'shedding-test-plugin': its modules and its
    dist-info with entry points in two groups (a module entry and an object entry)."""
    site = tmp_path_factory.mktemp("site")
    pkg = site / "shedding_test_plugin"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "models.py").write_text(PLUGIN_MODELS)
    (pkg / "pruning.py").write_text(PLUGIN_PRUNING)
    info = site / "shedding_test_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: shedding-test-plugin\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text(
        f"[{GROUPS['model']}]\nplugin_mlp = shedding_test_plugin.models\n\n"
        f"[{GROUPS['pruning method']}]\n"
        "plugin_nothing = shedding_test_plugin.pruning:prune_nothing\n"
    )
    return site


def _cli(site: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site)}
    cmd = [sys.executable, "-m", "shedding.cli.main", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_cli_lists_plugin_entries(plugin_site: Path, tmp_path: Path) -> None:
    res = _cli(plugin_site, "list", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    lines = dict(line.split(": ", 1) for line in res.stdout.splitlines() if ": " in line)
    assert "plugin_mlp" in lines["models"].split(", ")
    assert "plugin_nothing" in lines["pruning methods"].split(", ")
    assert "small_cnn" in lines["models"].split(", ")  # built-ins are still there


def test_cli_records_with_a_plugin_model(plugin_site: Path, tmp_path: Path) -> None:
    out = tmp_path / "run.zarr"
    res = _cli(
        plugin_site, "record", "--model-name", "plugin_mlp", "--train-duration", "1ep",
        "--retrain-duration", "1ep", "--record-every", "0", "--out", str(out),
        "--cache", str(tmp_path / "cache"), cwd=tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    ds = open_run(out)
    assert ds.attrs["status"] == "complete"
    # the plugin's two Linear weights (64 -> 16 -> 10 on 8x8 digits) are the prunable tensors
    assert ds.layer.values.tolist() == ["1.weight", "3.weight"]
    assert ds.layer_size.values.tolist() == [64 * 16, 16 * 10]


def test_a_plugin_that_fails_to_load_is_named(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "broken_plugin-0.1.dist-info").mkdir(parents=True)
    (site / "broken_plugin-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n"
    )
    (site / "broken_plugin-0.1.dist-info" / "entry_points.txt").write_text(
        f"[{GROUPS['model']}]\nbroken = no_such_module_anywhere\n"
    )
    res = _cli(site, "record", "--model-name", "broken", "--out", str(tmp_path / "r.zarr"),
               cwd=tmp_path)  # fmt: skip
    assert res.returncode == 2, res.stderr
    assert res.stderr.startswith("error: model plugin 'broken' (no_such_module_anywhere) failed")
    assert len(res.stderr.strip().splitlines()) == 1
    res = _cli(site, "list", cwd=tmp_path)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert res.stderr.startswith("error: model plugin 'broken'")
    assert not (tmp_path / "r.zarr").exists()


def test_unknown_name_lists_the_choices() -> None:
    reg: Registry[int] = Registry("thing")
    reg.register("a")(1)
    reg.register("b")(2)
    with pytest.raises(UnknownNameError, match=r"unknown thing 'c'; choose one of: a, b"):
        reg.get("c")
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("a")(3)
    assert reg.get("b") == 2 and "a" in reg and "c" not in reg and list(reg) == ["a", "b"]
