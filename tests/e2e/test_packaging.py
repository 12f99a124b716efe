"""One import name and one direction: the installed tree exposes only ``shedding``, its layers
import only downwards (import-linter's layers contract in pyproject.toml) and no module imports
itself back."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

CYCLES = """
import grimp
g = grimp.build_graph("shedding", cache_dir=None)
edges = {m: g.find_modules_directly_imported_by(m) for m in g.modules}
seen, done = set(), set()
def visit(m, path):
    if m in path:
        raise SystemExit("cycle: " + " -> ".join(path[path.index(m):] + [m]))
    if m in done:
        return
    for n in sorted(edges[m]):
        visit(n, path + [m])
    done.add(m)
for m in sorted(edges):
    visit(m, [])
print("no cycles among", len(edges), "modules")
"""


def _installed_tree(dest: Path) -> Path:
    """The package as setuptools installs it: each folder of pyproject's package-dir table copied to
    the place its dotted name gives, under ``dest``."""
    tool = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "shedding", dest / "shedding", ignore=ignore)
    for name, folder in tool["package-dir"].items():
        shutil.copytree(ROOT / folder, dest / Path(*name.split(".")), ignore=ignore)
    assert sorted(tool["packages"]) == sorted(
        ".".join(p.relative_to(dest).parts[:-1]) for p in dest.rglob("__init__.py")
    ), "pyproject's package list and the folders differ"
    return dest


def _run(args: list[str], tree: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(args, cwd=tree, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return _installed_tree(tmp_path_factory.mktemp("installed"))


def test_layers_contract_is_kept(tree: Path) -> None:
    res = _run([str(LINT_IMPORTS), "--no-cache", str(PYPROJECT)], tree)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "1 kept, 0 broken" in res.stdout


def test_an_upward_import_breaks_the_contract(tmp_path: Path) -> None:
    tree = _installed_tree(tmp_path)
    magnitude = tree / "shedding" / "pruning" / "magnitude.py"
    magnitude.write_text(magnitude.read_text() + "\nimport shedding.analysis.summary  # noqa\n")
    res = _run([str(LINT_IMPORTS), "--no-cache", str(PYPROJECT)], tree)
    assert res.returncode == 1, res.stdout[-3000:]
    assert "shedding.pruning.magnitude -> shedding.analysis.summary" in res.stdout


def test_no_module_imports_itself_back(tree: Path) -> None:
    res = _run([sys.executable, "-c", CYCLES], tree)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "no cycles among" in res.stdout


def test_a_cycle_is_found(tmp_path: Path) -> None:
    tree = _installed_tree(tmp_path)
    config = tree / "shedding" / "config.py"
    config.write_text(config.read_text() + "\nimport shedding.validate  # noqa\n")
    res = _run([sys.executable, "-c", CYCLES], tree)
    assert res.returncode != 0 and "shedding.validate" in res.stderr and "cycle:" in res.stderr


@pytest.mark.slow
def test_installed_copy_has_one_import_name(tmp_path: Path) -> None:
    """``pip install .`` (not editable) into a folder outside the checkout: the four layers import
    under
    ``shedding``, and their folder names are not importable on their own."""
    source, target = (
        tmp_path / "source",
        tmp_path / "site",
    )  # a copy: the build writes into its source
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for folder in ("shedding", "analysis", "reports", "studies", "cli"):
        shutil.copytree(
            ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    pip = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "-q",
        "--no-deps",
        "--target",
        str(target),
        str(source),
    ]
    res = subprocess.run(pip, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    packages = [p.name for p in target.iterdir() if p.suffix != ".dist-info" and p.name != "bin"]
    assert packages == ["shedding"]  # bin/ holds the console script
    code = f"""
import importlib
import shedding.analysis, shedding.reports, shedding.studies, shedding.cli.main
assert shedding.analysis.__file__.startswith({str(target)!r})
for name in ("analysis", "reports", "cli", "studies"):
    try:
        importlib.import_module(name)
    except ModuleNotFoundError:
        continue
    raise SystemExit(name + " is importable")
print("ok")
"""
    env = {**os.environ, "PYTHONPATH": str(target)}
    res = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stdout + res.stderr


def _long_functions(limit: int) -> list[str]:
    """Functions of the package whose body (after the signature and docstring) is over ``limit``
    lines."""
    import ast

    out = []
    for folder in ("shedding", "analysis", "reports", "studies", "cli"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                body = node.body
                if len(body) > 1 and isinstance(body[0], ast.Expr):
                    if isinstance(body[0].value, ast.Constant):
                        body = body[1:]
                if node.end_lineno - body[0].lineno + 1 > limit:
                    out.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    return out


def test_functions_are_short() -> None:
    assert _long_functions(60) == []
