"""The study registry (see :mod:`shedding.studies`)."""

from __future__ import annotations

from shedding.registry import Registry
from shedding.studies.study_base import Study

STUDIES: Registry[Study] = Registry("study")
