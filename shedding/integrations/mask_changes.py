"""Noticing that ``torch.nn.utils.prune`` changed the masks of watched weights.

Pruning with ``torch.nn.utils.prune`` (directly, through Lightning's ``ModelPruning`` or through
``custom_from_mask``) registers a new ``*_mask`` buffer on the module each time it prunes, and an
in-place edit of a buffer bumps the tensor's version counter. A cheap signature, the identity and
version of each watched weight's buffer, therefore changes whenever a mask may have changed; only
then are the masks compared, so checking at every training step costs a few attribute reads.

Only buffers count: a weight that never had one is taken as unpruned whatever its values (layers
initialised at zero are common), and one whose buffer went away (``prune.remove``, Lightning's
``make_pruning_permanent``) keeps its mask as the pattern of its exact zeros. A weight zeroed by
hand, without ``torch.nn.utils.prune``, is therefore not noticed: record such an event with an
explicit ``prune_event()``.
"""

from __future__ import annotations

import torch

from shedding.watching.watched import Watched

Signature = tuple[tuple[int, int] | None, ...]


def mask_signature(weights: list[Watched]) -> Signature:
    """Per weight: the identity and version counter of its ``*_mask`` buffer (None without one)."""
    out: list[tuple[int, int] | None] = []
    for w in weights:
        buffer = w.torch_mask()
        out.append(None if buffer is None else (id(buffer), buffer._version))
    return tuple(out)


class MaskTracker:
    """The watched weights' masks as of the last :meth:`reset` (at first: nothing pruned, as a
    new watch takes it), and whether they changed since."""

    def __init__(self, weights: list[Watched]) -> None:
        self._weights = weights
        self._signature: Signature = tuple(None for _ in weights)
        self._masks: dict[str, torch.Tensor | None] = {w.name: None for w in weights}

    def _now(self) -> dict[str, torch.Tensor | None]:
        """Each weight's mask now: from its buffer; from its exact zeros where a buffer was seen
        before and is gone; None (nothing pruned) for a weight that never had one."""
        out: dict[str, torch.Tensor | None] = {}
        for w in self._weights:
            buffer = w.torch_mask()
            if buffer is not None:
                out[w.name] = buffer.detach() != 0
            elif self._masks[w.name] is not None:
                out[w.name] = w.read().detach() != 0
            else:
                out[w.name] = None
        return out

    def reset(self) -> None:
        """Take the current masks as the reference (after a recorded prune event)."""
        self._signature = mask_signature(self._weights)
        self._masks = {k: None if m is None else m.clone() for k, m in self._now().items()}

    def changed(self) -> bool:
        """Whether any mask differs from the reference. A new buffer with the same content (a
        move to another device, ``prune.remove``, ``make_pruning_permanent``) is no change."""
        signature = mask_signature(self._weights)
        if signature == self._signature:
            return False
        self._signature = signature
        for name, now in self._now().items():
            ref = self._masks[name]
            if now is None:
                continue
            same = bool(now.all()) if ref is None else torch.equal(now, ref)
            if not same:
                return True
        return False
