"""A tiny name -> factory registry used for models, datasets, pruning methods, retraining
techniques and studies.

Entries live in this package (one module and one import line each) or in any installed
distribution that declares an entry point in the registry's group (:data:`GROUPS`), e.g. in the
plugin's ``pyproject.toml``::

    [project.entry-points."shedding.models"]
    my_net = "my_package.models"

Loading the entry point imports ``my_package.models``, whose ``@MODELS.register("my_net")`` line
registers it; an entry point that loads an object instead (``"my_package.models:build"``) is
registered under the entry point's name. Plugins load on the first lookup, so the CLI, ``--resume``
and the workers of a study grid see them like built-in entries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from types import ModuleType
from typing import Generic, TypeVar

T = TypeVar("T")

# The entry-point group of each registry, by kind.
GROUPS = {
    "model": "shedding.models",
    "dataset": "shedding.datasets",
    "pruning method": "shedding.pruning_methods",
    "retraining technique": "shedding.retraining_techniques",
    "study": "shedding.studies",
}


class UnknownNameError(KeyError):
    """Raised when a name is not registered; its message lists the valid names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class PluginError(ValueError):
    """An entry point of a registry's group failed to load; the message (one line) names it."""


class Registry(Generic[T]):
    """Maps names to objects (usually factories). Adding an entry is one decorator line."""

    def __init__(self, kind: str, group: str | None = None) -> None:
        self.kind = kind
        self.group = group if group is not None else GROUPS.get(kind)
        self._entries: dict[str, T] = {}
        self._plugins_loaded = self.group is None

    def _load_plugins(self) -> None:
        """Import the entry points of this registry's group, once; a failing plugin fails with one
        line naming it."""
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for ep in entry_points(group=self.group):
            try:
                obj = ep.load()
            except Exception as e:
                message = " ".join(f"{type(e).__name__}: {e}".split())
                raise PluginError(
                    f"{self.kind} plugin {ep.name!r} ({ep.value}) failed to load: {message}"
                ) from e
            if not isinstance(obj, ModuleType) and ep.name not in self._entries:
                self._entries[ep.name] = obj

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering ``obj`` under ``name``."""

        def deco(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        """Return the entry for ``name`` or raise :class:`UnknownNameError` naming the valid
        choices."""
        if name not in self._entries:
            self._load_plugins()
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(sorted(self._entries))}"
            ) from None

    def names(self) -> list[str]:
        """Registered names (plugins included), sorted."""
        self._load_plugins()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        if name not in self._entries:
            self._load_plugins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
