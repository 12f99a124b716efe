"""The store's schema as data: every array a run store can hold, one row each.

:func:`shedding.recording.store.store_specs` creates a store's arrays from :data:`VARIABLES` (in
this order, those its profile has), and :mod:`shedding.recording.schema_doc` renders the same table
as ``docs/store-format.md``. A row gives an array's dimensions, data type, fill value, CF ``units``
and ``long_name``, when a store has it (:data:`WHEN`), how it is chunked (:data:`CHUNKING`) and
compressed (:data:`CODECS`), and whether it is a coordinate written when the store is created.
Magnitudes are in the weights' own units and counts, fractions, codes and indices are
dimensionless ("1"); step coordinates count retraining updates.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

NAN = math.nan
MAGNITUDE_DTYPE = "float32|float16"  # the record dtype: float32, else float16 (float16 and log8)
MISSING_CODE = 255  # a log8 code not written (shedding.recording.encoding.MISSING)

# when a store holds an array: the profile flags of :func:`profile`, and what sets each
WHEN: dict[str, str] = {
    "always": "always",
    "snapshots": "`--record-every` > 0",
    "float": "`--record-every` > 0, `--record-dtype` float32 or float16",
    "log8": "`--record-every` > 0, `--record-dtype` log8",
    "hist": "`--record-hist-every` > 0",
    "samples": "`--record-sample-every` > 0",
    "lines": "`--record-lines` given",
}

# how an array is chunked (store.py computes the lengths)
CHUNKING: dict[str, str] = {
    "whole": "one chunk",
    "weight": "weights split in chunks of about one length, at most 262,144",
    "step": "4,096 steps a chunk, the other dimensions whole",
    "event": "one event by the weight chunks",
    "snapshot": "at most `--record-chunk-steps` snapshots (balanced) by the weight chunks",
    "snapshot-layer": "the snapshot chunks' steps by every layer",
    "hist": "at most `--record-chunk-steps` steps (balanced), the other dimensions whole",
    "sample": "at most 8 x `--record-chunk-steps` steps (balanced) by every sampled weight",
}

# the codecs before each array's crc32c checksum (store.py holds the codec objects)
CODECS: dict[str, str] = {
    "zstd0": "zstd level 0",
    "zstd1": "zstd level 1",
    "zstd3": "zstd level 3",
    "transpose-zstd1": "transpose (steps side by side), zstd level 1",
}


@dataclass(frozen=True)
class Variable:
    """One array of a run store: what it holds, when it exists and how it is stored."""

    name: str
    dims: tuple[str, ...]
    dtype: str  # a Zarr v3 data type, or MAGNITUDE_DTYPE
    fill: Any  # fill value; None: a coordinate, written whole at creation (zarr's default fill)
    units: str
    long_name: str
    when: str = "always"  # a key of WHEN
    chunks: str = "whole"  # a key of CHUNKING
    codec: str = "zstd0"  # a key of CODECS
    attrs: str = ""  # the array's own attributes beyond the CF ones, in words

    @property
    def coord(self) -> bool:
        """Whether the array is a coordinate, written when the store is created."""
        return self.fill is None

    def dtype_for(self, magnitude_dtype: str) -> str:
        """The array's data type in a store recorded with ``--record-dtype magnitude_dtype``."""
        if self.dtype != MAGNITUDE_DTYPE:
            return self.dtype
        return "float32" if magnitude_dtype == "float32" else "float16"


def _coord(name: str, dtype: str, long_name: str, units: str = "1", **kw: Any) -> Variable:
    """A coordinate along its own dimension (``dims`` in ``kw`` for one along another)."""
    dims = kw.pop("dims", (name,))
    return Variable(name, dims, dtype, None, units, long_name, **kw)


_LABELS = "`encoding: labels`, `labels` (the name of code i is labels[i]), `decode`"
_ROUND = "round of the {} (-1: original training)"
_LINE = "for each extra line (counted on the device)"

