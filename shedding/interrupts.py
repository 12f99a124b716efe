"""Ctrl-C and SIGTERM during a run: the run stops at the next safe point, never in the middle of a
write.

While :func:`stop_on_signals` is active (in the main thread), the first SIGINT or SIGTERM only notes
the request. The training loop calls :func:`check` after every step (and evaluation after every
batch), which raises :class:`Interrupted` there, so the recorder's state is whole when the store is
closed. Inside
:func:`shielded` (closing the store) a request is noted and not raised: the close finishes and the
lock is released. A second signal outside a shielded section raises at once (a stuck step can still
be stopped); a third one inside it abandons the close (a hung disk) and exits at once with status
130, leaving a store that
``record --resume`` finishes. Signals that were ignored (a background job's SIGINT) stay ignored,
and signals that come while no run is active keep Python's default behaviour.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """The run was stopped by SIGINT or SIGTERM; ``status`` is what its store was left as, once
    known."""

    def __init__(self, reason: str, status: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class _State:
    def __init__(self) -> None:
        self.depth = 0  # nested stop_on_signals (main thread)
        self.requested: str | None = None  # the first signal's name, once one came
        self.count = 0  # signals received
        self.previous: dict[int, Any] = {}
        self.local = threading.local()  # per thread: nested shielded sections

    @property
    def shield(self) -> int:
        return getattr(self.local, "shield", 0)


_state = _State()


def _handler(signum: int, frame: Any) -> None:
    name = signal.Signals(signum).name
    _state.count += 1
    if _state.requested is None:
        _state.requested = name
    elif _state.shield == 0:
        raise Interrupted(f"{name} (a second signal: stopped at once)")
    elif _state.count >= 3:
        sys.stderr.write(
            "interrupted: a third signal while the store was closing; it was left unfinished "
            "(`shedding record --resume` finishes it)\n"
        )
        sys.stderr.flush()
        os._exit(130)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into stop requests for the duration (main thread only; nests)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _state.depth == 0:
        _state.requested, _state.count = None, 0
        _state.previous = {s: signal.getsignal(s) for s in SIGNALS}
        for s, h in _state.previous.items():
            if h is not signal.SIG_IGN:
                signal.signal(s, _handler)
    _state.depth += 1
    try:
        yield
    finally:
        _state.depth -= 1
        if _state.depth == 0:
            for s, h in _state.previous.items():
                signal.signal(s, h if h is not None else signal.SIG_DFL)
            _state.previous = {}


def requested() -> str | None:
    """The name of the signal that asked for a stop (SIGINT or SIGTERM), or None."""
    return _state.requested if _state.depth else None


def check() -> None:
    """Raise :class:`Interrupted` if a stop was requested (a safe point; does nothing while
    shielded)."""
    if _state.depth and _state.requested is not None and _state.shield == 0:
        raise Interrupted(_state.requested)


@contextmanager
def shielded() -> Iterator[None]:
    """A section that a signal must not cut short (creating or closing a store): requests are noted,
    not raised, in this thread."""
    _state.local.shield = _state.shield + 1
    try:
        yield
    finally:
        _state.local.shield -= 1
