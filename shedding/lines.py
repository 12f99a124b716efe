"""Shed lines (docs/science.md#shedding), shared by the recorder (device counts) and the analysis
(recounts).

A line is written ``kind:value``:

* ``gmp:A``   A * tau, tau the GMP cut value at the event's sparsity;
* ``std:C``   C * the layer's standard deviation at the event, taken as the root mean square of its
  surviving weights (the stores keep |w|, not the sign; for zero-mean weights the two are equal);
* ``abs:V``   the absolute value V;
* ``next:D``  the weights GMP would remove next: the GMP cut value at sparsity (event sparsity + D),
  computed from the magnitudes at the event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

KINDS = ("gmp", "std", "abs", "next")


@dataclass(frozen=True)
class Line:
    """One line definition."""

    kind: str
    value: float

    @classmethod
    def parse(cls, text: str) -> Line:
        """Parse ``'gmp:1.0'``, ``'std:0.5'``, ``'abs:1e-3'`` or ``'next:0.1'``; ValueError
        otherwise."""
        kind, _, value = str(text).partition(":")
        if kind not in KINDS or not value:
            raise ValueError(
                f"bad line {text!r}: expected one of {', '.join(k + ':X' for k in KINDS)}"
            )
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

    def layer_values(
        self,
        magnitude: Any,
        mask: Any,
        starts: list[int],
        sizes: list[int],
        tau: float,
        sparsity: float,
    ) -> np.ndarray:
        """The line of each layer from the flat magnitudes and mask at an event (numpy or torch, any
        device)."""
        n_layers = len(sizes)
        if self.kind == "gmp":
            return np.full(n_layers, self.value * tau)
        if self.kind == "abs":
            return np.full(n_layers, self.value)
        import torch  # here, so that analysis can import the line definitions without torch

        mag = torch.as_tensor(magnitude).double()
        keep = torch.as_tensor(mask).to(mag.device).bool()
        if self.kind == "std":
            out = []
            for s, n in zip(starts, sizes, strict=True):
                w = mag[s : s + n][keep[s : s + n]]
                out.append(
                    self.value * float(torch.sqrt(torch.mean(w**2))) if w.numel() else np.nan
                )
            return np.asarray(out)
        scores = torch.sort((mag * keep).reshape(-1)).values  # next: GMP cut at sparsity + D
        k = int(round(min(sparsity + self.value, 1.0) * scores.numel()))
        k = min(max(k, 1), scores.numel() - 1)
        return np.full(n_layers, float((scores[k - 1] + scores[k]) / 2.0))


def parse_lines(texts: list[str] | tuple[str, ...]) -> list[Line]:
    """Parse several line definitions."""
    return [Line.parse(t) for t in texts]
