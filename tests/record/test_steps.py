"""OpenLTH step strings: parsing, errors, conversion to iterations."""

from __future__ import annotations

import pytest

from shedding.config import ConfigError, parse_step
from shedding.steps import Step, StepError, normalise, to_iterations
from shedding.validate import validate_run_config


@pytest.mark.parametrize(
    ("text", "ep", "it"),
    [
        ("40ep", 40, 0),
        ("500it", 0, 500),
        ("10ep20it", 10, 20),
        ("0it", 0, 0),
        ("0ep", 0, 0),
        (" 3ep ", 3, 0),
        ("007ep", 7, 0),
        ("05ep00it", 5, 0),
        ("120ep50it", 120, 50),
    ],
)
def test_parse_forms(text: str, ep: int, it: int) -> None:
    assert Step.parse(text) == Step(ep, it)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "ep",
        "it",
        "40",
        "4.5ep",
        "-1ep",
        "10it5ep",
        "40 ep",
        "40EP",
        "40epochs",
        "ep40",
        "1ep2ep",
        "10ep20it30it",
        "40e",
        "abc",
        "3ep 4it",
        "4 0ep",
        "3ep\t4it",  # spaces inside
        "\u0663ep",
        "\uff15it",
        "1\u0660ep",
        "\U0001d7d3it",  # digits that are not ASCII (Arabic-Indic, fullwidth, math)
    ],
)
def test_bad_strings_raise_step_error(text: str) -> None:
    with pytest.raises(StepError, match="bad step string"):
        Step.parse(text)


def test_step_error_is_a_value_error_and_parse_step_names_the_option() -> None:
    assert issubclass(StepError, ValueError)
    with pytest.raises(ConfigError, match=r"^--train-duration: bad step string 'x'"):
        parse_step("x", "--train-duration")


@pytest.mark.parametrize(
    ("text", "ipe", "n"),
    [
        ("40ep", 12, 480),
        ("500it", 12, 500),
        ("10ep20it", 391, 3930),
        ("0it", 5, 0),
        ("3ep", 1, 3),
        ("2ep5it", 0, 5),
    ],
)
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


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("05ep", "5ep"),
        ("5ep", "5ep"),
        (" 5ep ", "5ep"),
        ("5ep0it", "5ep"),
        ("0ep300it", "300it"),
        ("0it", "0ep"),
        ("00it", "0ep"),
        ("010ep020it", "10ep20it"),
    ],
)
def test_normalise(text: str, normal: str) -> None:
    assert normalise(text) == normal
    assert normalise(normal) == normal


def test_equal_lengths_written_differently_give_one_config_hash() -> None:
    from shedding.config import RunConfig, apply_overrides

    base = RunConfig()
    a = apply_overrides(
        base,
        {
            "train.duration": "05ep",
            "train.milestones": "02ep,03ep",
            "train.warmup": "00it",
            "retrain.duration": "4ep0it",
            "prune.interval": "01ep",
        },
    )
    b = apply_overrides(
        base,
        {
            "train.duration": "5ep",
            "train.milestones": "2ep,3ep",
            "train.warmup": "0ep",
            "retrain.duration": "4ep",
            "prune.interval": "1ep",
        },
    )
    assert a.hash() == b.hash() and a.hash(("model", "data", "train")) == b.hash(
        ("model", "data", "train")
    )
    assert a.hash() != apply_overrides(base, {"train.duration": "50ep"}).hash()
    assert (
        apply_overrides(base, {"train.warmup": "0it", "prune.interval": "1ep"}).hash()
        == base.hash()
    )


def test_bad_step_strings_name_the_option_in_one_line() -> None:
    from shedding.config import RunConfig, apply_overrides

    for key, option, text in [
        ("train.duration", "--train-duration", "3ep 4it"),
        ("train.warmup", "--train-warmup", "\uff15it"),
        ("train.milestones", "--train-milestones", "1ep,\u0663ep"),
    ]:
        cfg = apply_overrides(RunConfig(), {key: text})
        with pytest.raises(ConfigError) as e:
            validate_run_config(cfg)
        assert str(e.value).startswith(f"{option}: bad step string") and "\n" not in str(e.value)
