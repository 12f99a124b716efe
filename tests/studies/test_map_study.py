"""``shedding study map``: the design, the new models and optimizer, and every cell statistic of a
tiny grid run for real, checked against an independent numpy recount from the stores (read with
zarr, not through the functions under test)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
import zarr
from torch import nn

from shedding.config import TrainConfig, parse_step
from shedding.grid import run_path
from shedding.models import build_model
from shedding.models.prunable import prunable_parameters
from shedding.studies import STUDIES
from shedding.studies.map_design import FACTORS, QUICK, settings
from shedding.studies.map_grid import apply_setting
from shedding.studies.map_tables import heatmap, sig3, top_rows
from shedding.studies.study_runs import Entry, collect
from shedding.training.optim import build_optimizer

TINY_ARGS = ["--train-duration", "2ep", "--record-every", "1", "--record-dtype", "float32"]
OVERRIDES = {"train.duration": "2ep", "record.every": "1", "record.dtype": "float32"}
ONSET = 0.01
MIN_EXCESS = 0.05


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """The tiny map (one setting, GMP and random, 2 seeds, 2 epochs) through the CLI."""
    from typer.testing import CliRunner

    from shedding.cli.main import app

    out = tmp_path_factory.mktemp("map") / "tiny"
    args = ["study", "map", "--size", "tiny", "--scheduler", "sync", "--out", str(out)]
    res = CliRunner().invoke(app, [*args, *TINY_ARGS])
    assert res.exit_code == 0, res.output
    assert "expected time: about" in res.output  # printed before the grid starts
    return out


def _results(out: Path):
    study = STUDIES.get("map")
    _, grid, runs = study.plan("tiny", overrides=OVERRIDES)
    entries = [
        Entry(r.label, r.factor_dict(), str(run_path(out / "runs", r.config)), "complete")
        for r in runs
    ]
    return runs, study.analyze(collect(entries, out / "pretrain"), grid)


# --------------------------------------------------------------------------- the numpy recount


def _recount(path: str) -> dict[str, np.ndarray | float]:
    """Shed counts per retraining step recounted from the stored float32 magnitudes, mask and line:
    eligible = kept and at or above the line at the event, shed = eligible and below it now."""
    g = zarr.open_group(path, mode="r")
    line = np.float32(g["event_line"][0])
    rec = g["record_step"][:]
    mags = g["magnitude"][:]
    ev = int(g["event_step"][0])
    mask = g["mask"][0].astype(bool)
    eligible = mask & (mags[rec == ev][0] >= line)
    steps = g["step"][:][g["step_round"][:] == 0]
    shed = np.array([(eligible & (mags[rec == s][0] < line)).sum() for s in steps])
    np.testing.assert_array_equal(shed, g["shed_count"][:][g["step_round"][:] == 0].sum(axis=1))
    return {
        "since": steps - ev,
        "shed": shed,
        "S": shed / eligible.sum(),
        "eligible": float(eligible.sum()),
        "pruned": float(g["event_pruned"][0].sum()),
        "accuracy": float(g.attrs["final_test_accuracy"]),
    }


def _run_stats(run: dict, ctrl: dict) -> dict[str, float]:
    """A pruned run's statistics against its control, from the recounts alone."""
    common, i_run, i_ctrl = np.intersect1d(run["since"], ctrl["since"], return_indices=True)
    excess = run["S"][i_run] - ctrl["S"][i_ctrl]
    k = int(np.argmax(excess))
    onset = np.flatnonzero(excess >= ONSET)
    own_peak = int(np.argmax(run["S"]))
    return {
        "excess_peak": float(excess[k]),
        "amplification": float(excess[k] * run["eligible"] / run["pruned"]),
        "raw_amplification": float(run["shed"][own_peak] / run["pruned"]),
        "onset": float(common[onset[0]]) if onset.size else np.nan,
        "control_peak_shed_fraction": float(ctrl["S"][i_ctrl].max()),
        "final_accuracy": run["accuracy"],
    }


