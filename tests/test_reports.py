"""The HTML report: self-contained, and every figure's data equals the analysis it draws."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from analysis import open_run
from analysis.summary import summarize
from reports import write_report


def _figures(html: str) -> list[dict]:
    blocks = re.findall(r'<script type="application/json" id="fig-\d+-data">(.*?)</script>', html, re.S)
    return [json.loads(b.replace("<\\/", "</")) for b in blocks]


def _num(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


@pytest.fixture(scope="module")
def report(recorded, tmp_path_factory):
    runs = {n: open_run(p) for n, p in recorded.items()}
    summary = summarize(runs)
    path = write_report(summary, tmp_path_factory.mktemp("rep") / "report.html")
    return summary, path.read_text()


def test_report_is_self_contained(report):
    _, html = report
    tags = re.findall(r"<(script|link|img|iframe)\b([^>]*)>", html, re.I)
    assert not [attrs for _, attrs in tags if re.search(r"\b(src|href)\s*=", attrs)]  # nothing loaded from elsewhere
    library, _, rest = html.partition("</script>")  # the first script is plotly.js itself, inlined
    assert len(library) > 1_000_000 and "http" not in rest.replace("http-equiv", "")
    assert "Plotly.newPlot" in rest


def test_every_figure_holds_its_data(report):
    summary, html = report
    figs = _figures(html)
    titles = [f["layout"]["title"]["text"] for f in figs]
    n = len(summary.runs)
    # shed curves + a heatmap per run + a magnitude distribution per run + training + overlap
    assert len(figs) == 1 + n + n + 1 + 1
    curves = figs[0]["data"]
    by_name = {t["name"]: t for t in curves}
    for name, f in summary.fractions.items():
        label = name + (" (control)" if name in summary.controls else "")
        np.testing.assert_allclose(_num(by_name[label]["y"]), f.shed_fraction_global.values)
        assert by_name[label]["x"] == [int(s) for s in f.step.values]
    ctrl = summary.fractions["control"].shed_fraction_global.values
    np.testing.assert_allclose(_num(by_name["gmp excess"]["y"]),
                               summary.fractions["gmp"].shed_fraction_global.values - ctrl)
    heat = next(f for f, t in zip(figs, titles, strict=True) if t == "random: shed fraction per layer")
    np.testing.assert_allclose(np.array([_num(r) for r in heat["data"][0]["z"]]),
                               summary.fractions["random"].shed_fraction.transpose("layer", "step").values)
    training = next(f for f, t in zip(figs, titles, strict=True) if t == "Training")
    loss = next(t for t in training["data"] if t["name"] == "gmp loss")
    np.testing.assert_allclose(_num(loss["y"]), summary.runs["gmp"].loss.values, rtol=1e-6)
    overlap = figs[-1]["data"][0]
    names = overlap["x"]
    i, j = names.index("gmp"), names.index("random")
    assert overlap["z"][i][j] == pytest.approx(float(summary.overlaps[("gmp", "random")].jaccard.sel(scope="all")))


def test_verdicts_and_control_warning(recorded, report, tmp_path):
    summary, html = report
    for name in ("gmp", "random"):
        assert f"{name}: {summary.cascades[name].attrs['verdict'].upper()}" in html
    alone = write_report(summarize({"gmp": open_run(recorded["gmp"])}), tmp_path / "alone.html").read_text()
    assert "No control run" in alone and "cannot show a cascade" in alone
