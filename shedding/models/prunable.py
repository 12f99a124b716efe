"""Which tensors of a model are prunable: Conv and Linear weights, minus the named dense layers."""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn

PRUNABLE_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def prunable_parameters(
    model: nn.Module, dense_layers: Iterable[str] = ()
) -> dict[str, nn.Parameter]:
    """Ordered ``{parameter name: weight}`` of every Conv/Linear weight not listed in
    ``dense_layers``.

    ``dense_layers`` holds parameter names (``'fc.weight'``) or module names (``'fc'``); the model's
    own ``default_dense_layers`` attribute is added to it.
    """
    dense = set(dense_layers) | set(getattr(model, "default_dense_layers", ()))
    out: dict[str, nn.Parameter] = {}
    for mod_name, mod in model.named_modules():
        if isinstance(mod, PRUNABLE_TYPES):
            pname = f"{mod_name}.weight" if mod_name else "weight"
            if pname in dense or mod_name in dense:
                continue
            out[pname] = mod.weight
    return out


def all_prunable_names(model: nn.Module) -> list[str]:
    """Names of every Conv/Linear weight, ignoring dense settings (used to validate
    ``dense_layers``)."""
    return [
        f"{n}.weight" if n else "weight"
        for n, m in model.named_modules()
        if isinstance(m, PRUNABLE_TYPES)
    ]
