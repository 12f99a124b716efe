"""OpenLTH step strings: parsing, errors, conversion to iterations."""

from __future__ import annotations

import pytest

from shedding.config import ConfigError, parse_step
from shedding.steps import Step, StepError, to_iterations


@pytest.mark.parametrize(("text", "ep", "it"), [
    ("40ep", 40, 0), ("500it", 0, 500), ("10ep20it", 10, 20), ("0it", 0, 0), ("0ep", 0, 0),
    (" 3ep ", 3, 0), ("3ep 4it", 3, 4), ("007ep", 7, 0), ("120ep50it", 120, 50),
])
def test_parse_forms(text: str, ep: int, it: int) -> None:
    assert Step.parse(text) == Step(ep, it)


@pytest.mark.parametrize("text", [
    "", "   ", "ep", "it", "40", "4.5ep", "-1ep", "10it5ep", "40 ep", "40EP", "40epochs", "ep40",
    "1ep2ep", "10ep20it30it", "40e", "abc",
])
def test_bad_strings_raise_step_error(text: str) -> None:
    with pytest.raises(StepError, match="bad step string"):
        Step.parse(text)


def test_step_error_is_a_value_error_and_parse_step_names_the_option() -> None:
    assert issubclass(StepError, ValueError)
    with pytest.raises(ConfigError, match=r"^--train-duration: bad step string 'x'"):
        parse_step("x", "--train-duration")


@pytest.mark.parametrize(("text", "ipe", "n"), [
    ("40ep", 12, 480), ("500it", 12, 500), ("10ep20it", 391, 3930), ("0it", 5, 0), ("3ep", 1, 3),
    ("2ep5it", 0, 5),
])
def test_iterations(text: str, ipe: int, n: int) -> None:
    assert Step.parse(text).iterations(ipe) == n
    assert to_iterations(text, ipe) == n


@pytest.mark.parametrize("text", ["40ep", "500it", "10ep20it", "0it"])
def test_str_round_trips(text: str) -> None:
    s = Step.parse(text)
    assert Step.parse(str(s)) == s
    assert str(Step(10, 20)) == "10ep20it" and str(Step(0, 7)) == "7it" and str(Step(5, 0)) == "5ep"


def test_step_is_frozen_and_hashable() -> None:
    s = Step(1, 2)
    with pytest.raises(AttributeError):
        s.ep = 3  # type: ignore[misc]
    assert len({Step(1, 2), Step.parse("1ep2it")}) == 1
