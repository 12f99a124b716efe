"""Retraining-technique registry (Renda et al.; docs/science.md#retraining). One module per
technique.

A technique turns a :class:`RetrainContext` into a :class:`RetrainPlan`: the weights to start the
round from (before the mask is applied) and the learning rate for each of the round's steps. The
mask is always computed from the weights the round prunes (theta_T in round 0); momentum always
starts empty.
"""

from shedding.retraining.techniques import (
    TECHNIQUES,
    RetrainContext,
    RetrainPlan,
    Technique,
    StateDict,
)

from shedding.retraining import finetune
from shedding.retraining import lr_rewind
from shedding.retraining import reinit
from shedding.retraining import weight_rewind
