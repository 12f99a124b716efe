"""Builds the ``record`` command's options from the configuration dataclasses (one option per
field)."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

import typer

from shedding.config import FlatField, flat_fields


def _metavar(f: FlatField) -> str:
    origin = typing.get_origin(f.type)
    if origin in (list, tuple):
        return "A,B,..."
    return {int: "INT", float: "FLOAT", str: "TEXT"}.get(f.type, "VALUE")


def _default_text(f: FlatField) -> str:
    if isinstance(f.default, list):
        return ",".join(map(str, f.default)) or "(none)"
    return str(f.default)


def config_parameters(panel: str = "Configuration") -> list[inspect.Parameter]:
    """One keyword parameter per config field; ``None`` means 'not given' so layering stays
    explicit."""
    params = []
    for f in flat_fields():
        if f.type is bool:
            opt = typer.Option(
                None,
                f"{f.cli_name}/{f.cli_name.replace('--', '--no-', 1)}",
                help=f"{f.help} [default: {str(f.default).lower()}]",
                show_default=False,
                rich_help_panel=f"{panel}: {f.section or 'run'}",
            )
            ann: Any = bool | None
        else:
            opt = typer.Option(
                None,
                f.cli_name,
                help=f"{f.help} [default: {_default_text(f)}]",
                metavar=_metavar(f),
                show_default=False,
                rich_help_panel=f"{panel}: {f.section or 'run'}",
            )
            ann = str | None
        params.append(
            inspect.Parameter(
                f.param_name, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=ann
            )
        )
    return params


def with_config_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Give ``fn`` (which takes ``overrides: dict[str, str]`` plus its own options) every config
    option."""
    sig = inspect.signature(fn)
    hints = typing.get_type_hints(fn, include_extras=True)  # real types, not postponed strings
    own = [
        p.replace(annotation=hints.get(p.name, p.annotation))
        for p in sig.parameters.values()
        if p.name != "overrides"
    ]
    extra = config_parameters()
    keys = {f.param_name: f.key for f in flat_fields()}

    def wrapper(**kwargs: Any) -> Any:
        overrides = {
            keys[k]: (str(v).lower() if isinstance(v, bool) else v)
            for k, v in kwargs.items()
            if k in keys and v is not None
        }
        rest = {k: v for k, v in kwargs.items() if k not in keys}
        return fn(overrides=overrides, **rest)

    wrapper.__signature__ = sig.replace(parameters=[*own, *extra], return_annotation=None)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in [*own, *extra]}
    wrapper.__doc__ = fn.__doc__
    wrapper.__name__ = fn.__name__
    return wrapper
