"""Pruning methods against independent oracles: torch.nn.utils.prune and plain numpy."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.utils.prune as prune
from torch import nn

from shedding.config import PruneConfig
from shedding.models import build_model
from shedding.models.prunable import prunable_parameters
from shedding.pruning import PRUNERS
from shedding.pruning.block import BLOCK_SCORES, block_scores
from shedding.pruning.masks import gmp_threshold, ones_like, sparsity_of, target_count
from shedding.pruning.schedule import sparsity_targets

SPARSITIES = [0.1, 0.37, 0.5, 0.9]


def _model(seed: int = 0) -> nn.Module:
    """Three prunable tensors whose 2-D views have awkward sizes: (5, 27), (6, 20), (7, 13)."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 5, 3), nn.Conv2d(5, 6, 2), nn.Flatten(), nn.Linear(13, 7))


def _modules(model: nn.Module) -> list[tuple[nn.Module, str]]:
    return [(m, "weight") for m in model if isinstance(m, (nn.Conv2d, nn.Linear))]


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in prunable_parameters(model).items()}


def _n(weights: dict[str, torch.Tensor]) -> int:
    return sum(w.numel() for w in weights.values())


def _zeros(masks: dict[str, torch.Tensor]) -> int:
    return sum(int((m == 0).sum()) for m in masks.values())


def _oracle_model(
    model: nn.Module, weights: dict[str, torch.Tensor], masks: dict[str, torch.Tensor] | None = None
) -> nn.Module:
    """A fresh copy of ``model`` holding ``weights`` (and ``masks`` as torch prune masks)."""
    fresh = copy.deepcopy(model)
    params = prunable_parameters(fresh)
    with torch.no_grad():
        for k, p in params.items():
            p.copy_(weights[k])
    if masks is not None:
        for (mod, name), k in zip(_modules(fresh), params, strict=True):
            prune.custom_from_mask(mod, name, masks[k])
    return fresh


def _oracle_masks(fresh: nn.Module) -> list[torch.Tensor]:
    return [m.weight_mask.detach().clone() for m, _ in _modules(fresh)]


