"""Which tensors of a model are prunable: Conv and Linear weights (and the 2-D weight of the
transformers library's ``Conv1D``, as in GPT-2), minus the named dense layers."""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn

PRUNABLE_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)

# Layers recognised by class name, so that their library need not be imported: transformers'
# ``Conv1D`` is a linear layer whose weight is stored transposed, (in_features, out_features).
PRUNABLE_CLASS_NAMES = ("Conv1D",)


def is_prunable(module: nn.Module) -> bool:
    """True when ``module``'s ``weight`` is prunable: a Conv/Linear layer, or a layer whose class
    is named in :data:`PRUNABLE_CLASS_NAMES` and holds a 2-D ``weight`` parameter."""
    if isinstance(module, PRUNABLE_TYPES):
        return True
    weight = getattr(module, "weight", None)
    return (
        type(module).__name__ in PRUNABLE_CLASS_NAMES
        and isinstance(weight, nn.Parameter)
        and weight.dim() == 2
    )


def prunable_parameters(
    model: nn.Module, dense_layers: Iterable[str] = ()
) -> dict[str, nn.Parameter]:
    """Ordered ``{parameter name: weight}`` of every prunable weight (:func:`is_prunable`) not
    listed in ``dense_layers``.

    ``dense_layers`` holds parameter names (``'fc.weight'``) or module names (``'fc'``); the model's
    own ``default_dense_layers`` attribute is added to it.
    """
    dense = set(dense_layers) | set(getattr(model, "default_dense_layers", ()))
    out: dict[str, nn.Parameter] = {}
    for mod_name, mod in model.named_modules():
        if is_prunable(mod):
            pname = f"{mod_name}.weight" if mod_name else "weight"
            if pname in dense or mod_name in dense:
                continue
            out[pname] = mod.weight
    return out


def all_prunable_names(model: nn.Module) -> list[str]:
    """Names of every prunable weight, ignoring dense settings (used to validate
    ``dense_layers``)."""
    return [f"{n}.weight" if n else "weight" for n, m in model.named_modules() if is_prunable(m)]
