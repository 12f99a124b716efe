"""The HTML report: self-contained, and every figure's data equals the analysis it draws."""

from __future__ import annotations

import json
import re
from html import unescape

import numpy as np
import pytest
import zarr

from shedding.analysis import magnitude_histogram, open_run
from shedding.analysis.blocks import block_density
from shedding.analysis.overlap import convergence
from shedding.analysis.summary import summarize
from shedding.reports import write_report
from shedding.reports.html import html_table
from shedding.reports.numbers import Estimate, PValue, ci_pair, number, pvalue


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


def _by_name(fig: dict, name: str) -> dict:
    found = [t for t in fig["data"] if t.get("name") == name]
    assert len(found) == 1, [t.get("name") for t in fig["data"]]
    return found[0]


def _assert_run_selector(fig: dict, names: list[str], per_run: int) -> None:
    """The dropdown has a button per run that shows exactly that run's traces."""
    menu = fig["layout"]["updatemenus"][0]
    assert [b["label"] for b in menu["buttons"]] == names
    for i, b in enumerate(menu["buttons"]):
        visible = b["args"][0]["visible"]
        assert [j for j, v in enumerate(visible) if v] == list(
            range(i * per_run, (i + 1) * per_run)
        )
        assert names[i] in b["args"][1]["title.text"]
    shown = [t["name"] for t in fig["data"] if t.get("visible") is True]
    assert shown and all(n.startswith("gmp-s0") for n in shown)  # the first pruned run first


def test_one_per_layer_heatmap_with_a_run_selector(report):
    summary, html, _ = report
    heat = _by_title(_figures(html), "Per-layer shed fraction")
    names = list(summary.runs)
    assert [t["name"] for t in heat["data"]] == names
    _assert_run_selector(heat, names, 1)
    zmax = max(float(np.nanmax(f.shed_fraction.values)) for f in summary.fractions.values())
    for name in names:
        trace = _by_name(heat, name)
        np.testing.assert_allclose(
            np.array([_num(r) for r in trace["z"]]),
            summary.fractions[name].shed_fraction.transpose("layer", "step").values,
        )
        assert trace["zmax"] == pytest.approx(zmax)  # one colour scale for every run


def test_one_magnitude_view_with_a_run_selector(report):
    summary, html, _ = report
    view = _by_title(_figures(html), "Distribution of surviving |w| over steps")
    names = list(summary.runs)
    _assert_run_selector(view, names, 2)
    heat = _by_name(view, "random-s1")
    hist = magnitude_histogram(summary.runs["random-s1"], lo=-6.0, hi=1.0)
    counts = hist.sel(record_step=heat["x"]).transpose("bin", "record_step").values
    np.testing.assert_array_equal(np.array(heat["customdata"]), counts)
    np.testing.assert_allclose(np.array(heat["z"]), np.log10(1 + counts), atol=5e-4)
    line = _by_name(view, "random-s1: shed line")
    tau = float(summary.runs["random-s1"].event_line.values[0])
    assert line["y"] == [pytest.approx(np.log10(tau))] * 2


def test_kept_set_matrix_same_seed_first_every_pair_on_a_button(report):
    summary, html, _ = report
    fig = _by_title(_figures(html), "Kept-set overlap")
    labels = [b["label"] for b in fig["layout"]["updatemenus"][0]["buttons"]]
    assert labels == [
        "same seed",
        "every pair",
        "effective sets: same seed",
        "effective sets: every pair",
    ]
    same, every = fig["data"][0], fig["data"][1]
    assert same["visible"] is True and every["visible"] is False
    names = same["x"]
    assert names == ["gmp-s0", "random-s0", "gmp-s1", "random-s1"]  # by seed, controls left out
    for a in names:
        for b in names:
            i, j = names.index(a), names.index(b)
            cell = summary.overlap.sel(run_a=a, run_b=b, scope="all")
            diff = float(cell.jaccard - cell.jaccard_chance)
            if a == b:
                assert same["z"][i][j] is None and every["z"][i][j] is None
                continue
            assert every["z"][i][j] == pytest.approx(diff)
            same_seed = a[-1] == b[-1]
            assert same["z"][i][j] == (pytest.approx(diff) if same_seed else None)
            assert every["customdata"][i][j] == (
                f"{a} vs {b}<br>Jaccard {number(float(cell.jaccard))}<br>chance "
                f"{number(float(cell.jaccard_chance))}<br>p {pvalue(float(cell.p_value))}"
            )
    eff = fig["data"][2]
    cell = summary.overlap_effective.sel(run_a="gmp-s1", run_b="random-s1", scope="all")
    assert eff["z"][2][3] == pytest.approx(float(cell.jaccard - cell.jaccard_chance))


def test_every_other_figure_holds_its_data(report):
    summary, html, _ = report
    figs = _figures(html)
    training = _by_title(figs, "Training")
    loss = next(t for t in training["data"] if t["meta"] == "gmp-s0 loss")
    np.testing.assert_allclose(_num(loss["y"]), summary.runs["gmp-s0"].loss.values, rtol=1e-6)
    assert sum(t["showlegend"] for t in training["data"]) == len(summary.runs)  # one per run
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
    conv = _by_title(figs, "move towards GMP")
    trace = next(t for t in conv["data"] if t["name"].startswith("random-s0 vs gmp-s0: effective"))
    expect = convergence(summary.runs["random-s0"], summary.runs["gmp-s0"])
    np.testing.assert_allclose(_num(trace["y"]), expect.toward_effective.values)
    blocks = _by_title(figs, "gmp-s0: kept weights per block")
    labels = [b["label"] for b in blocks["layout"]["updatemenus"][0]["buttons"]]
    assert labels[0] == "gmp-s0: all" and any(x.startswith("random-s0: ") for x in labels)
    for run in ("gmp-s0", "random-s0"):
        k = labels.index(f"{run}: all")
        res = block_density(summary.runs[run], block=(4, 4))
        np.testing.assert_array_equal(
            blocks["data"][2 * k]["y"], res.observed.sel(scope="all").values
        )