_COORDINATES = (
    _coord("layer", "int32", "prunable tensor, by parameter name", attrs=_LABELS),
    _coord("layer_size", "int64", "weights in the layer", dims=("layer",)),
    _coord("layer_start", "int64", "index in weight of the layer's first weight", dims=("layer",)),
    _coord(
        "layer_shape",
        "int32",
        "the layer's tensor shape, like 32x1x3x3",
        dims=("layer",),
        attrs=_LABELS,
    ),
    _coord(
        "weight", "int64", "prunable weight, layers concatenated in model order", chunks="weight"
    ),
    _coord(
        "weight_layer",
        "int32",
        "index into layer of the weight's tensor",
        dims=("weight",),
        chunks="weight",
    ),
    _coord(
        "weight_index",
        "int64",
        "flat position of the weight inside its tensor",
        dims=("weight",),
        chunks="weight",
    ),
    _coord(
        "step",
        "int64",
        "retraining updates done (0: right after the first prune event; < 0: original training)",
        "steps",
    ),
    _coord("step_round", "int16", _ROUND.format("step"), dims=("step",)),
    _coord(
        "epoch",
        "int64",
        "completed epochs, cumulative (<= 0: original training)",
        "epochs",
    ),
    _coord("epoch_step", "int64", "step at the end of the epoch", "steps", dims=("epoch",)),
    _coord("epoch_round", "int16", _ROUND.format("epoch"), dims=("epoch",)),
    _coord("event", "int64", "prune event"),
    _coord("event_step", "int64", "step of the prune event", "steps", dims=("event",)),
    _coord("record_step", "int64", "step of the magnitude snapshot", "steps", when="snapshots"),
    _coord(
        "record_round",
        "int16",
        _ROUND.format("snapshot"),
        dims=("record_step",),
        when="snapshots",
    ),
    _coord("hist_step", "int64", "step of the histogram", "steps", when="hist"),
    _coord("hist_round", "int16", _ROUND.format("histogram"), dims=("hist_step",), when="hist"),
    _coord("sample_step", "int64", "step of the sampled trajectories", "steps", when="samples"),
    _coord(
        "sample_round",
        "int16",
        _ROUND.format("sampled step"),
        dims=("sample_step",),
        when="samples",
    ),
)

_STEP = dict(chunks="step")
_EVENT_COUNT = dict(dims=("event", "layer"), dtype="int64", fill=-1, units="1")
_PER_STEP_AND_EVENT = (
    Variable("loss", ("step",), "float32", NAN, "1", "training loss of the step's batch", **_STEP),
    Variable(
        "lr", ("step",), "float64", NAN, "1", "learning rate used by the step's update", **_STEP
    ),
    Variable(
        "shed_count",
        ("step", "layer"),
        "int32",
        -1,
        "1",
        "eligible survivors below the shed line after the step",
        **_STEP,
    ),
    Variable(
        "shed_events",
        ("step", "layer"),
        "int32",
        -1,
        "1",
        "weights crossing below the line during the step",
        **_STEP,
    ),
    Variable(
        "recover_events",
        ("step", "layer"),
        "int32",
        -1,
        "1",
        "weights crossing back above the line during the step",
        **_STEP,
    ),
    Variable(
        "mask",
        ("event", "weight"),
        "bool",
        False,
        "1",
        "1 = weight kept after the event",
        chunks="event",
    ),
    Variable(
        "pre_prune_magnitude",
        ("event", "weight"),
        MAGNITUDE_DTYPE,
        NAN,
        "1",
        "|w| the event's mask was computed from (float16 when the snapshots use a compact "
        "encoding: the mask itself is exact)",
        chunks="event",
        codec="zstd3",
    ),
    Variable("event_round", ("event",), "int16", -1, "1", "round the event starts"),
    Variable(
        "event_sparsity",
        ("event",),
        "float64",
        NAN,
        "1",
        "overall fraction of prunable weights pruned after the event",
    ),
    Variable(
        "event_tau", ("event",), "float64", NAN, "1", "GMP cut value at the event's sparsity (tau)"
    ),
    Variable("event_line", ("event",), "float64", NAN, "1", "shed line alpha * tau"),
    Variable(
        "event_test_accuracy",
        ("event",),
        "float64",
        NAN,
        "1",
        "test accuracy right after the event, before retraining",
    ),
    Variable(
        "event_final_test_accuracy",
        ("event",),
        "float64",
        NAN,
        "1",
        "test accuracy at the end of the event's retraining round",
    ),
    Variable("event_pruned", long_name="weights newly pruned by the event", **_EVENT_COUNT),
    Variable("event_survivors", long_name="weights kept after the event", **_EVENT_COUNT),
    Variable(
        "event_eligible",
        long_name="survivors at or above the line at the event (can be shed)",
        **_EVENT_COUNT,
    ),
    Variable(
        "event_below",
        long_name="survivors already below the line at the event (never counted as shed)",
        **_EVENT_COUNT,
    ),
)

