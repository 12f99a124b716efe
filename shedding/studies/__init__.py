"""Study registry: each study is one module here plus its import line below.

A study is a grid of record runs ending in one report (``shedding study NAME``); see :mod:`shedding.studies.base`.
"""

from __future__ import annotations

from shedding.registry import Registry
from shedding.studies.base import GridRun, Study

STUDIES: Registry[Study] = Registry("study")

from shedding.studies import rewinding
from shedding.studies import blocks
from shedding.studies import cascade
