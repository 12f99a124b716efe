"""The documentation: a short README whose links and commands hold, a docs site that builds
strictly (broken links and anchors fail), and the code's citations of the definitions page name its
sections."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SCIENCE = ROOT / "docs" / "science.md"

# The two commands of the README, byte for byte: CI runs the second (.ci/run), users paste both.
DEMO_COMMAND = "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/shedding demo"
TEST_COMMAND = (
    'python3 -m venv .venv && .venv/bin/pip install -e ".[test]" && .venv/bin/python -m pytest -q'
)

# Folders whose Python sources may cite the definitions page.
SOURCE_DIRS = ("shedding", "analysis", "reports", "studies", "cli", "benchmarks", "tests")
# Built from parts so that this file does not cite the page itself.
CITATION = re.compile(re.escape("docs/science" + ".md") + r"#([A-Za-z0-9_-]+)")

LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_SRC = re.compile(r"""<(?:img|a)\b[^>]*\b(?:src|href)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def slugify(text: str) -> str:
    """The anchor MkDocs (Python-Markdown's toc extension) gives a heading: ASCII, lower case,
    punctuation dropped, runs of spaces and hyphens made one hyphen."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link's text
    text = re.sub(r"[*`]", "", text)  # emphasis and code marks
    text = re.sub(r"\s*\{#[^}]*\}\s*$", "", text)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def outside_code(markdown: str) -> list[str]:
    """The lines of a Markdown text outside fenced code blocks."""
    lines, fenced = [], False
    for line in markdown.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def anchors(path: Path) -> set[str]:
    """The anchors of a Markdown page's headings (duplicates numbered as MkDocs does), plus explicit
    ``{#id}`` attributes and HTML ``id``/``name`` attributes."""
    out: set[str] = set()
    seen: dict[str, int] = {}
    for line in outside_code(path.read_text(encoding="utf-8")):
        m = HEADING.match(line)
        if m:
            explicit = re.search(r"\{#([^}\s]+)\}\s*$", m.group(2))
            slug = explicit.group(1) if explicit else slugify(m.group(2))
            if slug in seen:
                seen[slug] += 1
                slug = f"{slug}_{seen[slug]}"
            else:
                seen[slug] = 0
            out.add(slug)
        out.update(re.findall(r"""\b(?:id|name)\s*=\s*["']([^"']+)["']""", line))
    return out


def relative_links(path: Path) -> list[str]:
    """Every Markdown link and image target, and HTML src/href, that is not a URL or a bare
    anchor."""
    text = "\n".join(outside_code(path.read_text(encoding="utf-8")))
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code is not a link
    targets = LINK.findall(text) + HTML_SRC.findall(text)
    return [t for t in targets if not re.match(r"^([a-z][a-z0-9+.-]*:|#|//)", t, re.IGNORECASE)]


def test_readme_is_short() -> None:
    n = len(README.read_text(encoding="utf-8").splitlines())
    assert n <= 200, f"README.md has {n} lines; details belong in docs/ (at most 200)"


def test_readme_links_point_to_files_and_headings() -> None:
    links = relative_links(README)
    assert any(t.endswith(".png") for t in links), "the README shows a screenshot of the report"
    assert any(t.startswith("docs/") for t in links), "the README links to the docs"
    broken = []
    for target in links:
        file, _, fragment = target.partition("#")
        dest = (README.parent / file).resolve()
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
            broken.append(f"{target}: no heading with anchor #{fragment} in {file}")
    assert not broken, "broken links in README.md:\n" + "\n".join(broken)


def test_readme_has_the_two_commands_and_ci_runs_the_test_command() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert DEMO_COMMAND in lines, "the README's demo command changed (CI and users rely on it)"
    assert TEST_COMMAND in lines, "the README's test command changed (.ci/run runs it)"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    # CI may quieten pip; the command is otherwise the README's
    ci = re.sub(r"pip install -q ", "pip install ", ci)
    assert re.search(re.escape(TEST_COMMAND) + r"\s*(\)|;|&&|\|\||$)", ci, re.MULTILINE), (
        ".ci/run no longer runs the README's test command"
    )


def _mkdocs() -> list[str] | None:
    """How to run MkDocs with this interpreter's packages, or None when it is not installed."""
    beside = Path(sys.executable).parent / "mkdocs"
    if beside.exists():
        return [str(beside)]
    if importlib.util.find_spec("mkdocs") is not None:
        return [sys.executable, "-m", "mkdocs"]
    found = shutil.which("mkdocs")
    return [found] if found else None


def test_docs_build_strictly(tmp_path: Path) -> None:
    mkdocs = _mkdocs()
    if mkdocs is None:
        pytest.skip("mkdocs is not installed (the test extra installs it)")
    res = subprocess.run(
        [
            *mkdocs,
            "build",
            "--strict",
            "--config-file",
            str(ROOT / "mkdocs.yml"),
            "--site-dir",
            str(tmp_path / "site"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, (
        "mkdocs build --strict failed:\n" + (res.stdout + res.stderr)[-4000:]
    )
    pages = ("index", "science", "recording", "analysis", "studies", "extending", "benchmarks")
    for page in (*pages, "results", "store-format"):
        built = tmp_path / "site" / ("index.html" if page == "index" else f"{page}/index.html")
        assert built.exists(), f"docs page {page} was not built"


def test_code_citations_name_sections_of_the_definitions_page() -> None:
    have = anchors(SCIENCE)
    for required in ("pruning", "retraining", "shedding", "kept-sets"):
        assert required in have, f"docs/science.md has no section #{required}"
    cited: dict[str, list[str]] = {}
    here = Path(__file__).resolve()
    for folder in SOURCE_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.resolve() == here or "__pycache__" in path.parts:
                continue
            text = path.read_text(encoding="utf-8")
            for n, line in enumerate(text.splitlines(), 1):
                for anchor in CITATION.findall(line):
                    cited.setdefault(anchor, []).append(f"{path.relative_to(ROOT)}:{n}")
    assert cited, "no citation of the definitions page found in the code"
    missing = {a: where for a, where in cited.items() if a not in have}
    assert not missing, "cited sections missing from docs/science.md: " + "; ".join(
        f"#{a} ({', '.join(where[:3])})" for a, where in sorted(missing.items())
    )