def _prune(method: str, weights, masks, sparsity, seed=0, **cfg_kw):
    cfg = PruneConfig(method=method, sparsity=sparsity, **cfg_kw)
    return PRUNERS.get(method)(weights, masks, sparsity, cfg, torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------- GMP and layerwise vs torch


@pytest.mark.parametrize("sparsity", SPARSITIES)
def test_gmp_equals_torch_global_unstructured(sparsity: float) -> None:
    model = _model()
    w = _weights(model)
    n = _n(w)
    k = round(sparsity * n)
    masks = _prune("gmp", w, ones_like(w), sparsity)

    fresh = _oracle_model(model, w)
    prune.global_unstructured(_modules(fresh), pruning_method=prune.L1Unstructured, amount=k)
    for ours, theirs in zip(masks.values(), _oracle_masks(fresh), strict=True):
        assert torch.equal(ours, theirs)
    assert _zeros(masks) == k
    assert all(m.dtype == torch.float32 and m.shape == w[name].shape for name, m in masks.items())


@pytest.mark.parametrize(("s1", "s2"), [(0.2, 0.36), (0.37, 0.8), (0.5, 0.5)])
def test_gmp_second_round_keeps_pruned_and_matches_torch(s1: float, s2: float) -> None:
    model = _model()
    w1 = _weights(model)
    n = _n(w1)
    m1 = _prune("gmp", w1, ones_like(w1), s1)
    # Retrained weights: the ranking changes; pruned positions are zero as after masked retraining.
    torch.manual_seed(1)
    w2 = {k: (v + 0.3 * v.abs().mean() * torch.randn_like(v)) * m1[k] for k, v in w1.items()}
    m2 = _prune("gmp", w2, m1, s2)

    assert _zeros(m2) == round(s2 * n)
    for k in w1:
        assert torch.all(m2[k][m1[k] == 0] == 0), "an already-pruned weight was revived"

    # torch's global_unstructured prunes `amount` more among the weights its existing mask keeps.
    fresh = _oracle_model(model, w2, m1)
    prune.global_unstructured(
        _modules(fresh), pruning_method=prune.L1Unstructured, amount=round(s2 * n) - round(s1 * n)
    )
    for ours, theirs in zip(m2.values(), _oracle_masks(fresh), strict=True):
        assert torch.equal(ours, theirs)


@pytest.mark.parametrize("sparsity", SPARSITIES)
def test_layerwise_equals_torch_l1_unstructured_per_tensor(sparsity: float) -> None:
    model = _model()
    w = _weights(model)
    masks = _prune("layerwise", w, ones_like(w), sparsity)
    fresh = _oracle_model(model, w)
    for (mod, name), key in zip(_modules(fresh), w, strict=True):
        k = round(sparsity * w[key].numel())
        prune.l1_unstructured(mod, name, amount=k)
        assert torch.equal(masks[key], mod.weight_mask)
        assert int((masks[key] == 0).sum()) == k


def test_layerwise_second_round_matches_torch() -> None:
    model = _model()
    w = _weights(model)
    m1 = _prune("layerwise", w, ones_like(w), 0.3)
    m2 = _prune("layerwise", w, m1, 0.6)
    fresh = _oracle_model(model, w, m1)
    for (mod, name), key in zip(_modules(fresh), w, strict=True):
        n = w[key].numel()
        prune.l1_unstructured(mod, name, amount=round(0.6 * n) - round(0.3 * n))
        assert torch.equal(m2[key], mod.weight_mask)


# --------------------------------------------------------------------- exact sparsity, every method


METHODS = [
    ("gmp", {}),
    ("layerwise", {}),
    ("random", {}),
    ("random_layerwise", {}),
    ("block", {"block_shape": [1, 1]}),
    ("block", {"block_shape": [2, 3]}),
    ("block", {"block_shape": [4, 4]}),
]


@pytest.mark.parametrize(("method", "kw"), METHODS, ids=lambda x: str(x))
@pytest.mark.parametrize("sparsity", SPARSITIES)
def test_every_method_hits_its_sparsity(method: str, kw: dict, sparsity: float) -> None:
    w = _weights(_model())
    n = _n(w)
    masks = _prune(method, w, ones_like(w), sparsity, **kw)
    assert all(set(torch.unique(m).tolist()) <= {0.0, 1.0} for m in masks.values())
    zeros = _zeros(masks)
    bh, bw = kw.get("block_shape", [1, 1])
    if method in ("layerwise", "random_layerwise"):  # each tensor rounds its own count
        assert zeros == sum(round(sparsity * m.numel()) for m in masks.values())
    elif bh * bw == 1:
        assert zeros == round(sparsity * n)
        assert sparsity_of(masks) == zeros / n
    else:  # whole blocks: at least the target, overshoot below one block
        assert round(sparsity * n) <= zeros < round(sparsity * n) + bh * bw
    if method in ("layerwise", "random_layerwise"):
        for k, m in masks.items():
            assert int((m == 0).sum()) == round(sparsity * m.numel()), k


def test_small_cnn_gmp_count_is_exact() -> None:
    torch.manual_seed(0)
    w = _weights(build_model("small_cnn", 1, 10, (8, 8)))
    n = _n(w)
    m = _prune("gmp", w, ones_like(w), 0.2)
    assert _zeros(m) == target_count(0.2, n) == round(0.2 * n)


# --------------------------------------------------------------------------- gmp_threshold


@pytest.mark.parametrize("sparsity", SPARSITIES)
def test_gmp_threshold_separates_and_equals_numpy_midpoint(sparsity: float) -> None:
    w = _weights(_model())
    for masks in (ones_like(w), _prune("gmp", w, ones_like(w), sparsity / 2)):
        tau = gmp_threshold(w, masks, sparsity)
        new = _prune("gmp", w, masks, sparsity)
        kept = np.concatenate([w[k].abs()[new[k] == 1].numpy() for k in w])
        pruned = np.concatenate(
            [w[k].abs()[new[k] == 0].numpy() * masks[k][new[k] == 0].numpy() for k in w]
        )
        assert kept.min() > tau > pruned.max()

        scores = np.sort(
            np.concatenate([(np.abs(w[k].numpy()) * masks[k].numpy()).ravel() for k in w]).astype(
                np.float64
            )
        )
        k = round(sparsity * scores.size)
        assert tau == (scores[k - 1] + scores[k]) / 2.0


# --------------------------------------------------------------------------- block pruning


def _np_block_table(w: np.ndarray, mask: np.ndarray, bh: int, bw: int, score: str):
    """Per block (row-major over the (out, rest) view): score, alive count, slices. Edge blocks
    partial."""
    a = (np.abs(w).astype(np.float64) * mask).reshape(w.shape[0], -1)
    m = mask.reshape(w.shape[0], -1)
    rows = []
    for i in range(0, a.shape[0], bh):
        for j in range(0, a.shape[1], bw):
            blk = a[i : i + bh, j : j + bw]
            if score == "mean_abs":
                s = blk.mean()
            elif score == "l2":
                s = math.sqrt((blk**2).mean())
            else:
                s = blk.max()
            rows.append(
                (
                    s,
                    int(m[i : i + bh, j : j + bw].sum()),
                    blk.size,
                    (slice(i, i + bh), slice(j, j + bw)),
                )
            )
    return rows


def _np_block_prune(w: dict, masks: dict, sparsity: float, bh: int, bw: int, score: str) -> dict:
    """Remove the lowest-scoring blocks (stable order) until the target count is reached."""
    table = []
    for k in w:
        for s, alive, _size, slc in _np_block_table(w[k].numpy(), masks[k].numpy(), bh, bw, score):
            table.append((s if alive > 0 else -1.0, alive, k, slc))
    n = _n(w)
    need = round(sparsity * n) - (n - sum(t[1] for t in table))
    order = np.argsort(np.array([t[0] for t in table]), kind="stable")
    out = {k: masks[k].numpy().reshape(masks[k].shape[0], -1).copy() for k in w}
    removed = 0
    for idx in order:
        if removed >= need:
            break
        _, alive, k, slc = table[idx]
        out[k][slc] = 0.0
        removed += alive
    return {k: torch.from_numpy(v.reshape(w[k].shape)) for k, v in out.items()}


@pytest.mark.parametrize("score", BLOCK_SCORES)
@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (4, 4), (3, 5)])
def test_block_scores_match_numpy_including_edge_blocks(score: str, shape: tuple[int, int]) -> None:
    w = _weights(_model())
    torch.manual_seed(3)
    for k, t in w.items():
        mask = (torch.rand_like(t) > 0.3).float()
        s, alive, real = block_scores(t, mask, *shape, score)
        table = _np_block_table(t.numpy(), mask.numpy(), *shape, score)
        exp_alive = np.array([r[1] for r in table])
        np.testing.assert_array_equal(alive.numpy(), exp_alive)
        np.testing.assert_array_equal(real.numpy(), [r[2] for r in table])
        exp = np.where(exp_alive > 0, [r[0] for r in table], -1.0)
        np.testing.assert_allclose(s.numpy(), exp, rtol=1e-6, atol=1e-7, err_msg=k)


