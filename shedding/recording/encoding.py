"""The ``log8`` magnitude encoding: one byte per weight per snapshot, log-quantised per layer and
snapshot.

For each snapshot and layer, ``top`` = log2 of the layer's largest |w| (stored as
``magnitude_top``). A non-zero magnitude x is coded ``q = clip(254 - round((top - log2 x) / STEP),
1, 254)`` and decoded ``2 ** (top - (254 - q) * STEP)``, with ``STEP = 2 * log2(1.01)``. The error
bound (docs/recording.md states it):

* zero is code 0 and decodes to exactly 0;
* a magnitude within ``FLOOR_RATIO`` (about 1/154) of its layer's largest decodes within 1% relative
  error (plus float32 rounding of log2: below 1e-6 for weights between 1e-10 and 1e3, below 2e-5 up
  to 1e+-30);
* a smaller one decodes to the floor, so its absolute error is at most ``top_value * FLOOR_RATIO``;
* code 255 means "not written" (or a non-finite weight) and decodes to NaN.
"""

from __future__ import annotations

import math

import numpy as np
import torch

STEP = 2.0 * math.log2(1.01)  # half a step in log2 = 1% relative error
LEVELS = 254  # codes 1..254 are magnitudes; 0 is zero; 255 is missing
FLOOR_RATIO = 2.0 ** (-(LEVELS - 1) * STEP)  # smallest coded magnitude / the layer's largest
RELATIVE_ERROR = 2.0 ** (STEP / 2) - 1.0  # 0.01
MISSING = 255
SMALLEST_NORMAL = 2.0**-126  # float32: below it values are spaced 2**-149 apart


def _codes(
    mag: torch.Tensor, top_w: torch.Tensor, layer_top: torch.Tensor, out: torch.Tensor
) -> torch.Tensor:
    """Codes (as float32, in ``out``) of magnitudes ``mag`` given each weight's ``top`` (and every
    layer's); in place, with no boolean indexing (it would sync on CUDA) and no masked fills (slow
    on the CPU).

    ``log2`` sees no zeros: the CPU's log2 takes a slow path for 0, which a pruned model is half
    made of (it tripled the encoding's time). Magnitudes are first raised to ``floor``, a step below
    the smallest code of every layer, which changes no code (what lies below it is code 1 anyway);
    zeros are then multiplied to 0.
    For a finite magnitude ``round((top - log2 x) / STEP) >= 0`` (x is at most its layer's top), so
    the codes stay within 1..254 and only +inf and NaN magnitudes reach the non-finite values turned
    into ``MISSING``.
    """
    if layer_top.numel() == 0:
        return out  # no layers, no weights
    floor = torch.exp2(layer_top.min() - (LEVELS + 1) * STEP)
    # a denormal floor can round up by a factor of 2 (35 steps) and lift small magnitudes above code
    # 1: none then
    floor = torch.where(floor < SMALLEST_NORMAL, 0.0, floor)
    logs = torch.log2(torch.clamp(mag, min=floor, out=out), out=out)
    torch.sub(top_w, logs, out=out).div_(STEP).round_()
    out.neg_().add_(LEVELS).clamp_(min=1)  # LEVELS - steps below the top, exactly
    out.mul_(torch.gt(mag, 0))  # zeros (and negatives) to 0; NaN stays NaN
    return out.nan_to_num_(nan=MISSING, posinf=MISSING)


def _top(layer_max: torch.Tensor) -> torch.Tensor:
    """log2 of each layer's largest finite |w|; 0 for a layer of zeros (any top will do)."""
    top = torch.log2(layer_max)
    return torch.where(torch.isfinite(top), top, torch.zeros_like(top))


@torch.no_grad()
def encode_log8(
    magnitude: torch.Tensor, layer_ids: torch.Tensor, n_layers: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(codes uint8 per weight, top float32 per layer) of flat magnitudes, computed where they are
    (CPU or GPU).

    ``magnitude`` holds magnitudes (>= 0; +inf and NaN code as missing, anything negative as 0).
    ``layer_ids`` may come in any order; :class:`Log8Encoder` is the recorder's faster form for
    layer-ordered weights.
    """
    mag = magnitude.float()
    finite = torch.nan_to_num(mag, nan=0.0, posinf=0.0, neginf=0.0)
    layer_max = torch.zeros(n_layers, device=mag.device).scatter_reduce(
        0, layer_ids, finite, reduce="amax"
    )
    top = _top(layer_max)
    return _codes(mag, top[layer_ids], top, torch.empty_like(mag)).to(torch.uint8), top


class Log8Encoder:
    """:func:`encode_log8` for a flat vector of contiguous layers of ``sizes``, with buffers reused
    every snapshot.

    The codes it returns live in its buffer until the next call: copy them before handing them on.
    """

    def __init__(self, sizes: list[int], layer_ids: torch.Tensor) -> None:
        """``layer_ids``: each weight's layer (int64, on the device), shared with the caller, not
        copied."""
        self.sizes = sizes
        self.layer_ids = layer_ids
        device = layer_ids.device
        n = sum(sizes)
        self._work = torch.empty(n, device=device)
        self._top_w = torch.empty(n, device=device)
        self._codes = torch.empty(n, dtype=torch.uint8, device=device)

    @torch.no_grad()
    def __call__(self, magnitude: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(codes uint8 per weight, top float32 per layer) of the flat float32 ``magnitude``."""
        finite = torch.nan_to_num(magnitude, nan=0.0, posinf=0.0, neginf=0.0, out=self._work)
        zero = finite.new_zeros(())
        layer_max = torch.stack([v.amax() if v.numel() else zero for v in finite.split(self.sizes)])
        top = _top(layer_max)
        torch.index_select(top, 0, self.layer_ids, out=self._top_w)
        return self._codes.copy_(_codes(magnitude, self._top_w, top, self._work)), top


def decode_log8(codes: np.ndarray, top: np.ndarray, layer_of_weight: np.ndarray) -> np.ndarray:
    """Magnitudes (float32) from codes (..., weight) and tops (..., layer); NaN where not
    written."""
    codes = np.asarray(codes)
    top_w = np.take(np.asarray(top, dtype=np.float64), np.asarray(layer_of_weight), axis=-1)
    out = np.exp2(top_w - (LEVELS - codes.astype(np.float64)) * STEP)
    out = np.where(codes == 0, 0.0, out)
    out = np.where(codes == MISSING, np.nan, out)
    return out.astype(np.float32)
