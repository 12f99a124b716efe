"""Static paper figures: `shedding analyze --figures DIR --format svg|pdf|png` (kaleido)."""

from __future__ import annotations

import os
import shutil
import xml.etree.ElementTree as ET

import pytest
from PIL import Image
from typer.testing import CliRunner

from shedding.cli.main import app


def _browser() -> bool:
    names = ("chromium", "chromium-browser", "google-chrome", "chrome")
    return bool(os.environ.get("BROWSER_PATH")) or any(shutil.which(n) for n in names)


pytestmark = pytest.mark.skipif(
    not _browser() and not os.environ.get("SHEDDING_REQUIRE_BROWSER"),
    reason="no Chrome/Chromium for kaleido (set SHEDDING_REQUIRE_BROWSER=1 to fail instead)",
)


@pytest.mark.parametrize("fmt", ["svg", "pdf", "png"])
def test_figures_written_and_valid(recorded, tmp_path, fmt):
    out = tmp_path / "figs"
    runs = [str(recorded[k]) for k in ("gmp", "random", "control")]
    res = CliRunner().invoke(app, ["analyze", *runs, "--figures", str(out), "--format", fmt])
    assert res.exit_code == 0, res.output
    files = sorted(out.iterdir())
    assert files and all(f.suffix == f".{fmt}" for f in files)
    for f in files:
        data = f.read_bytes()
        if fmt == "png":
            assert data[:8] == b"\x89PNG\r\n\x1a\n"
            with Image.open(f) as im:
                assert im.size[0] == 340 * 3
        elif fmt == "svg":
            assert ET.fromstring(data).tag.endswith("svg")
        else:
            assert data[:4] == b"%PDF"


def test_bad_format_writes_nothing(recorded, tmp_path):
    out = tmp_path / "figs"
    res = CliRunner().invoke(
        app, ["analyze", str(recorded["gmp"]), "--figures", str(out), "--format", "gif"]
    )
    assert res.exit_code == 2
    assert not out.exists()
