"""The map's expected wall time, printed before it starts: from seconds per epoch measured per
model.

:data:`SECONDS` holds, per model on the embedded digits data (batch 128, 12 steps an epoch), the
seconds of one epoch of original training, of one epoch of retraining with the map's summary-only
recording, and the fixed cost of one run, measured on 2026-11-28 on this project's 2-core machine
at load ~1 with one torch thread (a 40-epoch original training, then runs of 5 and 15 epochs of
retraining, whose difference gives the per-epoch cost). A grid's
estimate is the sum over its original trainings (one per model, data, training section and seed,
as the runner shares them) and runs, divided by the workers, plus :data:`STARTUP` for the cluster,
the analysis and the report. A loaded machine takes longer: the load factor is given in the
message.
"""

from __future__ import annotations

import os

from shedding.config import RunConfig
from shedding.steps import Step

SECONDS = {  # model: (pretraining s/epoch, retraining s/epoch, s per run)
    "small_cnn": (0.206, 0.171, 0.35),
    "mlp": (0.008, 0.037, 0.22),
    "digits_cnn_narrow": (0.045, 0.077, 0.20),
    "digits_cnn_wide": (0.371, 0.403, 0.43),
    "digits_cnn_nobn": (0.106, 0.140, 0.21),
    "digits_resnet": (0.176, 0.210, 0.27),
    "digits_mobilenet": (0.162, 0.182, 0.32),
}
TASK = 1.6  # seconds a grid task costs beyond the run itself (dask, store opening, manifest)
STARTUP = 40.0  # the local cluster, the data check, the analysis and the report
ITERATIONS_PER_EPOCH = 12  # digits, batch 128


def _epochs(duration: str) -> float:
    """An OpenLTH length in digits epochs."""
    s = Step.parse(duration)
    return s.ep + s.it / ITERATIONS_PER_EPOCH


def expected_seconds(configs: list[RunConfig], workers: int | None) -> float | None:
    """The expected wall time of running ``configs`` on ``workers`` local workers (None: one per
    CPU, at most one per run); None when a run is not on digits at batch 128 or its model was not
    measured."""
    if not configs:
        return 0.0
    if any(
        c.data.name != "digits" or c.data.batch_size != 128 or c.model.name not in SECONDS
        for c in configs
    ):
        return None
    total, pretrained = 0.0, set()
    for c in configs:
        pre, retrain, run = SECONDS[c.model.name]
        key = (c.hash(("model", "data", "train")), c.seed)
        if key not in pretrained:
            pretrained.add(key)
            total += pre * _epochs(c.train.duration)
        total += retrain * _epochs(c.retrain.duration) + run + TASK
    return STARTUP + total / _workers(configs, workers)


def _workers(configs: list[RunConfig], workers: int | None) -> int:
    """The local cluster's workers: ``workers``, else one per CPU, at most one per run."""
    return workers or max(1, min(os.cpu_count() or 1, len(configs)))


def expected_time(configs: list[RunConfig], workers: int | None) -> str:
    """The line the command prints before it starts (:func:`expected_seconds` in words)."""
    seconds = expected_seconds(configs, workers)
    if seconds is None:
        return "expected time: no estimate (measured for the digits models only)"
    n = _workers(configs, workers)
    return (
        f"expected time: about {seconds / 60:.0f} min on {n} idle CPU worker(s) (measured per "
        "model on digits; about twice that when other jobs keep the machine busy)"
    )
