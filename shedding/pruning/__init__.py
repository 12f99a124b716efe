"""Pruning-method registry. A new method is one module here plus its import line below.

A pruning method is a function ``(weights, masks, sparsity, cfg, generator) -> masks``:
``weights`` and ``masks`` are ordered ``{name: tensor}`` dicts over the prunable tensors,
``sparsity`` is the *overall* fraction of prunable weights that must be zero in the returned masks
(weights that are already pruned stay pruned and count towards it; a target below the current
sparsity prunes nothing more and revives nothing), ``cfg`` is the
:class:`~shedding.config.PruneConfig`.
"""

from shedding.pruning.pruners import PRUNERS, Masks, PruneFn

from shedding.pruning import block
from shedding.pruning import channel
from shedding.pruning import magnitude
from shedding.pruning import mask_file
from shedding.pruning import nm
from shedding.pruning import none
from shedding.pruning import random