def test_every_cell_statistic_equals_the_numpy_recount(tiny):
    runs, res = _results(tiny)
    cells = res.tables["cells"]
    assert sorted(cells.method.values.tolist()) == ["gmp", "random"]  # 2 cells
    paths = {r.label: str(run_path(tiny / "runs", r.config)) for r in runs}
    counts = {lbl: _recount(p) for lbl, p in paths.items()}
    for i in range(cells.sizes["group"]):
        c = cells.isel(group=i)
        method = str(c.method.values)
        per_seed = []
        for seed in (0, 1):
            [lbl] = [r.label for r in runs if r.factors.method == method and r.config.seed == seed]
            [ctrl] = [r.label for r in runs if r.factors.method == "none" and r.config.seed == seed]
            assert str(res.runs.control.sel(run=lbl).values) == ctrl  # the seed-matched control
            per_seed.append(_run_stats(counts[lbl], counts[ctrl]))
        assert int(c.seeds) == int(c.controls) == 2
        for var in per_seed[0]:
            values = np.array([s[var] for s in per_seed])
            if np.isnan(values).any():
                assert np.isnan(float(c[f"{var}_low"])), var  # no CI without every seed's value
                continue
            np.testing.assert_allclose(float(c[var]), values.mean(), rtol=1e-9, err_msg=var)
            # 2 seeds: the 95% percentile bootstrap interval of the mean is [min, max]
            np.testing.assert_allclose(float(c[f"{var}_low"]), values.min(), rtol=1e-9)
            np.testing.assert_allclose(float(c[f"{var}_high"]), values.max(), rtol=1e-9)
        cascade = float(c.excess_peak) >= MIN_EXCESS and float(c.excess_peak_low) > 0
        assert str(c.verdict.values) == ("cascade" if cascade else "no cascade")
        assert bool(c.amplified_ci) == (float(c.amplification_low) > 1)


def test_heatmap_and_top_cells_hold_the_cells(tiny):
    _, res = _results(tiny)
    cells, base = res.tables["cells"], res.extras["base"]
    h = heatmap(cells, base, "sparsity", "method")
    assert h.y.values.tolist() == [0.2] and sorted(h.x.values.tolist()) == ["gmp", "random"]
    for m in ("gmp", "random"):
        c = cells.isel(group=int(np.flatnonzero(cells.method.values == m)[0]))
        assert float(h.amplification.sel(y=0.2, x=m)) == float(c.amplification)
        assert float(h.excess_peak_low.sel(y=0.2, x=m)) == float(c.excess_peak_low)
    top = top_rows(res, 1, plain=True)
    assert len(top) == 1 and top[0]["amplification"] == float(cells.amplification.max())
    assert sig3(0.123456, 0.1, 0.15) == "0.123 [0.1, 0.15]" and sig3(float("nan")) == "—"
    assert sig3(2.0) == "2"


def test_the_report_opens_with_heatmaps_claims_and_top_cells(tiny):
    html = (tiny / "report.html").read_text()
    assert "Compared with the paper" in html and "The top 15 cells by amplification" in html
    assert "updatemenus" in html and '"type":"heatmap"' in html.replace(" ", "")
    assert "seed-matched unpruned control" in html
    assert re.search(r"<b>(reproduced[^<]*|not reproduced[^<]*|inconclusive[^<]*)</b>", html)
    figures = re.findall(r'<script type="application/json" id="fig-\d+-data">(.*?)</script>', html)
    assert len(figures) == 2  # amplification and excess
    for text in figures:
        fig = _strict_json(text.replace("<\\/", "</"))
        assert fig["data"] and fig["layout"]["updatemenus"][0]["buttons"]


