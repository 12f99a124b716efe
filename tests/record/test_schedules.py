"""Learning-rate schedules: values at and around milestones, warm-up, cosine endpoints, shifting."""

from __future__ import annotations

import math

import pytest

from shedding.config import ConfigError, TrainConfig
from shedding.training.schedules import ScheduleSpec, build_schedule, constant, shifted

IPE = 7  # iterations per epoch: deliberately not a round number


def _cfg(**kw) -> TrainConfig:
    return TrainConfig(**{"lr": 0.1, "gamma": 0.1, "duration": "10ep", **kw})


def test_multistep_resolves_step_strings_and_changes_exactly_at_milestones() -> None:
    s = build_schedule(_cfg(schedule="multistep", milestones=["3ep", "5ep2it"]), IPE)
    assert s.milestones == (21, 37) and s.total == 70 and s.kind == "multistep"
    expected = {0: 0.1, 20: 0.1, 21: 0.01, 22: 0.01, 36: 0.01, 37: 0.001, 38: 0.001, 69: 0.001}
    for step, lr in expected.items():
        assert s(step) == pytest.approx(lr, rel=1e-12), step
    # Piecewise constant: exactly two changes over the run.
    values = [s(k) for k in range(70)]
    changes = [k for k in range(1, 70) if values[k] != values[k - 1]]
    assert changes == [21, 37]


def test_multistep_with_it_milestones_and_gamma() -> None:
    s = build_schedule(
        _cfg(schedule="multistep", milestones=["10it", "20it"], gamma=0.5, lr=0.4), IPE
    )
    assert [s(k) for k in (9, 10, 19, 20)] == pytest.approx([0.4, 0.2, 0.2, 0.1])


def test_multistep_without_milestones_is_constant() -> None:
    s = build_schedule(_cfg(schedule="multistep", milestones=[]), IPE)
    assert all(s(k) == 0.1 for k in range(70))


def test_step_schedule() -> None:
    s = build_schedule(_cfg(schedule="step", step_size="2ep", gamma=0.5), IPE)
    assert s.step_size == 14
    for k in range(70):
        assert s(k) == pytest.approx(0.1 * 0.5 ** (k // 14)), k
    assert (
        s(13) == pytest.approx(0.1)
        and s(14) == pytest.approx(0.05)
        and s(28) == pytest.approx(0.025)
    )


def test_linear_warmup_ramps_to_lr_then_follows_the_schedule() -> None:
    s = build_schedule(_cfg(schedule="multistep", milestones=["5ep"], warmup="1ep"), IPE)
    assert s.warmup == 7
    for k in range(7):
        assert s(k) == pytest.approx(0.1 * (k + 1) / 7), k
    assert s(6) == pytest.approx(0.1) and s(7) == 0.1 and s(34) == 0.1
    assert s(35) == pytest.approx(0.01)
    ramp = [s(k) for k in range(7)]
    assert all(a < b for a, b in zip(ramp, ramp[1:], strict=False))


def test_cosine_endpoints_and_midpoint() -> None:
    s = build_schedule(_cfg(schedule="cosine", duration="10ep"), 10)
    assert s.total == 100
    assert s(0) == 0.1
    assert s(50) == pytest.approx(0.05, abs=1e-15)
    assert s(100) == pytest.approx(0.0, abs=1e-15) and s(150) == pytest.approx(0.0, abs=1e-15)
    for k in (1, 17, 99):
        assert s(k) == pytest.approx(0.05 * (1 + math.cos(math.pi * k / 100)), rel=1e-12)
    values = [s(k) for k in range(101)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))


def test_cosine_with_warmup_starts_after_the_ramp() -> None:
    s = build_schedule(_cfg(schedule="cosine", duration="10ep", warmup="10it"), 10)
    assert [s(k) for k in range(10)] == pytest.approx([0.1 * (k + 1) / 10 for k in range(10)])
    assert s(10) == 0.1
    assert s(55) == pytest.approx(0.05)  # half-way through the 90 post-warm-up steps
    assert s(100) == pytest.approx(0.0, abs=1e-15)


def test_constant_schedule_and_helpers() -> None:
    s = build_schedule(_cfg(schedule="constant", milestones=["1ep"]), IPE)
    assert all(s(k) == 0.1 for k in range(0, 200, 13))
    c = constant(0.003)
    assert c(0) == c(10**6) == 0.003


def test_shifted_replays_the_schedule_from_an_offset() -> None:
    s = build_schedule(_cfg(schedule="multistep", milestones=["3ep", "6ep"]), IPE)
    offset = 30
    sh = shifted(s, offset)
    for k in range(40):
        assert sh(k) == s(offset + k)
    # Crossing the milestone at 42 = 6ep happens at shifted step 12.
    assert sh(11) == pytest.approx(0.01) and sh(12) == pytest.approx(0.001)
    assert shifted(s, 0)(5) == s(5)


def test_schedule_spec_is_a_pure_function() -> None:
    spec = ScheduleSpec("multistep", 1.0, 100, milestones=(10,), gamma=0.5)
    assert [spec(k) for k in (9, 10, 9)] == [1.0, 0.5, 1.0]


def test_build_schedule_rejects_bad_step_strings() -> None:
    with pytest.raises(ConfigError, match="train.milestones"):
        build_schedule(_cfg(milestones=["3 epochs"]), IPE)
    with pytest.raises(ConfigError, match="train.duration"):
        build_schedule(_cfg(duration="ten"), IPE)
