"""Retraining techniques end to end (Renda's definitions, docs/science.md#retraining), read back
from the store.

Tiny runs on digits: T = 4 epochs of 12 iterations (48 steps), t = 2 epochs (24 steps), LR 0.1 times
0.1 at epochs 1 and 3, so the replayed schedule crosses a milestone inside the retraining window.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.utils.prune as prune
import xarray as xr

from shedding.config import ConfigError, RunConfig
from shedding.experiment import prepare, pretrain_dir, record
from shedding.models import build_model
from shedding.models.prunable import prunable_parameters
from shedding.recording.names import decode_names

IPE = 12  # ceil(1437 training digits / batch 128)
T, t = 4 * IPE, 2 * IPE
LR, GAMMA = 0.1, 0.1
MILESTONES = (1 * IPE, 3 * IPE)


def schedule(step: int) -> float:
    """The original multistep schedule, by hand."""
    return LR * GAMMA ** sum(step >= m for m in MILESTONES)


def _cfg(technique: str, **kw) -> RunConfig:
    cfg = RunConfig(device="cpu", seed=0)
    cfg.train.duration = "4ep"
    cfg.train.milestones = ["1ep", "3ep"]
    cfg.train.lr = LR
    cfg.train.gamma = GAMMA
    cfg.retrain.duration = "2ep"
    cfg.retrain.technique = technique
    cfg.record.every = 1
    for key, value in kw.items():
        sec, name = key.split("__")
        setattr(getattr(cfg, sec), name, value)
    return cfg


class Runs:
    """Records each configuration once per module; weight rewinding first so the cache holds T - t
    too."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cache = root / "cache"
        self._done: dict[str, tuple[RunConfig, xr.Dataset]] = {}

    def get(self, name: str, technique: str, **kw) -> tuple[RunConfig, xr.Dataset]:
        if "weight_rewind" not in self._done and name != "weight_rewind":
            self.get("weight_rewind", "weight_rewind")
        if name not in self._done:
            cfg = _cfg(technique, **kw)
            out = record(cfg, self.root / f"{name}.zarr", cache_dir=self.cache)
            self._done[name] = (cfg, decode_names(xr.open_zarr(out)))
        return self._done[name]

    def checkpoint(self, cfg: RunConfig, step: int) -> dict[str, torch.Tensor]:
        return torch.load(pretrain_dir(self.cache, cfg) / f"step_{step}.pt", weights_only=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    torch.manual_seed(0)
    return Runs(tmp_path_factory.mktemp("retraining"))


def _flat(sd: dict[str, torch.Tensor], ds: xr.Dataset) -> np.ndarray:
    """The store's flat weight vector (layer order) from a state dict."""
    return np.concatenate([sd[str(name)].reshape(-1).numpy() for name in ds.layer.values])


def _mask(ds: xr.Dataset, event: int = 0) -> np.ndarray:
    return ds["mask"].isel(event=event).values


def _magnitude_at(ds: xr.Dataset, step: int) -> np.ndarray:
    return ds["magnitude"].sel(record_step=step).values


def _lr(ds: xr.Dataset, first: int = 1, last: int = t) -> np.ndarray:
    return ds["lr"].sel(step=slice(first, last)).values


def _check_common(ds: xr.Dataset) -> None:
    assert ds.attrs["status"] == "complete"
    assert (ds.attrs["T"], ds.attrs["t"], ds.attrs["iterations_per_epoch"]) == (T, t, IPE)
    assert list(ds["record_step"].values) == list(range(0, t * ds.attrs["rounds"] + 1))
    mag = ds["magnitude"].values
    assert not np.isnan(mag).any()
    for r in range(ds.attrs["rounds"]):
        pruned = ~_mask(ds, r)
        in_round = ds["record_round"].values == r
        assert np.all(mag[in_round][:, pruned] == 0.0), f"a pruned weight moved in round {r}"


def _theta_T_mask_oracle(runs: Runs, cfg: RunConfig, sparsity: float) -> np.ndarray:
    """GMP of theta_T by torch.nn.utils.prune, flattened in the store's order."""
    model = build_model(cfg.model.name, 1, 10, (8, 8))
    model.load_state_dict(runs.checkpoint(cfg, T))
    model = copy.deepcopy(model)
    params = prunable_parameters(model)
    n = sum(p.numel() for p in params.values())
    mods = [
        (m, "weight") for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))
    ]
    prune.global_unstructured(mods, pruning_method=prune.L1Unstructured, amount=round(sparsity * n))
    return np.concatenate([m.weight_mask.reshape(-1).numpy() for m, _ in mods]).astype(bool)


