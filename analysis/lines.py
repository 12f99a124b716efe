"""Shed lines (SCIENCE.md section 4): where a surviving weight counts as shed, per layer, at a prune event.

A line is written ``kind:value``:

* ``gmp:A``   A * tau, tau the GMP cut value at the event's sparsity (the recorded line uses the run's alpha);
* ``std:C``   C * the layer's standard deviation at the event, taken as the root mean square of its surviving
  weights (the stores keep |w|, not the sign; for zero-mean weights the two are equal);
* ``abs:V``   the absolute value V;
* ``next:D``  the weights GMP would remove next: the GMP cut value at sparsity (event sparsity + D), computed
  from the magnitudes at the event.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

KINDS = ("gmp", "std", "abs", "next")


@dataclass(frozen=True)
class Line:
    """One line definition; :meth:`values` resolves it to one value per layer for an event."""

    kind: str
    value: float

    @classmethod
    def parse(cls, text: str) -> Line:
        """Parse ``'gmp:1.0'``, ``'std:0.5'``, ``'abs:1e-3'`` or ``'next:0.1'``."""
        kind, _, value = str(text).partition(":")
        if kind not in KINDS or not value:
            raise ValueError(f"bad line {text!r}: expected one of {', '.join(k + ':X' for k in KINDS)}")
        try:
            v = float(value)
        except ValueError:
            raise ValueError(f"bad line {text!r}: {value!r} is not a number") from None
        if not v > 0 and kind != "next":
            raise ValueError(f"bad line {text!r}: the value must be positive")
        if kind == "next" and not 0 < v < 1:
            raise ValueError(f"bad line {text!r}: next:D needs 0 < D < 1")
        return cls(kind, v)

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.value:g}"

    def is_recorded(self, ds: xr.Dataset) -> bool:
        """True when this is the line the recorder counted on the device (every step, no magnitudes needed)."""
        return self.kind == "gmp" and np.isclose(self.value, float(ds.attrs.get("alpha", 1.0)))

    def values(self, ds: xr.Dataset, event: int = 0) -> np.ndarray:
        """The line of each layer (shape: n_layers) at ``event``; reads magnitudes for std and next."""
        n_layers = ds.sizes["layer"]
        if self.kind == "gmp":
            return np.full(n_layers, self.value * float(ds.event_tau.isel(event=event)))
        if self.kind == "abs":
            return np.full(n_layers, self.value)
        if "magnitude" not in ds:
            raise ValueError(f"line {self.label} needs magnitude snapshots, which this run lacks")
        start = np.asarray(ds.magnitude.sel(record_step=int(ds.event_step.isel(event=event))).values, dtype=np.float64)
        mask = np.asarray(ds["mask"].isel(event=event).values).astype(bool)
        if self.kind == "std":
            out = []
            for s, n in zip(ds.layer_start.values, ds.layer_size.values, strict=True):
                w = start[int(s):int(s + n)][mask[int(s):int(s + n)]]
                out.append(self.value * float(np.sqrt(np.mean(w**2))) if w.size else np.nan)
            return np.asarray(out)
        # next: GMP cut at sparsity + D over the masked magnitudes at the event
        scores = np.sort(start * mask)
        target = min(float(ds.event_sparsity.isel(event=event)) + self.value, 1.0)
        k = int(round(target * scores.size))
        k = min(max(k, 1), scores.size - 1)
        return np.full(n_layers, (scores[k - 1] + scores[k]) / 2.0)


def parse_lines(texts: list[str] | tuple[str, ...]) -> list[Line]:
    """Parse several line definitions."""
    return [Line.parse(t) for t in texts]
