"""Which logged metrics are the store's epoch metrics (``train_loss``, ``train_accuracy``,
``test_loss``, ``test_accuracy``), judged by their names.

A name is split into words at anything that is not a letter or digit (``val/acc``,
``train_loss_epoch``, ``eval_accuracy``). It is taken only when its words are exactly one split
word, one kind word and optionally ``epoch``:

- split: ``train``/``training`` is the training set; ``val``/``valid``/``validation``/``eval``/
  ``test`` is the store's ``test_*`` (what the framework evaluates at the end of an epoch);
- kind: ``loss``; ``acc``/``accuracy``.

Anything else (``train_loss_step``, ``val_top5_acc``, ``lr``) is ignored. Where two names give the
same metric, the ``epoch`` variant wins, then the first one logged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

SPLITS = {
    "train": "train",
    "training": "train",
    "val": "test",
    "valid": "test",
    "validation": "test",
    "eval": "test",
    "test": "test",
}
KINDS = {"loss": "loss", "acc": "accuracy", "accuracy": "accuracy"}


def metric_key(name: str) -> tuple[str, bool] | None:
    """The store metric a logged name stands for, and whether it is an ``epoch`` variant; None
    when the name does not say clearly."""
    words = [w for w in re.split(r"[^a-z0-9]+", name.lower()) if w]
    epoch = "epoch" in words
    rest = [w for w in words if w != "epoch"]
    if len(rest) != 2 or len(words) - len(rest) > 1:
        return None
    splits = [SPLITS[w] for w in rest if w in SPLITS]
    kinds = [KINDS[w] for w in rest if w in KINDS]
    if len(splits) != 1 or len(kinds) != 1:
        return None
    return f"{splits[0]}_{kinds[0]}", epoch


def epoch_metrics(logged: Mapping[str, Any]) -> dict[str, float]:
    """The store's epoch metrics found in ``logged`` (name to number or one-element tensor)."""
    found: dict[str, tuple[bool, float]] = {}
    for name, value in logged.items():
        key = metric_key(str(name))
        number = _number(value)
        if key is None or number is None:
            continue
        metric, is_epoch = key
        if metric not in found or (is_epoch and not found[metric][0]):
            found[metric] = (is_epoch, number)
    return {k: v for k, (_, v) in found.items()}


def _number(value: Any) -> float | None:
    """A float from a number or a one-element tensor; None for anything else."""
    try:
        if hasattr(value, "numel") and value.numel() != 1:
            return None
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number
