"""Masks from a file: ``--prune-method file --prune-mask-file masks.pt`` prunes with given masks.

The file is what ``shedding export-mask`` writes (and what ``torch.nn.utils.prune.custom_from_mask``
takes): a ``torch.save`` of ``{parameter name: mask}``, one mask per prunable tensor with that
tensor's shape, bool or numbers that are all 0 or 1 (1 = kept). The method's masks are the file's:
its names must be exactly the run's prunable tensors, its shapes theirs, and it must not revive a
weight that is already pruned. The target sparsity is not used to choose anything; the file's own
sparsity must equal it (to the weight), so the shed line is the GMP cut at the masks' sparsity.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from shedding.config import ConfigError, PruneConfig
from shedding.pruning.masks import Masks, target_count
from shedding.pruning.pruners import PRUNERS


def load_mask_file(path: str | Path) -> dict[str, torch.Tensor]:
    """The ``{name: bool mask}`` dict saved at ``path``; ValueError (one line) if it is not one."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p}: no such file" if not p.exists() else f"{p}: is not a file")
    try:
        data = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle, zip and torch errors alike
        message = " ".join(f"{type(e).__name__}: {e}".split())[:200]
        raise ValueError(f"{p}: not a mask file written by torch.save ({message})") from None
    if not isinstance(data, dict) or not data:
        raise ValueError(f"{p}: expected a non-empty {{parameter name: mask tensor}} dict")
    out = {}
    for name, mask in data.items():
        if not isinstance(name, str) or not isinstance(mask, torch.Tensor):
            raise ValueError(f"{p}: expected {{parameter name: mask tensor}}, found {name!r}")
        if mask.dtype != torch.bool:
            if mask.is_complex() or not bool(((mask == 0) | (mask == 1)).all()):
                raise ValueError(f"{p}: the mask of {name} holds values other than 0 and 1")
        out[name] = mask.bool()
    return out


def masks_digest(masks: dict[str, torch.Tensor]) -> str:
    """The SHA-256 of ``masks`` (names, shapes and values, in name order): what a run pruned with a
    masks file records, so that a resume can tell whether the file still holds the same masks."""
    h = hashlib.sha256()
    for name in sorted(masks):
        mask = masks[name].detach().to("cpu", torch.bool).contiguous()
        h.update(f"{name}:{tuple(mask.shape)};".encode())
        h.update(mask.numpy().tobytes())
    return h.hexdigest()


def check_layout(
    file_masks: dict[str, torch.Tensor], shapes: dict[str, tuple[int, ...]], source: str = "masks"
) -> None:
    """ValueError (one line) unless ``file_masks`` hold exactly the tensors of ``shapes`` (name:
    shape, in any order), each with its shape."""
    missing = [k for k in shapes if k not in file_masks]
    extra = [k for k in file_masks if k not in shapes]
    if missing or extra:
        parts = [f"no mask for {', '.join(missing)}"] if missing else []
        if extra:
            parts.append(f"masks for {', '.join(extra)}, not prunable tensors of this run")
        raise ValueError(f"{source}: {'; '.join(parts)} (prunable: {', '.join(shapes)})")
    for k, shape in shapes.items():
        if tuple(file_masks[k].shape) != tuple(shape):
            raise ValueError(
                f"{source}: the mask of {k} has shape {tuple(file_masks[k].shape)}, the "
                f"parameter {tuple(shape)}"
            )


def check_masks(
    file_masks: dict[str, torch.Tensor],
    weights: dict[str, torch.Tensor],
    masks: Masks,
    source: str = "masks",
) -> Masks:
    """``file_masks`` as masks of the run (dtype and device of ``masks``), after checking that they
    cover exactly the tensors of ``weights`` with their shapes (:func:`check_layout`) and revive no
    pruned weight."""
    check_layout(file_masks, {k: tuple(w.shape) for k, w in weights.items()}, source)
    out = {}
    for k in weights:
        m = file_masks[k].bool().to(masks[k].device)
        revived = int((m & ~(masks[k] > 0)).sum())
        if revived:
            raise ValueError(
                f"{source}: the mask of {k} revives {revived} weight{'s' * (revived != 1)} "
                "pruned before; a mask may only remove weights"
            )
        out[k] = m.to(masks[k].dtype)
    return out


def check_sparsity(file_masks: dict[str, torch.Tensor], sparsity: float, source: str) -> None:
    """ValueError unless the masks prune exactly round(sparsity * n) of their n weights."""
    n = sum(m.numel() for m in file_masks.values())
    zeros = sum(int((~m.bool()).sum()) for m in file_masks.values())
    if zeros != target_count(sparsity, n):
        raise ValueError(
            f"{source}: the masks prune {zeros} of {n} weights (sparsity {zeros / n!r}), not "
            f"round({sparsity:g} * {n}); give --prune-sparsity {zeros / n!r} so that the shed "
            "line is the GMP cut at the masks' sparsity"
        )


@PRUNERS.register("file")
def file_pruning(
    weights: dict[str, torch.Tensor],
    masks: Masks,
    sparsity: float,
    cfg: PruneConfig,
    generator: torch.Generator,
) -> Masks:
    """The masks of ``cfg.mask_file``, checked against the run's tensors, masks and ``sparsity``."""
    try:
        file_masks = load_mask_file(cfg.mask_file)
        out = check_masks(file_masks, weights, masks, cfg.mask_file)
        check_sparsity(file_masks, sparsity, cfg.mask_file)
        return out
    except ValueError as e:
        raise ConfigError(f"--prune-mask-file: {e}") from None
