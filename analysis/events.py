"""Prune events by position: the one check that an event asked for is one the run has."""

from __future__ import annotations

from pathlib import Path

import xarray as xr


def event_index(ds: xr.Dataset, event: int) -> int:
    """``event`` as a position 0..n-1 among the run's n prune events (negative counts from the last:
    -1 is the
    last); ValueError (one line, naming the run and the valid range) when the run has no such
    event."""
    n = int(ds.sizes.get("event", 0))
    event = int(event)
    if not -n <= event < n:
        name = Path(str(ds.attrs.get("path", "the run"))).name.removesuffix(".zarr")
        valid = f"0 to {n - 1}, or -{n} to -1 from the last" if n else "none"
        raise ValueError(
            f"event {event} is out of range: {name} has {n} prune event{'s' * (n != 1)} "
            f"(valid: {valid})"
        )
    return event % n