def test_verdicts_with_ci_and_control_warning(recorded, report, tmp_path):
    summary, html, _ = report
    answer = html[html.index('<div id="answer">') : html.index('<nav class="toc"')]
    for label, stats in summary.condition_stats.items():
        assert f"<b>{label}: {str(stats['verdict']).upper()}</b>" in answer
        assert stats["seeds"] == 2 and np.isfinite(stats["excess_peak_ci"][0])
        low, high = stats["excess_peak_ci"]
        value, ci = ci_pair(stats["excess_peak"], low, high, signed=True)
        assert f"{value} (95% CI {ci}) over 2 seeds" in answer
    assert answer.index("<b>") < answer.index('id="fig-0"')  # the sentences, then the figure
    assert "Shedding after pruning" in _figures(html)[0]["layout"]["title"]["text"]
    alone = write_report(
        summarize({"gmp": open_run(recorded["gmp"])}), tmp_path / "alone.html"
    ).read_text()
    assert "No control run" in alone and "cannot show a cascade" in alone
    assert "<b>gmp 0.5, lr_rewind: NO CONTROL</b>" in alone  # the verdict line says it too


def _cells(html: str) -> list[str]:
    """The text of every table cell of a page."""
    cells = re.findall(r"<td[^>]*>(.*?)</td>", html, re.S)
    return [unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in cells]


def test_tables_are_written_as_people_write_them(report):
    summary, html, _ = report
    cells = _cells(html)
    assert len(cells) > 100
    assert not [c for c in cells if re.search(r"\d[eE][+-]?\d", c)]  # no scientific notation
    assert not {"-1", "None", "null", "nan", "NaN"} & set(cells)
    row = next(r for r in summary.table() if r["onset_step"] == -1)  # a run without an onset
    assert re.search(
        rf'<td class="text">{row["run"]}</td>(<td[^>]*>[^<]*</td>){{9}}<td class="text">—</td>',
        html,
    )  # its onset cell (the 11th) says none
    label, stats = next(iter(summary.condition_stats.items()))
    low, high = stats["amplification_ci"]
    value, ci = ci_pair(stats["amplification"], low, high)
    assert f'>{value}<span class="ci"> {ci}</span></td>' in html  # the CI formatted like its mean
    assert html.count('<table class="sortable">') >= 4 and "aria-sort" in html  # sortable


def test_html_table_signs_sorts_and_boxes():
    rows = [
        {"run": "a", "excess": 0.0127, "p": PValue(3e-9), "ci": Estimate(0.5, 0.25, 0.75)},
        {"run": "b", "excess": -0.004, "p": PValue(0.25), "ci": Estimate(0.5, np.nan, np.nan)},
    ]
    table = html_table(rows)
    assert table.startswith('<div class="tablebox"><table class="sortable"><thead>')
    assert '<td class="num" data-v="0.0127">+0.0127</td>' in table  # signed: a negative below
    assert '<td class="num" data-v="-0.004">\u22120.00400</td>' in table
    assert '<td class="num" data-v="3e-09">&lt; 1e-6</td>' in table
    assert '<td class="num" data-v="0.5">0.500<span class="ci"> [0.250, 0.750]</span></td>' in table
    assert '<td class="num" data-v="0.5">0.500</td>' in table  # one seed: the value alone
    assert "<th>excess peak</th>" in html_table([{"excess_peak": 1.0}])  # headings in words


def test_configuration_of_a_store_without_one(recorded, tmp_path):
    runs = {n: open_run(p) for n, p in recorded.items()}
    for ds in runs.values():
        ds.attrs.pop("config", None)  # as shedding.watch records a store
    html = write_report(summarize(runs), tmp_path / "watched.html").read_text()
    config = html[html.index('<section id="configuration"') :]
    config = config[: config.index("</section>")]
    assert "recorded without a configuration" in config and "—" in config
    assert "null" not in config and "None" not in config


def test_comparison_report_has_only_kept_set_sections(recorded, tmp_path):
    runs = {n: open_run(p) for n, p in recorded.items()}
    summary = summarize(runs)
    html = write_report(summary, tmp_path / "cmp.html", kind="comparison", block=(2, 2)).read_text()
    figs = _figures(html)
    titles = [f["layout"]["title"]["text"] for f in figs]
    assert "Kept-set overlap" in titles[0]  # the answer's figure
    assert any("2x2 blocks" in t for t in titles)
    assert not any("Shedding after pruning" in t or "Training" == t for t in titles)
    answer = html[html.index('<div id="answer">') : html.index('<nav class="toc"')]
    g = summary.overlap.sel(run_a="gmp", run_b="random", scope="all")
    diff = number(float(g.jaccard - g.jaccard_chance), signed=True)
    assert f"kept sets share {diff} Jaccard beyond chance (mean over 1 pair of runs" in answer
    assert "shedding moves its kept set" in answer  # random's convergence towards GMP's
