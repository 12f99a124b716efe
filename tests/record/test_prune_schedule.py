"""Gradual (Zhu & Gupta) and cascade-aware pruning schedules: targets, event placement, the
optimizer and LR continuing across gradual events, the shed set removed by cascade-aware events, the
store cut to the events actually used, and resume after a kill -9."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr
from test_resume import _assert_same_store, _attrs, _killed

from shedding.config import ConfigError, PruneConfig
from shedding.experiment import FINAL_MODEL, prepare, record, resume
from shedding.pruning.schedule import cascade_target, gradual_targets, plan_rounds
from shedding.recording.store import run_status

IPE = 12  # digits: 1437 training images in batches of 128


def _gradual(**kw):
    from conftest import tiny_config

    cfg = tiny_config(
        "gmp",
        0.5,
        "lr_rewind",
        prune__schedule="gradual",
        prune__gradual_events=3,
        prune__interval="1ep",
    )
    cfg.train.duration = "4ep"
    cfg.train.milestones = [
        "1ep",
        "3ep",
    ]  # the LR changes inside the retraining phase: it must not restart
    cfg.retrain.duration = "4ep"
    for key, value in kw.items():
        section, name = key.split("__")
        setattr(getattr(cfg, section), name, value)
    return cfg


def _cascade(**kw):
    from conftest import tiny_config

    cfg = tiny_config(
        "gmp",
        0.3,
        "lr_rewind",
        prune__schedule="cascade",
        prune__interval="1ep",
        prune__cascade_fraction=0.02,
    )
    cfg.train.schedule = "constant"
    cfg.train.milestones = []
    cfg.train.weight_decay = (
        2e-2  # strong decay: survivors are shed within a window, so the cascade counts
    )
    cfg.train.duration = "12ep"
    cfg.retrain.duration = "6ep"
    cfg.record.every = 3
    cfg.record.hist_every = 3
    for key, value in kw.items():
        section, name = key.split("__")
        setattr(getattr(cfg, section), name, value)
    return cfg


# ----------------------------------------------------------------------------- plans


def test_gradual_targets_follow_zhu_and_gupta() -> None:
    cfg = PruneConfig(sparsity=0.8, schedule="gradual", gradual_events=4, initial_sparsity=0.1)
    s_i, s_f, n = 0.1, 0.8, 4
    expected = [s_f + (s_i - s_f) * (1 - (j + 1) / n) ** 3 for j in range(n)]
    np.testing.assert_allclose(gradual_targets(cfg), expected, rtol=0, atol=1e-15)
    assert gradual_targets(cfg)[-1] == 0.8 and np.all(np.diff(gradual_targets(cfg)) > 0)
    rounds = plan_rounds(cfg, 100, 10)
    assert [r.length for r in rounds] == [10, 10, 10, 70]
    assert [(r.restart, r.rewind) for r in rounds] == [(True, True)] + [(False, False)] * 3


def test_cascade_plan_is_the_no_shedding_bound_and_cascade_target() -> None:
    cfg = PruneConfig(sparsity=0.5, schedule="cascade", cascade_fraction=0.1)
    rounds = plan_rounds(cfg, 40, 12)
    densities = [1 - r.target for r in rounds]
    assert len(rounds) == 7  # ceil(log 0.5 / log 0.9)
    np.testing.assert_allclose(densities[:-1], 0.9 ** np.arange(1, 7), rtol=1e-12)
    assert rounds[-1].target == 0.5 and rounds[-1].length == 40 and rounds[-1].rewind
    assert all(r.length == 12 and not r.rewind for r in rounds[:-1])
    # the shed weights go, then 10% of what remains; reaching the target makes it the last event
    assert cascade_target(0.2, 100, 1000, cfg) == pytest.approx((1 - (1 - 0.3) * 0.9, False))
    assert cascade_target(0.2, 300, 1000, cfg) == (0.5, True)
    assert cascade_target(0.4, 50, 1000, cfg) == (0.5, True)  # 1 - 0.55*0.9 = 0.505 >= 0.5


@pytest.mark.parametrize(
    ("kw", "option"),
    [
        ({"prune__interval": "5it"}, "--prune-interval"),
        ({"prune__gradual_events": 5}, "--prune-gradual-events"),
        ({"prune__initial_sparsity": 0.6}, "--prune-initial-sparsity"),
    ],
)
def test_gradual_bad_options_name_the_option(kw, option) -> None:
    with pytest.raises(ConfigError, match=option):
        prepare(_gradual(**kw))


def test_cascade_needs_snapshots_that_divide_the_windows() -> None:
    with pytest.raises(ConfigError, match="--record-every"):
        prepare(_cascade(record__every=5))
    with pytest.raises(ConfigError, match="--prune-cascade-fraction"):
        prepare(_cascade(prune__cascade_fraction=0.0))


# ----------------------------------------------------------------------------- gradual runs


@pytest.fixture(scope="module")
def gradual_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("gradual")
    cache = root / "cache"
    runs = {
        "gradual": record(_gradual(), root / "gradual.zarr", cache_dir=cache),
        # every event at the target: only the first prunes, so the run must equal a one-shot one
        # bitwise
        "flat": record(_gradual(prune__initial_sparsity=0.5), root / "flat.zarr", cache_dir=cache),
        "oneshot": record(
            _gradual(prune__schedule="oneshot"), root / "oneshot.zarr", cache_dir=cache
        ),
    }
    return {k: xr.open_zarr(v) for k, v in runs.items()}, runs


def test_gradual_events_are_placed_and_reach_their_targets(gradual_runs) -> None:
    ds = gradual_runs[0]["gradual"]
    n_weights = ds.sizes["weight"]
    assert ds.event_step.values.tolist() == [0, IPE, 2 * IPE]
    assert ds.sizes["step"] == 4 * IPE  # one phase of t steps, not 3 rounds of t
    targets = gradual_targets(PruneConfig(sparsity=0.5, schedule="gradual", gradual_events=3))
    np.testing.assert_allclose(ds.event_sparsity.values, targets, atol=1.0 / n_weights)
    kept = ds.mask.values
    assert np.all(kept[1] <= kept[0]) and np.all(kept[2] <= kept[1])  # a pruned weight stays pruned
    # each event is GMP on the current weights: the newly pruned are the smallest survivors
    for e in (1, 2):
        pre = ds.pre_prune_magnitude.values[e]
        newly = kept[e - 1] & ~kept[e]
        assert pre[newly].max() <= pre[kept[e]].min()
    np.testing.assert_array_equal(ds.step_round.values, np.repeat([0, 1, 2], [IPE, IPE, 2 * IPE]))


def test_gradual_continues_the_optimizer_lr_and_data_order(gradual_runs) -> None:
    runs, paths = gradual_runs
    # the LR trace is the lr_rewind schedule over one phase (milestones inside it), not restarted
    # per event
    np.testing.assert_array_equal(runs["gradual"].lr.values, runs["oneshot"].lr.values)
    np.testing.assert_array_equal(runs["flat"].loss.values, runs["oneshot"].loss.values)
    a = torch.load(paths["flat"] / FINAL_MODEL, weights_only=True)
    b = torch.load(paths["oneshot"] / FINAL_MODEL, weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert runs["flat"].event_pruned.values[1:].sum() == 0


# ----------------------------------------------------------------------------- cascade-aware runs


@pytest.fixture(scope="module")
def cascade_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cascade")
    path = record(_cascade(), root / "cascade.zarr", cache_dir=root / "cache")
    return path, root / "cache"


def test_cascade_removes_what_was_shed_and_cuts_the_store(cascade_run) -> None:
    path, _ = cascade_run
    ds = xr.open_zarr(path)
    cfg = _cascade().prune
    planned = plan_rounds(cfg, 6 * IPE, IPE)
    k = ds.sizes["event"]
    assert ds.attrs["status"] == "complete" and ds.attrs["rounds"] == k
    assert (
        2 <= k < len(planned)
    )  # the cascade made it reach the target in fewer events than triggers alone
    assert ds.event_step.values.tolist() == [i * IPE for i in range(k)]
    assert (
        ds.sizes["step"] == (k - 1) * IPE + 6 * IPE
        and ds.step.values[-1] == (k - 1) * IPE + 6 * IPE
    )
    assert ds.event_sparsity.values[-1] == pytest.approx(0.3, abs=1.0 / ds.sizes["weight"])
    rounds = np.searchsorted(ds.event_step.values, ds.step.values - 1, side="right") - 1
    np.testing.assert_array_equal(ds.step_round.values, rounds)
    assert (
        ds.record_step.values[-1] == ds.step.values[-1] and not np.isnan(ds.magnitude.values).any()
    )
    assert (ds.shed_count.values >= 0).all() and not np.isnan(ds.loss.values).any()
    n = ds.sizes["weight"]
    mask = ds.mask.values
    for e in range(1, k):
        # independently: the previous event's eligible survivors that are below its line at this
        # event
        at_prev = ds.magnitude.sel(record_step=int(ds.event_step[e - 1])).values
        line = float(ds.event_line[e - 1])
        eligible = mask[e - 1] & (at_prev >= line)
        shed = eligible & (ds.pre_prune_magnitude.values[e] < line)
        assert (
            shed.sum() == ds.shed_count.sel(step=int(ds.event_step[e])).sum()
        )  # the recorder's count
        s_prev = 1 - mask[e - 1].mean()
        target, final = cascade_target(s_prev, int(shed.sum()), n, cfg)
        assert final == (e == k - 1)
        assert ds.event_sparsity.values[e] == pytest.approx(target, abs=1.0 / n)
        if not final:
            assert not (mask[e] & shed).any()  # every shed weight was removed


@pytest.mark.slow
@pytest.mark.parametrize("where", ["window", "final round"])
def test_cascade_kill_9_and_resume_is_bitwise(cascade_run, tmp_path, where) -> None:
    ref, cache = cascade_run
    steps = xr.open_zarr(ref).event_step.values
    # killed one step into the second window, or two epochs into the final round once the writer
    # caught up
    at = "retrain:1@1" if where == "window" else f"retrain:{2 * IPE}@{len(steps) - 1}"
    out = tmp_path / "killed.zarr"
    _killed(_cascade(), out, cache, tmp_path, at, sync=True)
    ds = xr.open_zarr(out)
    assert run_status(out, ds.attrs) == "crashed"
    if where == "final round":
        # recording stopped at the events used: the committed rows, with the attribute
        assert ds.attrs["committed_rows"]["event"] == len(steps) == ds.attrs["rounds"]
    resume(out)
    assert _attrs(out)["status"] == "complete"
    _assert_same_store(out, ref)
