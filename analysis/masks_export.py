"""A prune event's masks as ``{parameter name: mask array of the parameter's shape}``: what
``shedding export-mask`` saves for ``torch.nn.utils.prune.custom_from_mask`` and for
``--prune-method file``.

Pure over a run opened by :func:`shedding.analysis.io.open_run`: the flat ``mask`` row of the event
is cut into layers by ``layer_start`` and ``layer_size`` and each piece reshaped to ``layer_shape``
(the flat order of a layer is its tensor's row-major order).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from shedding.analysis.events import event_index


def _shape(text: object) -> tuple[int, ...]:
    """A ``layer_shape`` label such as ``32x1x3x3`` as a tuple."""
    return tuple(int(d) for d in str(text).split("x") if d)


def event_masks(ds: xr.Dataset, event: int = -1) -> dict[str, np.ndarray]:
    """Bool masks (True = kept) of every prunable tensor after ``event`` (negative: from the last),
    in model order; ValueError (one line) when the run has no such event or did not record it."""
    i = event_index(ds, event)
    sparsity = float(ds["event_sparsity"].values[i])
    if not np.isfinite(sparsity):
        raise ValueError(
            f"event {event} of {ds.attrs.get('path', 'the run')} was never recorded (the run "
            "stopped before it)"
        )
    flat = np.asarray(ds["mask"].isel(event=i).values).astype(bool)
    out = {}
    for name, start, size, shape in zip(
        ds.layer.values,
        ds.layer_start.values,
        ds.layer_size.values,
        ds.layer_shape.values,
        strict=True,
    ):
        dims = _shape(shape)
        piece = flat[int(start) : int(start) + int(size)]
        if int(np.prod(dims)) != piece.size:
            raise ValueError(f"layer {name}: shape {shape} does not hold its {piece.size} weights")
        out[str(name)] = piece.reshape(dims)
    return out
