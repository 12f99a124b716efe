"""The semi-structured view (shedding.analysis.blocks): per-block kept counts against the binomial
expectation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr
from scipy.stats import binom

from shedding.analysis import kept_set, open_run
from shedding.analysis.blocks import block_density, pooled_chisquare
from shedding.config import PruneConfig
from shedding.pruning.block import block_pruning
from shedding.reports.block_figures import block_density_figure


def store_like(
    layers: list[tuple[str, tuple[int, ...], np.ndarray]], n_events: int = 1
) -> xr.Dataset:
    """A store-shaped Dataset: ``mask(event, weight)`` and the layer coordinates, from per-layer
    masks."""
    flat = [np.asarray(m, dtype=np.uint8).reshape(-1) for _, _, m in layers]
    sizes = np.array([f.size for f in flat], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    mask = np.broadcast_to(np.concatenate(flat), (n_events, int(sizes.sum())))
    return xr.Dataset(
        {"mask": (("event", "weight"), mask.copy())},
        coords={
            "layer": [n for n, _, _ in layers],
            "layer_size": ("layer", sizes),
            "layer_start": ("layer", starts),
            "layer_shape": ("layer", ["x".join(map(str, s)) for _, s, _ in layers]),
        },
    )


def np_block_counts(mask: np.ndarray, shape: tuple[int, ...], bh: int, bw: int) -> list[int]:
    """Independent reference: loop over the full (bh x bw) blocks of the (out, rest) view."""
    m2 = np.asarray(mask).reshape(shape[0], -1)
    out = []
    for i in range(0, m2.shape[0] - bh + 1, bh):
        for j in range(0, m2.shape[1] - bw + 1, bw):
            out.append(int(m2[i : i + bh, j : j + bw].sum()))
    return out


def block_mask(
    shape: tuple[int, ...], bh: int, bw: int, p: float, rng: np.random.Generator
) -> np.ndarray:
    """Whole (bh x bw) blocks kept with probability p (shape's 2-D view a multiple of the block)."""
    r, c = shape[0], int(np.prod(shape[1:]))
    keep = rng.random((r // bh, c // bw)) < p
    return np.kron(keep, np.ones((bh, bw), dtype=bool)).reshape(shape)


# --------------------------------------------------------------------------- (a) block-pruned masks


def test_block_pruned_mask_is_all_or_nothing_and_clustered():
    rng = np.random.default_rng(0)
    layers = [
        ("conv.weight", (16, 8, 3, 3), block_mask((16, 8, 3, 3), 2, 2, 0.5, rng)),
        ("fc.weight", (10, 64), block_mask((10, 64), 2, 2, 0.3, rng)),
    ]
    res = block_density(store_like(layers), block=(2, 2))
    assert list(res.scope.values) == ["all", "conv.weight", "fc.weight"]
    assert list(res.kept_count.values) == [0, 1, 2, 3, 4]
    assert (res.observed.sel(kept_count=[1, 2, 3]) == 0).all()
    assert res.n_blocks.values.tolist() == [8 * 36 + 5 * 32, 8 * 36, 5 * 32]
    assert (res.n_weights_dropped == 0).all()
    # counts only at 0 and k: variance k^2 d(1-d) against k d(1-d), so the dispersion is exactly k
    np.testing.assert_allclose(res.dispersion.values, 4.0, rtol=1e-12)
    np.testing.assert_allclose(res.frac_empty_observed + res.frac_full_observed, 1.0)
    assert (res.frac_full_observed > res.frac_full_expected).all()
    assert (res.p_value < 1e-20).all()


def test_mask_from_the_block_pruner_with_partial_edges():
    """Masks from shedding's own block pruner: every full block is all or nothing (same tiling)."""
    g = torch.Generator().manual_seed(0)
    weights = {"conv": torch.randn(10, 3, 3, 3, generator=g), "fc": torch.randn(7, 30, generator=g)}
    masks = {k: torch.ones_like(w) for k, w in weights.items()}
    cfg = PruneConfig(method="block", sparsity=0.5, block_shape=[3, 4])
    out = block_pruning(weights, masks, 0.5, cfg, g)
    layers = [(k, tuple(weights[k].shape), out[k].numpy()) for k in weights]
    res = block_density(store_like(layers), block=(3, 4))
    assert (res.observed.sel(kept_count=slice(1, 11)) == 0).all()
    assert res.n_blocks.values.tolist() == [
        3 * 6 + 2 * 7,
        3 * 6,
        2 * 7,
    ]  # 10x27 and 7x30 views, full blocks
    assert res.n_weights_dropped.values.tolist() == [270 - 216 + 210 - 168, 270 - 216, 210 - 168]
    np.testing.assert_allclose(res.dispersion.values, 12.0, rtol=1e-12)


# -------------------------------------------------------------------------- (b) i.i.d. random masks


@pytest.mark.parametrize(
    ("block", "nm", "d"), [((2, 2), None, 0.3), ((1, 1), None, 0.5), (None, (2, 4), 0.6)]
)
def test_random_mask_is_binomial(block, nm, d):
    rng = np.random.default_rng(1)
    shape = (200, 50, 2, 2)  # 20,000 full 2x2 blocks, 50,000 groups of 4, 40,000 single weights
    ds = store_like([("w", shape, rng.random(shape) < d)])
    res = block_density(ds, block=block, nm=nm).sel(scope="all")
    k = int(res.kept_count.max())
    n, dh = int(res.n_blocks), float(res.density)
    assert abs(dh - d) < 5 * np.sqrt(d * (1 - d) / (n * k))
    if (
        k == 1
    ):  # a single weight per block: the count is Bernoulli and the dispersion is 1 identically
        assert float(res.dispersion) == pytest.approx(1.0) and np.isnan(float(res.p_value))
        return
    # Standard error of the sample variance of n binomial(k, d) counts: sqrt((mu4 - sigma^4) / n),
    # with mu4 = k p q (1 + 3 (k - 2) p q); the dispersion divides it by sigma^2 = k p q. Allow 5
    # standard errors (a fixed seed, so no flakiness; 5 SE would fail by chance less than once in a
    # million seeds).
    pq = d * (1 - d)
    sigma2 = k * pq
    mu4 = sigma2 * (1 + 3 * (k - 2) * pq)
    se = np.sqrt((mu4 - sigma2**2) / n) / sigma2
    assert abs(float(res.dispersion) - 1) < 5 * se
    assert float(res.p_value) > 1e-3
    z = (res.observed - res.expected) / np.sqrt(res.expected)
    assert float(abs(z).max()) < 5
    np.testing.assert_allclose(res.expected, n * binom.pmf(np.arange(k + 1), k, dh))
    if nm is not None:
        assert float(res.frac_nm_expected) == pytest.approx(binom.cdf(nm[0], k, dh))
        assert abs(float(res.frac_nm_observed) - float(res.frac_nm_expected)) < 0.01


# -------------------------------------------------------------------------- (c) against plain numpy


@pytest.mark.parametrize(
    ("block", "nm"), [((2, 4), None), (None, (2, 4)), ((3, 5), None), ((1, 1), None)]
)
def test_counts_match_numpy_with_partial_edges(block, nm):
    rng = np.random.default_rng(2)
    layers = [
        (
            "a",
            (5, 3, 3, 3),
            rng.random((5, 3, 3, 3)) < 0.4,
        ),  # 5x27: partial bottom row and right column
        ("b", (7, 10), rng.random((7, 10)) < 0.7),
        ("tiny", (1, 3), np.ones((1, 3), dtype=bool)),
    ]  # no full block for most shapes
    ds = store_like(layers)
    res = block_density(ds, block=block, nm=nm)
    bh, bw = block if block is not None else (1, nm[1])
    k = bh * bw
    all_counts = []
    for name, shape, m in layers:
        counts = np_block_counts(m, shape, bh, bw)
        all_counts += counts
        r = res.sel(scope=name)
        hist = [counts.count(i) for i in range(k + 1)]
        assert r.observed.values.tolist() == hist
        assert int(r.n_blocks) == len(counts)
        assert int(r.n_weights_dropped) == m.size - len(counts) * k
        if counts:
            d = sum(counts) / (len(counts) * k)
            assert float(r.density) == pytest.approx(d)
            np.testing.assert_allclose(r.expected, len(counts) * binom.pmf(np.arange(k + 1), k, d))
            var = np.var(counts)
            if 0 < d < 1:
                assert float(r.dispersion) == pytest.approx(var / (k * d * (1 - d)))
            assert float(r.frac_empty_observed) == pytest.approx(counts.count(0) / len(counts))
            assert float(r.frac_full_observed) == pytest.approx(counts.count(k) / len(counts))
        else:
            assert np.isnan(float(r.density)) and float(r.expected.sum()) == 0
    assert res.sel(scope="all").observed.values.tolist() == [
        all_counts.count(i) for i in range(k + 1)
    ]
    if (bh, bw) == (2, 4):
        assert int(res.sel(scope="a").n_blocks) == (2 * 6 if block else 5 * 6)


def test_pooling_rule():
    # expected 1, 2, 3, 10, 4: pools [0..2] (6), [3] (10), trailing [4] (4 < 5) merged into the
    # previous one
    obs, exp = np.array([2, 1, 3, 9, 5]), np.array([1.0, 2.0, 3.0, 10.0, 4.0])
    stat, dof, p = pooled_chisquare(obs, exp)
    assert dof == 0 and np.isnan(p)
    stat, dof, p = pooled_chisquare(obs, exp, ddof=0)
    o, e = np.array([6, 14]), np.array([6.0, 14.0])
    assert dof == 1 and stat == pytest.approx(((o - e) ** 2 / e).sum())


# --------------------------------------------------------------------------- (d) real stores


@pytest.mark.parametrize("name", ["gmp", "random"])
@pytest.mark.parametrize(("block", "nm"), [((2, 2), None), (None, (2, 4))])
def test_real_stores_totals(recorded, name, block, nm):
    ds = open_run(recorded[name])
    res = block_density(ds, block=block, nm=nm)
    assert list(res.scope.values) == ["all", *[str(v) for v in ds.layer.values]]
    np.testing.assert_array_equal(res.observed.sum("kept_count"), res.n_blocks)
    np.testing.assert_allclose(res.expected.sum("kept_count"), res.n_blocks, rtol=1e-9)
    assert int(res.n_blocks.sel(scope="all")) == int(res.n_blocks.drop_sel(scope="all").sum())
    np.testing.assert_array_equal(
        res.observed.sel(scope="all"), res.observed.drop_sel(scope="all").sum("scope")
    )
    k = int(res.kept_count.max())
    kept = int((res.observed.sel(scope="all") * res.kept_count).sum())
    assert float(res.density.sel(scope="all")) == pytest.approx(
        kept / (k * int(res.n_blocks.sel(scope="all")))
    )
    # with 1x1 blocks every weight counts: the density is the mask's own
    one = block_density(ds, block=(1, 1)).sel(scope="all")
    assert float(one.density) == pytest.approx(float(ds["mask"].isel(event=-1).mean()))


def test_effective_set_differs_from_mask(recorded):
    ds = open_run(recorded["random"])
    mask = block_density(ds, block=(1, 1))
    eff = block_density(ds, block=(1, 1), effective=True)
    assert eff.attrs["effective"] and not mask.attrs["effective"]
    kept = kept_set(ds, effective=True).values
    assert int(eff.observed.sel(scope="all", kept_count=1)) == int(kept.sum())
    assert float(eff.density.sel(scope="all")) < float(mask.density.sel(scope="all"))
    # the same through an explicit kept set, and for a grouped view against the numpy reference
    given = block_density(ds, kept=kept_set(ds, effective=True), nm=(2, 4))
    eff_nm = block_density(ds, nm=(2, 4), effective=True)
    xr.testing.assert_equal(given.drop_attrs(), eff_nm.drop_attrs())
    for name, start, size, shape in zip(
        ds.layer.values,
        ds.layer_start.values,
        ds.layer_size.values,
        ds.layer_shape.values,
        strict=True,
    ):
        counts = np_block_counts(
            kept[start : start + size], tuple(int(s) for s in shape.split("x")), 1, 4
        )
        assert eff_nm.observed.sel(scope=name).values.tolist() == [
            counts.count(i) for i in range(5)
        ]
    assert not (eff_nm.observed == block_density(ds, nm=(2, 4)).observed).all()


# --------------------------------------------------------------------------- (e) arguments


def test_exactly_one_of_block_or_nm():
    ds = store_like([("w", (4, 4), np.ones((4, 4), dtype=bool))])
    with pytest.raises(ValueError, match="exactly one of block"):
        block_density(ds)
    with pytest.raises(ValueError, match="exactly one of block"):
        block_density(ds, block=(2, 2), nm=(2, 4))
    with pytest.raises(ValueError, match="N:M"):
        block_density(ds, nm=(5, 4))
    with pytest.raises(ValueError, match="positive"):
        block_density(ds, block=(0, 2))
    with pytest.raises(ValueError, match="one value per weight"):
        block_density(ds, kept=xr.DataArray(np.ones(3, dtype=bool), dims="weight"), block=(2, 2))


# --------------------------------------------------------------------------- (f) the figure


def test_figure_data_equals_result():
    rng = np.random.default_rng(3)
    layers = [
        ("conv.weight", (8, 4, 3, 3), block_mask((8, 4, 3, 3), 2, 2, 0.5, rng)),
        ("fc.weight", (10, 20), rng.random((10, 20)) < 0.4),
    ]
    res = block_density(store_like(layers), block=(2, 2))
    fig = block_density_figure("demo", res, scope="fc.weight")
    scopes = list(res.scope.values)
    assert len(fig.data) == 2 * len(scopes)
    for i, s in enumerate(scopes):
        obs, exp = fig.data[2 * i], fig.data[2 * i + 1]
        assert obs.meta == s and exp.meta == s
        assert list(obs.x) == [0, 1, 2, 3, 4]
        assert list(obs.y) == res.observed.sel(scope=s).values.astype(float).tolist()
        np.testing.assert_allclose(list(exp.y), res.expected.sel(scope=s).values)
        assert obs.visible == (s == "fc.weight") and exp.visible == (s == "fc.weight")
        assert all(type(v) is float for v in exp.y)
    menu = fig.layout.updatemenus[0]
    assert [b.label for b in menu.buttons] == scopes and menu.active == scopes.index("fc.weight")
    assert menu.buttons[0].args[0]["visible"] == [True, True] + [False] * (2 * len(scopes) - 2)
    title = fig.layout.title.text
    assert (
        "2x2 blocks" in title and "fc.weight" in title and "dispersion" in title and "p =" in title
    )
    assert f"{float(res.dispersion.sel(scope='fc.weight')):.3g}" in title
    assert '"y": [' in fig.to_json().replace(":[", ": [") and "bdata" not in fig.to_json()
    with pytest.raises(ValueError, match="unknown scope"):
        block_density_figure("demo", res, scope="nope")
