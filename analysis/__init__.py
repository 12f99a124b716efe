"""Analysis of run stores: pure functions from xarray objects to xarray objects (``open_run`` aside).

Typical use::

    from analysis import open_run, shed_fraction, cascade_summary, compare_kept
    gmp, ctrl = open_run("runs/gmp.zarr"), open_run("runs/control.zarr")
    cascade_summary(gmp, ctrl)
"""

from analysis.cascade import cascade_summary
from analysis.distribution import magnitude_histogram
from analysis.io import open_run
from analysis.overlap import compare_kept, kept_set
from analysis.shed import amplification, shed_fraction, shed_from_magnitude

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
