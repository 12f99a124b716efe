"""Shed lines for analysis: :class:`shedding.lines.Line` plus reading a run store (see that module
for kinds)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from shedding.lines import KINDS
from shedding.lines import Line as _Line

__all__ = ["KINDS", "Line", "parse_lines"]


class Line(_Line):
    """A shed line that can resolve its per-layer values from a run store."""

    def is_recorded(self, ds: xr.Dataset) -> bool:
        """True when this is the run's main line, counted on the device every step (gmp at the run's
        alpha)."""
        return self.kind == "gmp" and np.isclose(self.value, float(ds.attrs.get("alpha", 1.0)))

    def recorded_index(self, ds: xr.Dataset) -> int | None:
        """Position of this line among the extra lines the recorder counted every step, if it is
        one."""
        if "line" not in ds.coords:
            return None
        labels = [str(v) for v in ds.line.values]
        return labels.index(self.label) if self.label in labels else None

    def values(self, ds: xr.Dataset, event: int = 0) -> np.ndarray:
        """The line of each layer (shape: n_layers) at ``event``; std and next read the event's
        magnitudes."""
        idx = self.recorded_index(ds)
        if idx is not None:
            return np.asarray(ds.line_value.isel(event=event, line=idx).values, dtype=float)
        tau = float(ds.event_tau.isel(event=event))
        if self.kind in ("gmp", "abs"):
            return self.layer_values(
                np.zeros(0), np.zeros(0), [], [0] * ds.sizes["layer"], tau, 0.0
            )
        if "magnitude" not in ds:
            raise ValueError(
                f"line {self.label} needs magnitude snapshots, which this run lacks "
                "(or record it with --record-lines)"
            )
        start = np.asarray(
            ds.magnitude.sel(record_step=int(ds.event_step.isel(event=event))).values
        )
        mask = np.asarray(ds["mask"].isel(event=event).values).astype(bool)
        return self.layer_values(
            start,
            mask,
            [int(s) for s in ds.layer_start.values],
            [int(n) for n in ds.layer_size.values],
            tau,
            float(ds.event_sparsity.isel(event=event)),
        )


def parse_lines(texts: list[str] | tuple[str, ...]) -> list[Line]:
    """Parse several line definitions."""
    return [Line.parse(t) for t in texts]