@pytest.mark.parametrize("score", BLOCK_SCORES)
@pytest.mark.parametrize("shape", [(2, 3), (4, 4)])
@pytest.mark.parametrize("sparsity", [0.1, 0.5, 0.85])
def test_block_masks_are_whole_blocks_and_the_smallest_prefix(score, shape, sparsity) -> None:
    w = _weights(_model())
    n = _n(w)
    bh, bw = shape
    masks = _prune("block", w, ones_like(w), sparsity, block_shape=list(shape), block_score=score)
    assert torch.equal(
        torch.cat([m.flatten() for m in masks.values()]),
        torch.cat(
            [
                m.flatten()
                for m in _np_block_prune(w, ones_like(w), sparsity, bh, bw, score).values()
            ]
        ),
    )
    target = round(sparsity * n)
    pruned_scores, kept_scores, pruned_sizes = [], [], []
    for k, m in masks.items():
        table = _np_block_table(w[k].numpy(), np.ones(w[k].shape), bh, bw, score)
        m2 = m.numpy().reshape(m.shape[0], -1)
        for s, _, size, slc in table:
            vals = np.unique(m2[slc])
            assert vals.size == 1, f"{k}: block {slc} partly pruned"
            (pruned_scores if vals[0] == 0 else kept_scores).append(s)
            if vals[0] == 0:
                pruned_sizes.append(size)
    zeros = _zeros(masks)
    assert zeros == sum(pruned_sizes) >= target
    assert zeros - target < bh * bw
    # Smallest prefix: dropping the last (highest-scoring) removed block would miss the target.
    last = int(np.argmax(pruned_scores))
    assert zeros - pruned_sizes[last] < target
    assert max(pruned_scores) <= min(kept_scores)


@pytest.mark.parametrize("score", BLOCK_SCORES)
@pytest.mark.parametrize("shape", [(2, 3), (4, 4)])
def test_block_second_round_from_unstructured_mask_matches_numpy(score, shape) -> None:
    """Partly-pruned blocks: scores use |w|*mask, already-pruned weights count towards the
    target."""
    w = _weights(_model())
    m1 = _prune("gmp", w, ones_like(w), 0.3)
    m2 = _prune("block", w, m1, 0.6, block_shape=list(shape), block_score=score)
    exp = _np_block_prune(w, m1, 0.6, *shape, score)
    for k in w:
        assert torch.equal(m2[k], exp[k]), k
        assert torch.all(m2[k][m1[k] == 0] == 0)
    assert round(0.6 * _n(w)) <= _zeros(m2) < round(0.6 * _n(w)) + shape[0] * shape[1]


@pytest.mark.parametrize("sparsity", SPARSITIES)
def test_block_1x1_equals_gmp(sparsity: float) -> None:
    w = _weights(_model())
    for base in (ones_like(w), _prune("gmp", w, ones_like(w), sparsity / 2)):
        gmp = _prune("gmp", w, base, sparsity)
        for score in BLOCK_SCORES:
            blk = _prune("block", w, base, sparsity, block_shape=[1, 1], block_score=score)
            for k in w:
                assert torch.equal(blk[k], gmp[k]), (score, k)


