"""``python -m shedding.cli.main`` that signals itself at a chosen moment, for
tests/record/test_interrupts.py.

``SHEDDING_SIGNAL`` names the signal (INT, TERM or KILL; ``INT,INT`` sends two at once) and
``SHEDDING_SIGNAL_AT`` the moment, so the tests never depend on timing:

- ``prepare``: right after the configuration is resolved, before the store exists;
- ``pretrain:K`` / ``retrain:K``: after step K of the original training / of the first retraining
  round (``retrain:K@R``: of round R);
- ``flush:K``: from the store writer's thread, during its K-th flush;
- ``close``: as the finished run's store starts closing; ``after``: once the run has returned;
- ``call:K``: at the K-th call of any recording function (:data:`COUNTED`): a "random moment" when K
  is drawn.

With ``SHEDDING_SIGNAL_SYNC=1`` the step moments first wait for the store writer to write everything
handed to it (a kill then finds what an idle writer would leave). With ``SHEDDING_COUNT_CALLS=FILE``
nothing is sent and the number of counted calls is written to FILE at exit.
"""

from __future__ import annotations

import atexit
import functools
import os
import signal
import sys
import threading
from pathlib import Path

from shedding import experiment, storage
from shedding.recording import recorder, store
from shedding.training.loop import Callback

SIGNALS = [getattr(signal, f"SIG{s}") for s in os.environ.get("SHEDDING_SIGNAL", "INT").split(",")]
AT = os.environ.get("SHEDDING_SIGNAL_AT", "")
WHERE, _, N = AT.partition(":")
N, _, R = N.partition("@")
K = int(N) if N else 0
ROUND = int(R) if R else 0
_calls = [0]
_lock = threading.Lock()


def send() -> None:
    for s in SIGNALS:
        os.kill(os.getpid(), s)


_recorders: list = []


def _at_step(phase: str) -> Callback:
    class SendAt(Callback):
        def on_step_end(self, state) -> None:
            if state.phase == phase and state.step == K and state.round in (-1, ROUND):
                if os.environ.get("SHEDDING_SIGNAL_SYNC") and _recorders:
                    _recorders[-1].io.sync()
                send()

    return SendAt()


def _wrap(owner: object, name: str, before: bool, when) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        if before and when(*args, **kwargs):
            send()
        out = original(*args, **kwargs)
        if not before and when(*args, **kwargs):
            send()
        return out

    setattr(owner, name, wrapper)


COUNTED = [
    (recorder.Recorder, "on_step_end"),
    (recorder.Recorder, "_flush_writers"),
    (recorder.Recorder, "close"),
    (store.ChunkWriter, "flush"),
    (store.ChunkWriter, "append"),
    (store.RunStore, "set_attrs"),
    (store.RunStore, "create"),
    (storage, "save_atomic"),
    (storage, "rmtree"),
    (experiment, "prepare"),
]


def _count(*args, **kwargs) -> bool:
    with _lock:
        _calls[0] += 1
        return _calls[0] == K


def install() -> None:
    if count_file := os.environ.get("SHEDDING_COUNT_CALLS"):
        for owner, name in COUNTED:
            _wrap(owner, name, True, _count)
        atexit.register(lambda: Path(count_file).write_text(str(_calls[0])))
    elif WHERE == "prepare":
        _wrap(experiment, "prepare", False, lambda *a, **k: True)
    elif WHERE in ("pretrain", "retrain"):
        original_init = recorder.Recorder.__init__

        def init(self, *args, **kwargs) -> None:
            original_init(self, *args, **kwargs)
            _recorders.append(self)

        recorder.Recorder.__init__ = init
        original_train = experiment.train
        experiment.train = lambda *a, **k: original_train(
            *a[:5], [*a[5], _at_step(WHERE)], *a[6:], **k
        )
    elif (
        WHERE == "flush"
    ):  # training waits at each epoch end for that flush, so the signal lands mid-run
        _wrap(recorder.Recorder, "_flush_writers", True, lambda *a, **k: _count())
        original_epoch_end = recorder.Recorder.on_epoch_end

        def on_epoch_end(self, state) -> None:
            original_epoch_end(self, state)
            self.io.sync()

        recorder.Recorder.on_epoch_end = on_epoch_end
    elif WHERE == "close":
        _wrap(recorder.Recorder, "close", True, lambda self, status, **k: status == "complete")
    elif WHERE == "after":
        _wrap(experiment, "_run_recorded", False, lambda *a, **k: True)
    elif WHERE == "call":
        for owner, name in COUNTED:
            _wrap(owner, name, True, _count)


install()
from shedding.cli.main import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
