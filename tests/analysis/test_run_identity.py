"""A run's identity in an analysis (condition, seed, control, line sparsity) comes from its store
attributes, else from its configuration by the rule the trainer writes the attributes with
(shedding.analysis.run_identity, shedding.recording.config_identity)."""

from __future__ import annotations

from typing import Any

import pytest
import xarray as xr
from conftest import tiny_config

from shedding.analysis.controls import match_controls
from shedding.analysis.io import open_run
from shedding.analysis.run_identity import RunIdentity, run_identity
from shedding.analysis.seeds import group_conditions, group_runs
from shedding.config import to_dict
from shedding.recording.config_identity import identity_attributes

NEW = ("condition", "line_sparsity")  # the attributes stores had not before


def _old_store(cfg, alpha: float = 1.0) -> xr.Dataset:
    """The attributes of a built-in store recorded before the identity attributes existed."""
    return xr.Dataset(
        attrs={
            "config": to_dict(cfg),
            "seed": cfg.seed,
            "control": cfg.prune.method == "none",
            "alpha": alpha,
        }
    )


def _watched(path: str, **attrs: Any) -> xr.Dataset:
    """The attributes of a store with no configuration (a watched run)."""
    return xr.Dataset(attrs={"path": path, "alpha": 1.0, **attrs})


def _cfg(method: str = "gmp", seed: int = 0, **prune: Any):
    cfg = tiny_config(method, **{f"prune__{k}": v for k, v in prune.items()})
    cfg.seed = seed
    return cfg


@pytest.mark.parametrize(
    "cfg, alpha, condition, control, sparsity",
    [
        (_cfg("gmp", sparsity=0.5), 1.0, "gmp 0.5, lr_rewind", False, 0.5),
        (_cfg("none", sparsity=0.2), 1.0, "control 0.2 (lr_rewind)", True, 0.2),
        (_cfg("none", sparsity=0.5), 0.5, "control 0.5 (lr_rewind, alpha 0.5)", True, 0.5),
        (
            _cfg("random", sparsity=0.5, schedule="iterative"),
            1.0,
            "random 0.5 iterative, lr_rewind",
            False,
            0.2,  # the first round's target at 20% of the remaining weights per round
        ),
        (
            _cfg("block", seed=3, sparsity=0.8, block_shape=[2, 4]),
            1.0,
            "block 2x4 0.8, lr_rewind",
            False,
            0.8,
        ),
        (
            _cfg("gmp", sparsity=0.5, schedule="gradual", gradual_events=4),
            1.0,
            "gmp 0.5 gradual, lr_rewind",
            False,
            0.5 * (1 - 0.75**3),  # Zhu & Gupta's first cubic step
        ),
    ],
)
def test_old_stores_and_the_trainer_follow_one_rule(cfg, alpha, condition, control, sparsity):
    old = run_identity(_old_store(cfg, alpha))
    assert (old.condition, old.seed, old.control) == (condition, cfg.seed, control)
    assert old.line_sparsity == pytest.approx(sparsity, abs=1e-12)
    written = identity_attributes(to_dict(cfg), alpha)  # what _create_store writes now
    assert written == {
        "condition": old.condition,
        "seed": old.seed,
        "control": old.control,
        "line_sparsity": old.line_sparsity,
    }
    both = _old_store(cfg, alpha)
    both.attrs.update(written)
    assert run_identity(both) == old


def test_the_attributes_come_first():
    cfg = _cfg("gmp", seed=1, sparsity=0.5)
    ds = _old_store(cfg)
    ds.attrs.update(condition="mine", seed=7, control=True, line_sparsity=0.3)
    ident = run_identity(ds)
    assert (ident.condition, ident.seed, ident.control, ident.line_sparsity) == (
        "mine",
        7,
        True,
        0.3,
    )
    ds.attrs.update(condition=None, seed=None, control=None, line_sparsity=None)  # null: derived
    ident = run_identity(ds)
    assert (ident.condition, ident.seed, ident.control, ident.line_sparsity) == (
        "gmp 0.5, lr_rewind",
        1,
        False,
        0.5,
    )


def test_without_a_configuration():
    ident = run_identity(
        _watched("/r/a.zarr", condition="gmp-0.5", seed=2, control=False, line_sparsity=0.5)
    )
    assert ident == RunIdentity("gmp-0.5", 2, False, 0.5, 1.0, None, None)
    bare = run_identity(_watched("/r/mine.zarr", seed=0))  # no condition, control, line
    assert (bare.condition, bare.control, bare.line_sparsity) == ("mine", False, None)
    with pytest.raises(ValueError) as err:
        run_identity(_watched("/r/x.zarr", condition="c"))
    assert "\n" not in str(err.value) and "/r/x.zarr" in str(err.value) and "seed" in str(err.value)


