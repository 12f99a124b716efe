"""Analysis of run stores: pure functions from xarray objects to xarray objects (``open_run``
aside).

Typical use::

    from shedding.analysis import open_run, shed_fraction, cascade_summary, compare_kept
    gmp, ctrl = open_run("runs/gmp.zarr"), open_run("runs/control.zarr")
    cascade_summary(gmp, ctrl)
"""

from shedding.analysis.cascade import cascade_summary
from shedding.analysis.distribution import magnitude_histogram
from shedding.analysis.io import open_run
from shedding.analysis.overlap import compare_kept, kept_set
from shedding.analysis.shed import amplification, shed_fraction, shed_from_magnitude

__all__ = [
    "amplification",
    "cascade_summary",
    "compare_kept",
    "kept_set",
    "magnitude_histogram",
    "open_run",
    "shed_fraction",
    "shed_from_magnitude",
]