# --------------------------------------------------------------------------- the four techniques


def test_weight_rewinding_restores_theta_T_minus_t_bitwise(runs: Runs) -> None:
    cfg, ds = runs.get("weight_rewind", "weight_rewind")
    _check_common(ds)
    mask = _mask(ds)
    rewound = _flat(runs.checkpoint(cfg, T - t), ds)
    np.testing.assert_array_equal(_magnitude_at(ds, 0), np.abs(rewound * mask))
    trained = _flat(runs.checkpoint(cfg, T), ds)
    assert not np.array_equal(_magnitude_at(ds, 0), np.abs(trained * mask))
    # The mask is computed from theta_T (torch prune as the oracle), and recorded as the pre-prune
    # weights.
    np.testing.assert_array_equal(mask, _theta_T_mask_oracle(runs, cfg, 0.2))
    np.testing.assert_array_equal(ds["pre_prune_magnitude"].isel(event=0).values, np.abs(trained))
    # LR: the original schedule replayed from T - t.
    np.testing.assert_allclose(_lr(ds), [schedule(T - t + k) for k in range(t)], rtol=1e-12)
    assert _lr(ds)[0] == pytest.approx(0.01) and _lr(ds)[-1] == pytest.approx(0.001)


def test_lr_rewinding_starts_from_theta_T_with_the_replayed_schedule(runs: Runs) -> None:
    cfg, ds = runs.get("lr_rewind", "lr_rewind")
    _check_common(ds)
    mask = _mask(ds)
    trained = _flat(runs.checkpoint(cfg, T), ds)
    np.testing.assert_array_equal(_magnitude_at(ds, 0), np.abs(trained * mask))
    np.testing.assert_array_equal(mask, _theta_T_mask_oracle(runs, cfg, 0.2))
    expected = [schedule(T - t + k) for k in range(t)]
    np.testing.assert_allclose(_lr(ds), expected, rtol=1e-12)
    assert len(set(np.round(_lr(ds), 12))) == 2  # the window crosses the 3ep milestone
    # Survivors trained away from theta_T.
    assert not np.array_equal(_magnitude_at(ds, t), _magnitude_at(ds, 0))


def test_finetuning_uses_the_last_lr_constantly(runs: Runs) -> None:
    cfg, ds = runs.get("finetune", "finetune")
    _check_common(ds)
    trained = _flat(runs.checkpoint(cfg, T), ds)
    np.testing.assert_array_equal(_magnitude_at(ds, 0), np.abs(trained * _mask(ds)))
    lrs = _lr(ds)
    assert len(lrs) == t
    assert np.all(lrs == lrs[0])
    assert lrs[0] == pytest.approx(LR * GAMMA**2, rel=1e-12) and lrs[0] == schedule(T - 1)


def test_finetuning_honours_finetune_lr(runs: Runs) -> None:
    cfg, ds = runs.get("finetune_lr", "finetune", retrain__finetune_lr=0.005)
    _check_common(ds)
    assert np.all(_lr(ds) == 0.005)
    trained = _flat(runs.checkpoint(cfg, T), ds)
    np.testing.assert_array_equal(_magnitude_at(ds, 0), np.abs(trained * _mask(ds)))