def _pair(seed: int, sparsity: float = 0.5, alpha: float = 1.0, name: str = "gmp-0.5"):
    """A watched pruned run and its control, of one seed."""
    run = _watched(f"/r/{name}-s{seed}.zarr", condition=name, seed=seed, control=False)
    run.attrs["line_sparsity"] = sparsity
    ctrl = _watched(
        f"/r/ctrl-s{seed}.zarr", condition="control", seed=seed, control=True, alpha=alpha
    )
    ctrl.attrs["line_sparsity"] = sparsity
    return run, ctrl


def test_controls_are_matched_by_seed_line_and_alpha():
    (r0, c0), (r1, c1) = _pair(0), _pair(1)
    _, c0_20 = _pair(0, sparsity=0.2)
    _, c1_alpha = _pair(1, alpha=0.5)
    runs = {"r0": r0, "r1": r1, "c0": c0, "c1": c1, "c0_20": c0_20, "c1_alpha": c1_alpha}
    conditions, control_of = group_runs(runs)
    assert control_of == {
        "r0": "c0",
        "r1": "c1",
        "c0": None,
        "c1": None,
        "c0_20": None,
        "c1_alpha": None,
    }
    assert conditions == {
        "gmp-0.5": ["r0", "r1"],
        "control": ["c0", "c1"],
        "control [2]": ["c0_20"],  # an alpha of its own: a condition of its own
        "control [3]": ["c1_alpha"],
    }
    unknown = _watched("/r/u.zarr", condition="control", seed=1, control=True)  # no line sparsity
    assert match_controls({"r0": r0, "u": unknown}) == {"r0": None, "u": None}  # seed 1, not 0
    assert match_controls({"r1": r1, "u": unknown}) == {"r1": "u", "u": None}
    with pytest.raises(ValueError) as err:  # two controls that would both do
        match_controls({"r1": r1, "c1": c1, "u": unknown})
    assert "\n" not in str(err.value) and "/r/ctrl-s1.zarr" in str(err.value)


def test_a_built_in_control_matches_only_its_setting():
    gmp, ctrl = _old_store(_cfg("gmp", sparsity=0.5)), _old_store(_cfg("none", sparsity=0.5))
    other = _cfg("none", sparsity=0.5)
    other.train.weight_decay = 5e-4
    assert match_controls({"gmp": gmp, "ctrl": ctrl}) == {"gmp": "ctrl", "ctrl": None}
    assert match_controls({"gmp": gmp, "other": _old_store(other)}) == {"gmp": None, "other": None}


def test_two_pruned_runs_of_one_condition_and_seed_are_an_error():
    (r0, c0), (r1, _) = _pair(0), _pair(1)
    twin = _watched("/r/twin.zarr", condition="gmp-0.5", seed=0, control=False, line_sparsity=0.5)
    with pytest.raises(ValueError) as err:
        group_conditions({"r0": r0, "r1": r1, "twin": twin})
    message = str(err.value)
    assert "\n" not in message and "/r/gmp-0.5-s0.zarr" in message and "/r/twin.zarr" in message
    twin.attrs["condition"] = "gmp-0.5-again"  # another condition: fine
    assert group_conditions({"r0": r0, "twin": twin}) == {
        "gmp-0.5": ["r0"],
        "gmp-0.5-again": ["twin"],
    }
    c0_copy = c0.copy()
    c0_copy.attrs = {**c0.attrs, "path": "/r/ctrl-copy.zarr"}
    assert group_conditions({"c0": c0, "c0_copy": c0_copy}) == {"control": ["c0", "c0_copy"]}


def test_built_in_stores_carry_the_attributes(recorded_seeds):
    for name, path in recorded_seeds.items():
        ds = open_run(path)
        method, seed = name.split("-s")
        expected = {
            "gmp": "gmp 0.5, lr_rewind",
            "random": "random 0.5, lr_rewind",
            "control": "control 0.5 (lr_rewind)",
        }[method]
        assert ds.attrs["condition"] == expected
        assert ds.attrs["seed"] == int(seed) and ds.attrs["control"] == (method == "control")
        assert ds.attrs["line_sparsity"] == 0.5
        old = ds.copy()
        old.attrs = {k: v for k, v in ds.attrs.items() if k not in NEW}
        assert run_identity(old) == run_identity(ds)
