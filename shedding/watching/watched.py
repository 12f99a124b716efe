"""Which weights a watched model has, and how to read them now.

By default a model's prunable weights are the ``weight`` of every ``Conv1d/2d/3d`` and ``Linear``
module and of the transformers library's ``Conv1D``. A weight that ``torch.nn.utils.prune`` has
reparametrised is read as ``weight_orig * weight_mask`` each time (its ``weight`` attribute is
recomputed only at the next forward pass, and ``weight_orig`` alone keeps values at pruned
entries).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

PRUNABLE_TYPES = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.Linear)


class WatchError(ValueError):
    """Bad input to ``shedding.watch``; the message is one line naming the problem."""


@dataclass
class Watched:
    """One watched weight: its name (``layer.weight``), module and attribute."""

    name: str
    module: torch.nn.Module
    attr: str

    @property
    def reparametrised(self) -> bool:
        """Whether ``torch.nn.utils.prune`` holds this weight as ``*_orig`` and ``*_mask``."""
        return hasattr(self.module, self.attr + "_orig")

    def original(self) -> torch.Tensor:
        """The stored values: ``*_orig`` when reparametrised, else the parameter itself."""
        if self.reparametrised:
            return getattr(self.module, self.attr + "_orig")
        return getattr(self.module, self.attr)

    def torch_mask(self) -> torch.Tensor | None:
        """``torch.nn.utils.prune``'s mask buffer, if any."""
        return getattr(self.module, self.attr + "_mask", None)

    def read(self) -> torch.Tensor:
        """The weight as the model uses it now (``orig * mask`` when reparametrised)."""
        if self.reparametrised:
            return getattr(self.module, self.attr + "_orig") * getattr(
                self.module, self.attr + "_mask"
            )
        return getattr(self.module, self.attr)


def _is_default(module: torch.nn.Module) -> bool:
    if isinstance(module, PRUNABLE_TYPES):
        return True
    weight = getattr(module, "weight", None)
    return type(module).__name__ == "Conv1D" and torch.is_tensor(weight) and weight.dim() == 2


def watched_weights(model: torch.nn.Module, params: list[str] | str | None = None) -> list[Watched]:
    """The model's watched weights in model order: the default prunable ones, the names in
    ``params`` (``layer.weight``; ``*_orig`` names are accepted too) or those whose name matches
    the regular expression ``params``."""
    found: list[Watched] = []
    for mod_name, module in model.named_modules():
        names = {n.removesuffix("_orig") for n, _ in module.named_parameters(recurse=False)}
        for attr in sorted(names, key=lambda n: n != "weight"):
            full = f"{mod_name}.{attr}" if mod_name else attr
            found.append(Watched(full, module, attr))
    if params is None:
        chosen = [w for w in found if w.attr == "weight" and _is_default(w.module)]
    elif isinstance(params, str):
        try:
            pattern = re.compile(params)
        except re.error as e:
            raise WatchError(f"params={params!r} is not a regular expression: {e}") from None
        chosen = [w for w in found if pattern.search(w.name)]
    else:
        by_name = {w.name: w for w in found}
        wanted = [p.removesuffix("_orig") for p in params]
        unknown = [p for p in wanted if p not in by_name]
        if unknown:
            raise WatchError(f"the model has no parameter {unknown[0]!r} (params=)")
        chosen = [w for w in found if w.name in set(wanted)]  # in model order
    if not chosen:
        what = "matching params=" if params is not None else "Conv, Linear or Conv1D weight"
        raise WatchError(f"the model has no {what} to watch; pass params=[names] or a regex")
    return chosen
