"""TEMPORARY in-process stand-in for the grid runner (the real one, with dask, replaces these files at merge).

Interface only: ``run_grid``, ``RunOutcome``, ``run_path``, ``run_name``.
"""

from shedding.grid.provenance import run_name, run_path
from shedding.grid.runner import RunOutcome, run_grid

__all__ = ["RunOutcome", "run_grid", "run_name", "run_path"]