# --------------------------------------------------------------------------- random pruning


@pytest.mark.parametrize("method", ["random", "random_layerwise"])
def test_random_only_removes_survivors_and_is_seeded(method: str) -> None:
    w = _weights(_model())
    n = _n(w)
    m1 = _prune(method, w, ones_like(w), 0.3, seed=5)
    m2 = _prune(method, w, m1, 0.6, seed=6)
    assert _zeros(m2) == round(0.6 * n)
    for k in w:
        assert torch.all(m2[k] <= m1[k]), "random pruning revived a pruned weight"
        if method == "random_layerwise":
            assert int((m2[k] == 0).sum()) == round(0.6 * w[k].numel())

    same = _prune(method, w, m1, 0.6, seed=6)
    other = _prune(method, w, m1, 0.6, seed=7)
    assert all(torch.equal(same[k], m2[k]) for k in w)
    assert not all(torch.equal(other[k], m2[k]) for k in w)
    # Random masks ignore magnitudes: they are not the GMP mask.
    gmp = _prune("gmp", w, ones_like(w), 0.3)
    assert not all(torch.equal(gmp[k], m1[k]) for k in w)


# --------------------------------------------------------------------------- schedules of sparsity


def test_sparsity_targets_iterative_20_percent() -> None:
    got = sparsity_targets(PruneConfig(sparsity=0.5, schedule="iterative", fraction_per_round=0.2))
    assert got == pytest.approx([0.2, 0.36, 0.488, 0.5], abs=1e-12)
    assert got[-1] == 0.5
    # Densities 0.8**r until the target, which is never passed.
    got = sparsity_targets(PruneConfig(sparsity=0.9, schedule="iterative", fraction_per_round=0.2))
    r = math.ceil(math.log(0.1) / math.log(0.8))
    assert len(got) == r == 11
    assert got[:-1] == pytest.approx([1 - 0.8 ** (i + 1) for i in range(r - 1)], abs=1e-12)
    assert got[-1] == 0.9
    assert all(a < b for a, b in zip(got, got[1:], strict=False))


@pytest.mark.parametrize("sparsity", [0.2, 0.36, 0.488])
def test_sparsity_targets_at_an_exact_power_have_no_extra_round(sparsity: float) -> None:
    got = sparsity_targets(PruneConfig(sparsity=sparsity, schedule="iterative"))
    assert len(got) == round(math.log(1 - sparsity) / math.log(0.8))
    assert got[-1] == pytest.approx(sparsity, abs=1e-12)
    # The weight counts the events prune are the target's, whatever float noise the schedule has.
    assert [target_count(s, 30496) for s in got][-1] == round(sparsity * 30496)


def test_sparsity_targets_oneshot_and_control() -> None:
    assert sparsity_targets(PruneConfig(sparsity=0.7, schedule="oneshot")) == [0.7]
    assert sparsity_targets(PruneConfig(method="none", sparsity=0.7, schedule="iterative")) == [0.7]
    got = sparsity_targets(PruneConfig(sparsity=0.5, schedule="iterative", fraction_per_round=0.5))
    assert got == [0.5]


def test_none_method_returns_the_masks_unchanged() -> None:
    w = _weights(_model())
    m1 = _prune("gmp", w, ones_like(w), 0.4)
    m2 = _prune("none", w, m1, 0.9)
    assert all(torch.equal(m1[k], m2[k]) and m1[k] is not m2[k] for k in w)


@pytest.mark.parametrize("method", ["gmp", "layerwise", "random", "random_layerwise", "block"])
def test_lower_target_never_revives_pruned_weights(method: str) -> None:
    w = _weights(_model())
    cfg = PruneConfig(method=method, block_shape=[2, 2] if method == "block" else [1, 1])
    first = PRUNERS.get(method)(w, ones_like(w), 0.5, cfg, torch.Generator().manual_seed(0))
    again = PRUNERS.get(method)(w, first, 0.3, cfg, torch.Generator().manual_seed(1))
    for k in w:
        assert torch.equal(again[k], first[k])  # nothing more to prune, nothing revived


@pytest.mark.parametrize(
    ("sparsity", "f", "rounds"),
    [
        (round(1 - 0.8**14, 6), 0.2, 14),
        (1 - 0.64**5 + 1e-7, 0.36, 5),
        (1 - 0.64**5 - 1e-7, 0.36, 5),
    ],
)
def test_sparsity_targets_rounded_to_the_lattice_take_no_empty_last_round(
    sparsity, f, rounds
) -> None:
    got = sparsity_targets(
        PruneConfig(sparsity=sparsity, schedule="iterative", fraction_per_round=f)
    )
    assert len(got) == rounds and got[-1] == sparsity
    assert min(np.diff(got)) > 1e-3  # every round prunes something