def test_reinit_starts_from_fresh_weights_and_the_schedule_from_zero(runs: Runs) -> None:
    cfg, ds = runs.get("reinit", "reinit")
    _check_common(ds)
    mask = _mask(ds)
    _, lr_ds = runs.get("lr_rewind", "lr_rewind")
    np.testing.assert_array_equal(mask, _mask(lr_ds))  # the mask still comes from theta_T
    start = _magnitude_at(ds, 0)
    for step in (T, T - t):
        ref = np.abs(_flat(runs.checkpoint(cfg, step), ds) * mask)
        assert np.mean(start[mask] == ref[mask]) < 0.01, (
            f"reinit start equals the step-{step} weights"
        )
    # A fresh PyTorch default init: every layer within its kaiming-uniform bound 1/sqrt(fan_in), and
    # filling it (theta_T has outgrown the bound in some layer).
    grown = False
    ckpt = runs.checkpoint(cfg, T)
    trained = np.abs(_flat(ckpt, ds))
    for name, first, size in zip(
        ds.layer.values, ds["layer_start"].values, ds["layer_size"].values, strict=True
    ):
        assert str(ds["layer_shape"].sel(layer=name).values) == "x".join(
            map(str, ckpt[str(name)].shape)
        )
        bound = 1.0 / np.sqrt(np.prod(ckpt[str(name)].shape[1:]))
        sl = slice(int(first), int(first + size))
        assert 0.9 * bound < start[sl].max() <= bound * (1 + 1e-6), name
        grown |= bool(trained[sl].max() > bound)
    assert grown
    np.testing.assert_allclose(_lr(ds), [schedule(k) for k in range(t)], rtol=1e-12)
    assert _lr(ds)[0] == LR


def test_iterative_pruning_two_events_nested_masks(runs: Runs) -> None:
    cfg, ds = runs.get("iterative", "lr_rewind", prune__schedule="iterative", prune__sparsity=0.36)
    assert ds.attrs["rounds"] == 2 and ds.sizes["event"] == 2
    _check_common(ds)
    n = ds.sizes["weight"]
    m0, m1 = _mask(ds, 0), _mask(ds, 1)
    assert int((~m0).sum()) == round(0.2 * n) and int((~m1).sum()) == round(0.36 * n)
    np.testing.assert_allclose(
        ds["event_sparsity"].values, [round(0.2 * n) / n, round(0.36 * n) / n]
    )
    assert np.all(m1 <= m0), "the second event revived a pruned weight"
    assert list(ds["event_step"].values) == [0, t]
    # Round 1 prunes the retrained network: its GMP among round-0 survivors, by numpy.
    pre = ds["pre_prune_magnitude"].isel(event=1).values
    np.testing.assert_array_equal(pre * m0, pre)  # round-0 pruned weights were still zero
    survivors = np.flatnonzero(m0)
    extra = round(0.36 * n) - round(0.2 * n)
    removed = survivors[np.argsort(pre[survivors], kind="stable")[:extra]]
    expected = m0.copy()
    expected[removed] = False
    np.testing.assert_array_equal(m1, expected)
    # LR rewinding in round 1: the retrained weights, masked, and the replayed schedule again.
    np.testing.assert_array_equal(_magnitude_at(ds, t), pre * m1)
    sched = [schedule(T - t + k) for k in range(t)]
    np.testing.assert_allclose(_lr(ds, 1, t), sched, rtol=1e-12)
    np.testing.assert_allclose(_lr(ds, t + 1, 2 * t), sched, rtol=1e-12)
    np.testing.assert_array_equal(ds["step_round"].values, [0] * t + [1] * t)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("technique", ["lr_rewind", "weight_rewind"])
def test_rewinding_longer_than_training_is_rejected_before_the_store(
    tmp_path: Path, technique: str
) -> None:
    cfg = _cfg(technique)
    cfg.retrain.duration = "4ep1it"
    out = tmp_path / "run.zarr"
    with pytest.raises(ConfigError, match=r"--retrain-duration") as info:
        record(cfg, out, cache_dir=tmp_path / "cache")
    assert "\n" not in str(info.value)
    assert not out.exists() and not (tmp_path / "cache").exists()


def test_rewinding_over_the_whole_run_and_finetuning_beyond_it_are_allowed() -> None:
    cfg = _cfg("weight_rewind")
    cfg.retrain.duration = "4ep"
    p = prepare(cfg)
    assert (p.T, p.t) == (T, T) and p.technique.checkpoints_needed(p.T, p.t) == {T, 0}
    cfg = _cfg("finetune")
    cfg.retrain.duration = "6ep"
    assert prepare(cfg).t == 6 * IPE