_PER_EPOCH = tuple(
    Variable(name, ("epoch",), "float64", NAN, "1", long_name)
    for name, long_name in (
        ("train_accuracy", "running accuracy over the epoch's training batches"),
        ("train_loss", "running loss over the epoch's training batches"),
        ("test_accuracy", "test-set accuracy at the end of the epoch"),
        ("test_loss", "test-set loss at the end of the epoch"),
    )
)

_LOG8 = "`encoding: log8`, `decode` (the formula), `step`, `levels`, `relative_error_bound`, "
_LOG8 += "`floor_ratio`"
_SNAPSHOTS = (
    Variable(
        "magnitude",
        ("record_step", "weight"),
        MAGNITUDE_DTYPE,
        NAN,
        "1",
        "|w| after the step (pruned weights are 0)",
        when="float",
        chunks="snapshot",
        codec="transpose-zstd1",
    ),
    Variable(
        "magnitude_code",
        ("record_step", "weight"),
        "uint8",
        MISSING_CODE,
        "1",
        "|w| after the step, log8-coded",
        when="log8",
        chunks="snapshot",
        codec="zstd1",
        attrs=_LOG8,
    ),
    Variable(
        "magnitude_top",
        ("record_step", "layer"),
        "float32",
        NAN,
        "1",
        "log2 of the layer's largest |w| after the step",
        when="log8",
        chunks="snapshot-layer",
    ),
    _coord("hist_bin", "int64", "histogram bin", when="hist"),
    _coord(
        "hist_bin_lo",
        "float64",
        "lower edge of the bin in log10|w|",
        dims=("hist_bin",),
        when="hist",
    ),
    _coord(
        "hist_bin_hi",
        "float64",
        "upper edge of the bin in log10|w|",
        dims=("hist_bin",),
        when="hist",
    ),
    Variable(
        "magnitude_hist",
        ("hist_step", "layer", "hist_bin"),
        "int32",
        -1,
        "1",
        "non-zero weights per log10|w| bin after the step (computed on the device; values outside "
        "the range counted in the end bins)",
        when="hist",
        chunks="hist",
    ),
    _coord("sample", "int64", "sampled weight", when="samples"),
    _coord(
        "sample_weight",
        "int64",
        "index in weight of the sampled weight",
        dims=("sample",),
        when="samples",
    ),
    _coord(
        "sample_layer",
        "int32",
        "index into layer of the sampled weight's tensor",
        dims=("sample",),
        when="samples",
    ),
    Variable(
        "sample_magnitude",
        ("sample_step", "sample"),
        MAGNITUDE_DTYPE,
        NAN,
        "1",
        "|w| of the sampled weights after the step",
        when="samples",
        chunks="sample",
        codec="transpose-zstd1",
    ),
)

_LINE_DIMS = ("step", "line", "layer")
_LINES = (
    _coord("line", "int32", "extra shed line, by label (kind:value)", when="lines", attrs=_LABELS),
    Variable(
        "line_value",
        ("event", "line", "layer"),
        "float64",
        NAN,
        "1",
        "the extra line's value per layer at the event",
        when="lines",
    ),
    Variable(
        "line_eligible",
        ("event", "line", "layer"),
        "int64",
        -1,
        "1",
        "survivors at or above the extra line at the event",
        when="lines",
    ),
    Variable(
        "line_shed_count",
        _LINE_DIMS,
        "int32",
        -1,
        "1",
        f"eligible survivors below the line after the step, {_LINE}",
        when="lines",
        chunks="step",
    ),
    Variable(
        "line_shed_events",
        _LINE_DIMS,
        "int32",
        -1,
        "1",
        f"crossings below the line during the step, {_LINE}",
        when="lines",
        chunks="step",
    ),
    Variable(
        "line_recover_events",
        _LINE_DIMS,
        "int32",
        -1,
        "1",
        f"crossings back above the line during the step, {_LINE}",
        when="lines",
        chunks="step",
    ),
)

# every array a store can hold, in the order a store creates them
VARIABLES: tuple[Variable, ...] = (
    _COORDINATES + _PER_STEP_AND_EVENT + _PER_EPOCH + _SNAPSHOTS + _LINES
)
BY_NAME: dict[str, Variable] = {v.name: v for v in VARIABLES}