def _strict_json(text: str) -> dict:
    """JSON as a browser parses it: NaN and Infinity are errors."""

    def refuse(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_a_heatmap_with_a_blank_cell_is_valid_json(tiny):
    from shedding.reports.html import figure_block
    from shedding.studies.map_figures import heatmap_figure, heatmap_options

    _, res = _results(tiny)
    cells, base = res.tables["cells"], res.extras["base"]
    extra = cells.isel(group=[0]).assign_coords(group=[99])
    extra["sparsity"] = ("group", [0.5])  # a second level run for one method only
    extra["onset"] = ("group", [np.nan])
    both = xr.concat([cells, extra], dim="group")
    [h] = heatmap_options(both, base, [("sparsity", "method")])
    assert h.sizes == {"y": 2, "x": 2} and int(np.isnan(h.amplification.values).sum()) == 1
    fig = heatmap_figure([h], "amplification")
    block = figure_block(fig, 0, link=False)
    payload = re.search(r'id="fig-0-data">(.*?)</script>', block).group(1)
    data = _strict_json(payload.replace("<\\/", "</"))["data"][0]
    assert sum(v is None for row in data["z"] for v in row) == 1
    assert [t for row in data["text"] for t in row].count("") == 1


def test_the_report_renders_in_chromium(tiny, tmp_path):
    from tests.e2e.test_browser import HAVE_BROWSER

    if not HAVE_BROWSER:
        pytest.skip("needs Debian's chromium and chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.e2e.test_browser import CHROMEDRIVER, CHROMIUM

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        opts.add_argument(arg)
    opts.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=Service(executable_path=CHROMEDRIVER))
    try:
        driver.get((tiny / "report.html").resolve().as_uri())
        WebDriverWait(driver, 60).until(
            lambda d: d.execute_script(
                "return Array.from(document.querySelectorAll('div.figure'))"
                ".every(d => d.querySelector('.main-svg'))"
            )
        )
        n = driver.execute_script(
            "return document.querySelectorAll('div.figure .heatmaplayer').length"
        )
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    finally:
        driver.quit()
    assert errors == [] and n == 2


# --------------------------------------------------------------------------- the design


def test_quick_design_sweeps_crosses_controls_and_budget():
    study = STUDIES.get("map")
    _, grid, runs = study.plan("quick")
    assert grid.seeds >= 3 and STUDIES.get("map").grid("full").seeds >= 3
    by_setting: dict[tuple, set] = {}
    for r in runs:
        f = r.factor_dict()
        by_setting.setdefault(tuple(f[k] for k in FACTORS), set()).add((f["method"], f["seed"]))
    expect = {(m, s) for m in ("gmp", "random", "none") for s in range(grid.seeds)}
    assert all(v == expect for v in by_setting.values())  # every cell: both methods, a control
    assert set(by_setting) == set(settings(QUICK))
    base = tuple(QUICK.base[k] for k in FACTORS)
    for i, factor in enumerate(FACTORS):  # each sweep: its levels, the rest at the base
        levels = {s[i] for s in by_setting if s[:i] + s[i + 1 :] == base[:i] + base[i + 1 :]}
        assert levels >= set(QUICK.sweeps[factor]), factor
    assert {(0.0, 0.01), (5e-3, 0.01), (5e-3, 1.0)} <= {(s[2], s[3]) for s in by_setting}
    epochs = sum(parse_step(r.config.retrain.duration, "").ep for r in runs)
    assert epochs <= 900  # the studies' quick budget (tests/studies/test_study_grids.py)
    assert len({r.config.hash() for r in runs}) == len(runs)


def test_apply_setting_sets_optimizer_decay_and_retraining():
    cfg = STUDIES.get("map").setting("quick")
    apply_setting(cfg, ("mlp", "adamw", 5e-4, 0.01, 0.2), 0.1, 0.9)
    assert (cfg.model.name, cfg.train.optimizer) == ("mlp", "adamw")
    assert cfg.train.lr == pytest.approx(1e-3) and cfg.train.weight_decay == pytest.approx(0.05)
    assert cfg.train.lr * cfg.train.weight_decay == pytest.approx(0.1 * 5e-4)  # SGD's shrink
    assert cfg.retrain.technique == "finetune" and cfg.retrain.finetune_lr == pytest.approx(1e-5)
    apply_setting(cfg, ("small_cnn", "sgd_nomom", 0.0, 1.0, 0.01), 0.1, 0.9)
    assert cfg.train.momentum == 0.0 and cfg.train.lr == 0.1 and cfg.train.weight_decay == 0.0
    assert cfg.retrain.technique == "lr_rewind" and cfg.prune.sparsity == 0.01


# --------------------------------------------------------------------------- models and AdamW

NEW_MODELS = (
    "digits_cnn_narrow",
    "digits_cnn_wide",
    "digits_cnn_nobn",
    "digits_resnet",
    "digits_mobilenet",
)


@pytest.mark.parametrize("name", NEW_MODELS)
def test_digits_family_models_build_and_prune_their_conv_and_linear_weights(name):
    net = build_model(name, 1, 10, (8, 8))
    assert net(torch.zeros(3, 1, 8, 8)).shape == (3, 10)
    layers = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(prunable_parameters(net)) == len(layers)
    has_bn = any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    assert has_bn == (name != "digits_cnn_nobn")
    if name == "digits_mobilenet":
        assert any(m.groups == m.in_channels > 1 for m in layers if isinstance(m, nn.Conv2d))
    widths = {"digits_cnn_narrow": 8, "digits_cnn_wide": 64, "digits_cnn_nobn": 32}
    if name in widths:
        assert net.conv1.out_channels == widths[name]


def test_adamw_decays_decoupled_and_keeps_pruned_weights_at_zero():
    from shedding.training.callbacks import MaskCallback

    w = nn.Parameter(torch.tensor([0.0, 0.5, -2.0]))
    opt = build_optimizer([w], TrainConfig(optimizer="adamw", lr=0.1, weight_decay=0.2))
    assert isinstance(opt, torch.optim.AdamW)
    w.grad = torch.zeros(3)
    opt.step()  # no gradient: only the decoupled decay moves w
    np.testing.assert_allclose(w.detach().numpy(), [0.0, 0.5 * 0.98, -2.0 * 0.98], rtol=1e-6)
    mask = {"w": torch.tensor([0.0, 1.0, 1.0])}
    cb = MaskCallback({"w": w}, mask)
    w.grad = torch.tensor([1.0, 1.0, 1.0])
    cb.before_optimizer_step(None)
    opt.step()
    cb.on_step_end(None)
    assert w[0].item() == 0.0 and opt.state[w]["exp_avg"][0].item() == 0.0


# --------------------------------------------------------------------------- the claims' rules


def _cell(**kw) -> dict:
    """A cells-table row at the quick base, GMP, with the given statistics (mean, low, high)."""
    row = {**QUICK.base, "method": "gmp", "seeds": 3, "controls": 3, "verdict": "no cascade"}
    for var in ("excess_peak", "amplification", "final_accuracy"):
        mean, low, high = kw.pop(var, (0.01, 0.005, 0.015))
        row.update({var: mean, f"{var}_low": low, f"{var}_high": high})
    return {**row, **kw}


def test_claim_verdicts_follow_their_rules():
    from shedding.studies.map_claims import amplification_claim, factor_claim
    from shedding.studies.study_runs import frame

    base = dict(QUICK.base)
    lr = [
        _cell(retrain_lr=1.0, excess_peak=(0.03, 0.02, 0.04)),
        _cell(retrain_lr=0.01, excess_peak=(0.001, 0.0, 0.002)),
    ]
    row = factor_claim(frame(lr), base, "retrain_lr", "c", "p")
    assert row["verdict"] == "reproduced" and row["ours"].startswith("gmp: rewind (x1) excess 0.03")
    lr[1]["excess_peak_high"] = 0.025  # the CIs now overlap
    assert factor_claim(frame(lr), base, "retrain_lr", "c", "p")["verdict"] == "not reproduced"
    lr[0].update(excess_peak=0.0, excess_peak_low=-0.001, excess_peak_high=0.0005)
    lr[1].update(excess_peak=0.03, excess_peak_low=0.02, excess_peak_high=0.04)  # low LR higher
    assert factor_claim(frame(lr), base, "retrain_lr", "c", "p")["verdict"] == "not reproduced"
    amps = [_cell(amplification=(0.5, 0.4, 0.6)), _cell(sparsity=0.01, amplification=(1.5, 0.9, 2))]
    assert amplification_claim(amps)["verdict"].startswith("inconclusive")
    amps[1]["amplification_low"] = 1.2
    assert amplification_claim(amps)["verdict"] == "reproduced in 1 of 2 cells"
    amps[1].update(amplification=0.8, amplification_low=0.7)
    assert amplification_claim(amps)["verdict"] == "not reproduced"
    amps[1]["sparsity"] = 0.5  # not a small share: left out
    assert "0 of 1 cells" in amplification_claim(amps)["ours"]


def test_the_configurations_model_is_the_base_and_the_family_still_swept():
    from collections import Counter

    _, _, runs = STUDIES.get("map").plan("quick", overrides={"model.name": "digits_resnet"})
    models = Counter(r.factors.model for r in runs)
    assert set(models) == set(QUICK.sweeps["model"])  # small_cnn stays a level
    assert models.most_common(1)[0] == ("digits_resnet", 9 * (len(settings(QUICK)) - 6))
