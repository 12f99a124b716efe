"""The ``log8`` magnitude encoding: one byte per weight per snapshot, log-quantised per layer and snapshot.

For each snapshot and layer, ``top`` = log2 of the layer's largest |w| (stored as ``magnitude_top``). A
non-zero magnitude x is coded ``q = clip(254 - round((top - log2 x) / STEP), 1, 254)`` and decoded
``2 ** (top - (254 - q) * STEP)``, with ``STEP = 2 * log2(1.01)``. The error bound (the README states it):

* zero is code 0 and decodes to exactly 0;
* a magnitude within ``FLOOR_RATIO`` (about 1/154) of its layer's largest decodes within 1% relative error
  (plus float32 rounding of log2: below 1e-6 for weights between 1e-10 and 1e3, below 2e-5 up to 1e+-30);
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


@torch.no_grad()
def encode_log8(magnitude: torch.Tensor, layer_ids: torch.Tensor, n_layers: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(codes uint8 per weight, top float32 per layer) of flat magnitudes, computed where they are (CPU or GPU)."""
    mag = magnitude.float()
    finite = torch.isfinite(mag)
    nonzero = (mag > 0) & finite
    logs = torch.full_like(mag, -math.inf)
    logs[nonzero] = torch.log2(mag[nonzero])
    top = torch.full((n_layers,), -math.inf, device=mag.device).scatter_reduce(
        0, layer_ids, logs, reduce="amax", include_self=True)
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))  # an all-zero layer: any top will do
    below_top = (top[layer_ids] - logs) / STEP
    q = (LEVELS - torch.round(below_top)).clamp_(1, LEVELS)
    codes = torch.where(nonzero, q, torch.zeros_like(q))
    codes = torch.where(finite, codes, torch.full_like(q, MISSING))
    return codes.to(torch.uint8), top


def decode_log8(codes: np.ndarray, top: np.ndarray, layer_of_weight: np.ndarray) -> np.ndarray:
    """Magnitudes (float32) from codes (..., weight) and tops (..., layer); NaN where not written."""
    codes = np.asarray(codes)
    top_w = np.take(np.asarray(top, dtype=np.float64), np.asarray(layer_of_weight), axis=-1)
    out = np.exp2(top_w - (LEVELS - codes.astype(np.float64)) * STEP)
    out = np.where(codes == 0, 0.0, out)
    out = np.where(codes == MISSING, np.nan, out)
    return out.astype(np.float32)
