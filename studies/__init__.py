"""Study registry: each study is one module here plus its import line below.

A study is a grid of record runs ending in one report (``shedding study NAME``); see
:mod:`shedding.studies.study_base`.
"""

from shedding.studies.study_base import GridRun, Study
from shedding.studies.study_registry import STUDIES

from shedding.studies import rewinding_grid
from shedding.studies import blocks_grid
from shedding.studies import cascade_grid
from shedding.studies import map_grid