# the root group's attributes: name, when it is set, what it holds
GROUP_ATTRIBUTES: tuple[tuple[str, str, str], ...] = (
    ("format", "creation", '"shedding-run"'),
    ("format_version", "creation", "the store format's version"),
    ("coordinates", "creation", "the non-index coordinates, space-separated (CF)"),
    ("codec_choice", "creation", "how the snapshots are chunked and compressed, in words"),
    ("config", "creation", "the run's full configuration (built-in runs only)"),
    (
        "condition",
        "creation",
        "the name of the condition the run is a seed of; analyze groups runs by it (built-in "
        "runs: method, sparsity, schedule, retraining technique, alpha)",
    ),
    ("seed", "creation", "the run's seed; a pruned run's control is one of the same seed"),
    (
        "setting",
        "creation",
        "a watched run's training setting, as its user names it (absent or null: any); a control "
        "matches runs of the same one, and a condition's runs share it (built-in runs: their "
        "configuration says it)",
    ),
    (
        "control",
        "creation",
        "true for a control: a run whose events prune nothing and only count the GMP line "
        "(built-in runs: prune method none; null until a watched run's first event)",
    ),
    (
        "line_sparsity",
        "creation",
        "the sparsity whose GMP cut value, times alpha, is the first event's line; a control "
        "matches runs of the same one (null: unknown; a watched run sets it at its first event)",
    ),
    ("versions", "creation", "python, torch, numpy, zarr, xarray and shedding versions"),
    ("device", "creation", "the device it trained on"),
    ("world_size", "creation", "torchrun processes that trained it (1 without torchrun)"),
    ("iterations_per_epoch", "creation", "steps in an epoch"),
    ("T", "creation", "steps of the original training"),
    ("t", "creation", "steps of a full retraining round"),
    ("rounds", "creation", "retraining rounds (a cascade-aware run may cut it when it ends early)"),
    ("schedule", "creation", "pruning schedule (oneshot for the control)"),
    ("method", "creation", "pruning method"),
    ("technique", "creation", "retraining technique"),
    ("alpha", "creation", "the shed line's factor alpha"),
    ("dataset", "creation", "the data set"),
    ("model", "creation", "the model"),
    ("shed_definition", "creation", "what a shed weight is, in words"),
    ("created", "creation", "local time the store was created"),
    ("status", "always", "running, complete, interrupted or failed"),
    ("last_committed_step", "each flush", "every step up to it is on disk (null: none yet)"),
    (
        "committed_rows",
        "each flush",
        "the rows of each timeline dimension on disk, by dimension; rows past them, up to the "
        "end of their chunk, hold fill values (at close: the dimensions' sizes)",
    ),
    (
        "mask_file_digest",
        "creation",
        "--prune-method file: the SHA-256 of the masks file's masks (names, shapes, values); a "
        "resume refuses a file that no longer holds them",
    ),
    ("recorded_by", "creation", '"shedding.watch" for a watched run (absent: the trainer)'),
    ("schedule_offset", "first event", "where retraining's LR trace starts in the original one"),
    ("resumed", "resume", "local time of the last resume"),
    ("error", "failure", "the error that stopped the run, one line (null after a resume)"),
    ("final_test_accuracy", "completion", "test accuracy of the retrained network"),
    ("seconds", "close", "wall-clock seconds of the run (of the last resume)"),
    ("finished", "close", "local time the store was closed"),
    ("writer_wait_seconds", "close", "seconds training waited on the store writer"),
    ("recorder_flush_seconds", "close", "seconds the store writer was busy"),
    ("watch_step_seconds", "close", "a watched run: seconds spent recording its steps"),
)


def profile(
    magnitude_dtype: str, snapshots: bool, hist: bool, samples: bool, lines: bool
) -> frozenset[str]:
    """The :data:`WHEN` keys a store has: snapshots (in ``magnitude_dtype``), histograms, sampled
    weights, extra lines."""
    flags = {"always"}
    if snapshots:
        flags |= {"snapshots", "log8" if magnitude_dtype == "log8" else "float"}
    flags |= {k for k, on in (("hist", hist), ("samples", samples), ("lines", lines)) if on}
    return frozenset(flags)


def present(flags: Iterable[str]) -> list[Variable]:
    """The variables of a store with profile ``flags``, in creation order."""
    flags = set(flags)
    return [v for v in VARIABLES if v.when in flags]
