"""A background writer: store I/O (compression and chunk writes) runs while training goes on.

Operations run one at a time, in the order submitted, on one thread, so the store sees the same
sequence of writes as a synchronous recorder would. The queue is bounded: when the writer falls
behind,
:meth:`IOThread.submit` blocks (back-pressure) and the time it blocked is added up, so training
waits and data is never dropped. The first error in the writer stops it; the next call from training
raises it.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any


class RecorderIOError(RuntimeError):
    """The background writer failed (disk full, permissions, ...); the message says how."""


class IOThread:
    """One worker thread executing submitted callables in order, with a bounded queue."""

    def __init__(self, max_pending: int = 8, name: str = "shedding-store-writer") -> None:
        self._queue: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...]] | None] = queue.Queue(
            max_pending
        )
        self.error: BaseException | None = None
        self.wait_seconds = 0.0  # time training spent blocked on a full queue
        self.busy_seconds = 0.0  # time the writer spent writing
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                if self.error is None:
                    fn, args = item
                    t0 = time.perf_counter()
                    fn(*args)
                    self.busy_seconds += time.perf_counter() - t0
            except BaseException as e:  # noqa: BLE001 - kept and re-raised in the training thread
                self.error = e
            finally:
                self._queue.task_done()

    def _raise(self) -> None:
        if self.error is not None:
            e = self.error
            raise RecorderIOError(
                f"the store writer failed: {type(e).__name__}: {e}".splitlines()[0]
            ) from e

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue ``fn(*args)``; blocks while the queue is full (back-pressure)."""
        self._raise()
        if (
            not self._thread.is_alive()
        ):  # after close: nothing would ever run it (and a full queue would hang)
            raise RecorderIOError("the store writer is closed; nothing more can be written")
        t0 = time.perf_counter()
        self._queue.put((fn, args))
        self.wait_seconds += time.perf_counter() - t0

    def sync(self) -> None:
        """Wait until everything submitted has been written; raise the writer's error if it
        failed."""
        if not self._thread.is_alive():
            self._raise()
            return
        t0 = time.perf_counter()
        self._queue.join()
        self.wait_seconds += time.perf_counter() - t0
        self._raise()

    def close(self) -> None:
        """Finish the queued work and stop the thread (errors stay in :attr:`error`)."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
