"""The HTML report: self-contained, and every figure's data equals the analysis it draws."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import zarr

from shedding.analysis import magnitude_histogram, open_run
from shedding.analysis.blocks import block_density
from shedding.analysis.overlap import convergence
from shedding.analysis.summary import summarize
from shedding.reports import write_report


def _figures(html: str) -> list[dict]:
    blocks = re.findall(
        r'<script type="application/json" id="fig-\d+-data">(.*?)</script>', html, re.S
    )
    return [json.loads(b.replace("<\\/", "</")) for b in blocks]


def _by_title(figs: list[dict], fragment: str) -> dict:
    found = [f for f in figs if fragment in f["layout"]["title"]["text"]]
    assert len(found) == 1, [f["layout"]["title"]["text"] for f in figs]
    return found[0]


def _num(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


@pytest.fixture(scope="module")
def report(recorded_seeds, tmp_path_factory):
    runs = {n: open_run(p) for n, p in recorded_seeds.items()}
    summary = summarize(runs)
    path = write_report(summary, tmp_path_factory.mktemp("rep") / "report.html")
    return summary, path.read_text(), recorded_seeds


def test_report_is_self_contained(report):
    _, html, _ = report
    tags = re.findall(r"<(script|link|img|iframe)\b([^>]*)>", html, re.I)
    assert not [
        attrs for _, attrs in tags if re.search(r"\b(src|href)\s*=", attrs)
    ]  # nothing loaded from elsewhere
    library, _, rest = html.partition("</script>")  # the first script is plotly.js itself, inlined
    assert len(library) > 1_000_000 and "http" not in rest.replace("http-equiv", "")
    assert "Plotly.newPlot" in rest


def _raw_curve(path) -> np.ndarray:
    g = zarr.open_group(str(path), mode="r")
    return np.asarray(g["shed_count"][:]).sum(1) / np.asarray(g["event_eligible"][0]).sum()


def test_ci_bands_are_the_seed_means(report):
    summary, html, paths = report
    bands = _by_title(_figures(html), "Shedding after pruning")["data"]
    by_name = {t["name"]: t for t in bands}
    for method in ("gmp", "random"):
        label = next(lbl for lbl in summary.conditions if lbl.startswith(method))
        curves = np.stack([_raw_curve(paths[f"{method}-s{s}"]) for s in (0, 1)])
        mean_trace = by_name[f"{label} (n=2)"]
        np.testing.assert_allclose(_num(mean_trace["y"]), curves.mean(0))
        excess = curves - np.stack([_raw_curve(paths[f"control-s{s}"]) for s in (0, 1)])
        np.testing.assert_allclose(_num(by_name[f"{label} (n=2) excess"]["y"]), excess.mean(0))
        band = by_name[f"{label} (n=2) 95% CI"]
        n = len(mean_trace["x"])
        high, low = _num(band["y"][:n]), _num(band["y"][n:][::-1])
        assert (low <= curves.mean(0) + 1e-12).all() and (curves.mean(0) <= high + 1e-12).all()
        assert (low >= curves.min(0) - 1e-12).all() and (
            high <= curves.max(0) + 1e-12
        ).all()  # 2-seed bootstrap


def test_every_other_figure_holds_its_data(report):
    summary, html, _ = report
    figs = _figures(html)
    heat = _by_title(figs, "random-s1: shed fraction per layer")
    np.testing.assert_allclose(
        np.array([_num(r) for r in heat["data"][0]["z"]]),
        summary.fractions["random-s1"].shed_fraction.transpose("layer", "step").values,
    )
    training = _by_title(figs, "Training")
    loss = next(t for t in training["data"] if t["name"] == "gmp-s0 loss")
    np.testing.assert_allclose(_num(loss["y"]), summary.runs["gmp-s0"].loss.values, rtol=1e-6)
    acc = _by_title(figs, "Accuracy against sparsity")
    pts = {
        (t["name"], txt): (x, y)
        for t in acc["data"]
        for txt, x, y in zip(t["text"], t["x"], t["y"], strict=True)
    }
    for name, ds in summary.runs.items():
        hits = [
            v
            for (trace, txt), v in pts.items()
            if txt == name and trace.endswith("after retraining")
        ]
        assert hits == [
            (
                pytest.approx(float(ds.event_sparsity[0])),
                pytest.approx(float(ds.event_final_test_accuracy[0])),
            )
        ]
    overlap = _by_title(figs, "Kept-set overlap")["data"][0]
    names = overlap["x"]
    i, j = names.index("gmp-s0"), names.index("random-s0")
    cell = summary.overlap.sel(run_a="gmp-s0", run_b="random-s0", scope="all")
    assert overlap["z"][i][j] == pytest.approx(float(cell.jaccard - cell.jaccard_chance))
    conv = _by_title(figs, "move towards GMP")
    trace = next(t for t in conv["data"] if t["name"].startswith("random-s0 vs gmp-s0: effective"))
    expect = convergence(summary.runs["random-s0"], summary.runs["gmp-s0"])
    np.testing.assert_allclose(_num(trace["y"]), expect.toward_effective.values)
    blocks = _by_title(figs, "gmp-s0: kept weights per block")
    res = block_density(summary.runs["gmp-s0"], block=(4, 4))
    np.testing.assert_array_equal(blocks["data"][0]["y"], res.observed.sel(scope="all").values)
    anim = _by_title(figs, "Distribution of surviving |w|")
    frame = anim["frames"][-1]
    step = int(frame["name"])
    first_run = frame["data"][0]["name"]
    hist = (
        magnitude_histogram(summary.runs[first_run], lo=-6.0, hi=1.0).sel(record_step=step).values
    )
    np.testing.assert_array_equal(frame["data"][0]["y"], hist)


def test_verdicts_with_ci_and_control_warning(recorded, report, tmp_path):
    summary, html, _ = report
    for label, stats in summary.condition_stats.items():
        assert f"{label}: {str(stats['verdict']).upper()}" in html
        assert stats["seeds"] == 2 and np.isfinite(stats["excess_peak_ci"][0])
    alone = write_report(
        summarize({"gmp": open_run(recorded["gmp"])}), tmp_path / "alone.html"
    ).read_text()
    assert "No control run" in alone and "cannot show a cascade" in alone
    assert "NO CONTROL" in alone  # the verdict banner says it too


def test_comparison_report_has_only_kept_set_sections(recorded, tmp_path):
    runs = {n: open_run(p) for n, p in recorded.items()}
    html = write_report(
        summarize(runs), tmp_path / "cmp.html", kind="comparison", block=(2, 2)
    ).read_text()
    titles = [f["layout"]["title"]["text"] for f in _figures(html)]
    assert any("Kept-set overlap" in t for t in titles) and any("2x2 blocks" in t for t in titles)
    assert not any("Shedding after pruning" in t or "Training" == t for t in titles)
