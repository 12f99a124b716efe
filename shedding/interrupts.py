"""Ctrl-C and SIGTERM during a run: the run stops at the next safe point, never in the middle of a write.

While :func:`stop_on_signals` is active (in the main thread), the first SIGINT or SIGTERM only notes the
request. The training loop calls :func:`check` after every step (and evaluation after every batch), which
raises :class:`Interrupted` there, so the recorder's state is whole when the store is closed. Inside
:func:`shielded` (closing the store) a request is noted and never raised: the close always finishes and
the lock is always released. A second signal outside a shielded section raises at once (a stuck step
can still be stopped). Signals that come while no run is active keep Python's default behaviour.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """The run was stopped by SIGINT or SIGTERM; ``status`` is what its store was left as, once known."""

    def __init__(self, reason: str, status: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class _State:
    def __init__(self) -> None:
        self.depth = 0  # nested stop_on_signals
        self.shield = 0  # nested shielded sections
        self.requested: str | None = None  # the first signal's name, once one came
        self.previous: dict[int, Any] = {}


_state = _State()


def _handler(signum: int, frame: Any) -> None:
    name = signal.Signals(signum).name
    if _state.requested is None:
        _state.requested = name
    elif _state.shield == 0:
        raise Interrupted(f"{name} (a second signal: stopped at once)")


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into stop requests for the duration (main thread only; nests)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _state.depth == 0:
        _state.requested = None
        _state.previous = {s: signal.signal(s, _handler) for s in SIGNALS}
    _state.depth += 1
    try:
        yield
    finally:
        _state.depth -= 1
        if _state.depth == 0:
            for s, h in _state.previous.items():
                signal.signal(s, h)
            _state.previous = {}


def requested() -> str | None:
    """The name of the signal that asked for a stop (SIGINT or SIGTERM), or None."""
    return _state.requested if _state.depth else None


def check() -> None:
    """Raise :class:`Interrupted` if a stop was requested (a safe point; does nothing while shielded)."""
    if _state.depth and _state.requested is not None and _state.shield == 0:
        raise Interrupted(_state.requested)


@contextmanager
def shielded() -> Iterator[None]:
    """A section that a signal must not cut short (closing a store): requests are noted, not raised."""
    _state.shield += 1
    try:
        yield
    finally:
        _state.shield -= 1
