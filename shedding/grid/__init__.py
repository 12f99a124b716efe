"""Study grids: runs named by their configuration's hash, run as tasks on dask.distributed.

:func:`run_grid` brings a list of configurations to complete stores (skipping complete runs,
resuming interrupted ones, retrying failures); :func:`ensure_run` does the same for one run in this
process.
"""

from shedding.grid.provenance import RunOutcome, ensure_run, run_name, run_path
from shedding.grid.runner import check_grid_options, run_grid

__all__ = [
    "RunOutcome",
    "check_grid_options",
    "ensure_run",
    "run_grid",
    "run_name",
    "run_path",
]
