"""Each kind of report opened in headless Chromium (Debian's chromium + chromium-driver, which
.ci/run installs): no console errors, every figure rendered, a screenshot taken."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from shedding.analysis import open_run
from shedding.analysis.summary import summarize
from shedding.reports import write_report

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
HAVE_BROWSER = Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()
SCREENSHOTS = (
    Path(os.environ.get("SHEDDING_SCREENSHOTS", ""))
    if os.environ.get("SHEDDING_SCREENSHOTS")
    else None
)

REASON = (
    "needs Debian's chromium and chromium-driver "
    "(apt-get install chromium chromium-driver; .ci/run does)"
)
if not HAVE_BROWSER and os.environ.get("SHEDDING_REQUIRE_BROWSER"):
    raise RuntimeError(f"SHEDDING_REQUIRE_BROWSER is set but the browser is missing: {REASON}")
pytestmark = pytest.mark.skipif(not HAVE_BROWSER, reason=REASON)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=Service(executable_path=CHROMEDRIVER))
    yield driver
    driver.quit()


def _check(driver, path: Path, shot: Path) -> dict[str, int]:
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(path.resolve().as_uri())
    WebDriverWait(driver, 60).until(
        lambda d: d.execute_script(
            "return Array.from(document.querySelectorAll('div.figure'))"
            ".every(d => d.querySelector('.main-svg'))"
        )
    )
    counts = driver.execute_script(
        "return {figures: document.querySelectorAll('div.figure').length,"
        " rendered: document.querySelectorAll('div.figure .main-svg').length > 0 ?"
        "   Array.from(document.querySelectorAll('div.figure'))"
        "     .filter(d => d.querySelector('.main-svg')).length : 0,"
        " traces: Array.from(document.querySelectorAll('div.figure'))"
        "   .map(d => (d.data || []).length)"
        "   .reduce((a, b) => a + b, 0)}"
    )
    errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert errors == [], errors
    driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    if SCREENSHOTS is not None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, SCREENSHOTS / shot.name)
    return counts


@pytest.mark.parametrize("kind", ["full", "comparison", "no-control"])
def test_report_renders_in_chromium(browser, recorded_seeds, tmp_path, kind):
    names = list(recorded_seeds) if kind != "no-control" else ["gmp-s0", "random-s0"]
    runs = {n: open_run(recorded_seeds[n]) for n in names}
    path = write_report(
        summarize(runs),
        tmp_path / f"{kind}.html",
        kind="comparison" if kind == "comparison" else "full",
    )
    counts = _check(browser, path, tmp_path / f"{kind}.png")
    assert counts["figures"] >= 3 and counts["rendered"] == counts["figures"]
    assert counts["traces"] > counts["figures"]  # every figure drew data, not an empty frame


def test_linked_hover_reaches_other_figures(browser, recorded_seeds, tmp_path):
    runs = {n: open_run(p) for n, p in recorded_seeds.items()}
    path = write_report(summarize(runs), tmp_path / "link.html")
    _check(browser, path, tmp_path / "link.png")
    hovered = browser.execute_script("""
        const linked = Array.from(document.querySelectorAll('.figure[data-link="step"]'));
        linked.forEach(d => { d._hoverdata = undefined; });
        // what a mouse hover on the first figure emits
        // (plotly emits plotly_hover only for pointer events)
        linked[0].emit('plotly_hover', {points: [{x: 10}]});
        return linked.slice(1)
            .filter(d => d._hoverdata && d._hoverdata.some(p => p.x === 10)).length;""")
    n_linked = browser.execute_script(
        "return document.querySelectorAll('.figure[data-link=\"step\"]').length;"
    )
    # the others now show step 10 (a figure may lack it)
    assert n_linked >= 3 and hovered >= n_linked - 2


@pytest.mark.parametrize("name", ["rewinding", "blocks", "cascade"])
def test_study_report_renders_in_chromium(browser, studies, tmp_path, name):
    counts = _check(browser, studies[name] / "report.html", tmp_path / f"study-{name}.png")
    assert counts["figures"] >= 1 and counts["rendered"] == counts["figures"]
    assert counts["traces"] >= counts["figures"]  # every figure drew data
    if name == "cascade":
        assert (
            counts["figures"] >= 5
        )  # S(t) per condition, excess bars, accuracy, controls, convergence
