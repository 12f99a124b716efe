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

A registry made with ``import_paths=True`` (models and datasets) also takes an import path
``package.module:factory`` as a name: :func:`resolve_import_path` imports ``package.module`` and
returns its attribute ``factory``. Nothing is registered; the path itself is the name a run's
configuration stores, so every process that can import the module (the CLI, ``--resume``, the
workers of a study grid, given the same ``PYTHONPATH``) resolves it alike.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any, Generic, TypeVar

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


class FactoryError(ValueError):
    """A factory cannot be called with what its registry gives, or returned the wrong kind of
    object; the message (one line) names it."""


def _one_line(e: BaseException) -> str:
    return " ".join(f"{type(e).__name__}: {e}".split())


def is_import_path(name: str) -> bool:
    """True for a name of the form ``package.module:attribute`` (any name with a ``:``)."""
    return ":" in name


def _import_module(path: str, module_name: str, kind: str) -> ModuleType:
    """Import ``module_name``; a missing module is an :class:`UnknownNameError`, a module that
    fails while importing a :class:`PluginError` (one line each, naming ``path``)."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        missing = e.name or module_name
        if module_name == missing or module_name.startswith(missing + "."):
            raise UnknownNameError(
                f"unknown {kind} {path!r}: no module named {missing!r} (install it or add its "
                "folder to PYTHONPATH)"
            ) from None
        raise PluginError(
            f"{kind} {path!r}: importing module {module_name!r} failed: {_one_line(e)}"
        ) from e
    except Exception as e:
        raise PluginError(
            f"{kind} {path!r}: importing module {module_name!r} failed: {_one_line(e)}"
        ) from e


def resolve_import_path(path: str, kind: str) -> Callable:
    """The callable named by the import path ``package.module:attribute`` (the attribute may be
    dotted, ``module:Class.build``).

    Raises :class:`UnknownNameError` (a malformed path, a module or attribute that does not exist,
    an attribute that is not callable) or :class:`PluginError` (the module fails while importing),
    each with a one-line message naming ``path``.
    """
    module_name, _, attribute = path.partition(":")
    parts = attribute.split(".")
    if not module_name.strip() or not all(p.isidentifier() for p in parts):
        raise UnknownNameError(f"unknown {kind} {path!r}: an import path is package.module:factory")
    obj: object = _import_module(path, module_name, kind)
    for i, part in enumerate(parts):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            owner = ".".join([module_name, *parts[:i]])
            raise UnknownNameError(
                f"unknown {kind} {path!r}: {owner!r} has no attribute {part!r}"
            ) from None
    if not callable(obj):
        raise UnknownNameError(
            f"{kind} {path!r} is not callable (a value of type {type(obj).__name__}); name a "
            "factory function or class"
        )
    return obj


def call_factory(factory: Callable, arguments: dict[str, Any], what: str) -> Any:
    """Call ``factory`` with ``arguments``: all of them positionally, in order, when its signature
    takes that (every registered factory does, so their calls are unchanged); otherwise only those
    its signature names, by keyword (none, for a factory without parameters).

    Raises :class:`FactoryError` (one line, naming ``what``) when neither call fits the signature.
    """
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):  # no signature to read (some builtins): call as registered
        return factory(*arguments.values())
    try:
        sig.bind(*arguments.values())
    except TypeError:
        pass
    else:  # called outside the try: a TypeError from inside the factory is the factory's own
        return factory(*arguments.values())
    by_name = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    named = {
        k: v
        for k, v in arguments.items()
        if k in sig.parameters and sig.parameters[k].kind in by_name
    }
    try:
        sig.bind(**named)
    except TypeError:
        missing = [
            p.name
            for p in sig.parameters.values()
            if p.default is inspect.Parameter.empty
            and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
            and p.name not in named
        ]
        raise FactoryError(
            f"{what}: cannot call the factory: it requires {', '.join(missing) or 'more'}; it may "
            f"take ({', '.join(arguments)}), any of them by name, or nothing"
        ) from None
    return factory(**named)


class Registry(Generic[T]):
    """Maps names to objects (usually factories). Adding an entry is one decorator line.

    With ``import_paths=True``, a name with a ``:`` is an import path (:func:`resolve_import_path`)
    rather than a registered name.
    """

    def __init__(self, kind: str, group: str | None = None, import_paths: bool = False) -> None:
        self.kind = kind
        self.group = group if group is not None else GROUPS.get(kind)
        self.import_paths = import_paths
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
                raise PluginError(
                    f"{self.kind} plugin {ep.name!r} ({ep.value}) failed to load: {_one_line(e)}"
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
        choices (or, for an import path, what is wrong with it)."""
        if self.import_paths and is_import_path(name):
            return resolve_import_path(name, self.kind)  # type: ignore[return-value]
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
        if self.import_paths and isinstance(name, str) and is_import_path(name):
            try:
                self.get(name)
            except UnknownNameError:
                return False
            return True
        if name not in self._entries:
            self._load_plugins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
