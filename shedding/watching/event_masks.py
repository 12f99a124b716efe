"""A watched prune event's masks: from ``torch.nn.utils.prune``'s buffers, a dict (or a file of
one, as ``shedding export-mask`` writes), or the exact zeros of the weights; checked against the
previous event's masks."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.nn.utils import prune

from shedding.watching.watched import Watched, WatchError

Masks = dict[str, torch.Tensor]


def load_masks(masks: Masks | str | Path) -> Masks:
    """A dict of masks, or the one a ``torch.save`` file holds."""
    if isinstance(masks, (str, Path)):
        try:
            loaded = torch.load(masks, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, ValueError) as e:
            raise WatchError(f"{masks}: not a masks file ({type(e).__name__})") from None
        if not isinstance(loaded, dict):
            raise WatchError(f"{masks}: not a dict of masks")
        return loaded
    return dict(masks)


def apply_given(weights: list[Watched], given: Masks) -> None:
    """Prune the weights of ``given`` with ``torch.nn.utils.prune.custom_from_mask``, which then
    keeps them pruned; names are ``layer.weight``."""
    by_name = {w.name: w for w in weights}
    for name, mask in given.items():
        w = by_name.get(name.removesuffix("_orig"))
        if w is None:
            raise WatchError(f"a mask for {name!r}, which is not a watched weight")
        shape = tuple(w.original().shape)
        if tuple(mask.shape) != shape:
            raise WatchError(
                f"the mask of {name} has shape {tuple(mask.shape)}, the weight {shape}"
            )
    for name, mask in given.items():
        w = by_name[name.removesuffix("_orig")]
        device = w.original().device
        prune.custom_from_mask(w.module, w.attr, mask.to(device).bool())


def current_masks(weights: list[Watched], previous: Masks) -> Masks:
    """Each weight's mask now: its ``*_mask`` buffer where ``torch.nn.utils.prune`` made one; where
    it made one for some weights only, the others keep their ``previous`` masks (a weight that
    starts at zero is not pruned); where it made none, the weights' non-zero entries (bool)."""
    buffers = {w.name: w.torch_mask() for w in weights}
    any_buffer = any(b is not None for b in buffers.values())
    out: Masks = {}
    for w in weights:
        buffer = buffers[w.name]
        if buffer is not None:
            out[w.name] = buffer != 0
        elif any_buffer:
            out[w.name] = previous[w.name]
        else:
            out[w.name] = w.read().detach() != 0
    return out


def check_no_revival(previous: Masks, new: Masks) -> None:
    """Refuse masks that bring back a weight an earlier event pruned."""
    for name, old in previous.items():
        revived = int((~old & new[name]).sum())
        if revived:
            raise WatchError(
                f"this prune event would revive {revived} weight(s) of {name} that an earlier "
                "event pruned; masks can only remove weights"
            )
