"""Counting reductions the recorder runs every step on the training device, without reading back to
the host.

``torch.bincount`` is the fastest way to count keys on the CPU, but on CUDA it reads ``keys.max()``
back to the host first: a device sync every step, which would stall the GPU's queue of kernels.
These helpers pick a sync-free kernel there (``index_add_`` for keys, one ``cumsum`` for contiguous
segments) and ``bincount`` on the CPU. Both paths give identical integer counts; the tests run each
on the CPU against numpy.
"""

from __future__ import annotations

import torch


def key_dtype(n_keys: int, sync_free: bool) -> torch.dtype:
    """The integer dtype to build keys ``0..n_keys-1`` in for :func:`key_counts`: int16 where they
    fit and
    ``bincount`` counts them (a quarter of int64's memory traffic), else int64 (``index_add_`` takes
    no int16)."""
    return (
        torch.int16 if not sync_free and n_keys - 1 <= torch.iinfo(torch.int16).max else torch.int64
    )


def key_counts(keys: torch.Tensor, n: int, sync_free: bool | None = None) -> torch.Tensor:
    """Occurrences of each key ``0..n-1`` in the integer tensor ``keys`` (int64, length ``n``).

    ``sync_free`` (default: on CUDA) uses ``index_add_`` instead of ``bincount``, which syncs there.
    """
    if sync_free is None:
        sync_free = keys.device.type == "cuda"
    if not sync_free:
        return torch.bincount(keys, minlength=n)[:n]
    ones = torch.ones(1, dtype=torch.int32, device=keys.device).expand(keys.numel())
    return (
        torch.zeros(n, dtype=torch.int32, device=keys.device)
        .index_add_(0, keys, ones)
        .to(torch.int64)
    )


def segment_sums(values: torch.Tensor, bounds: torch.Tensor) -> torch.Tensor:
    """Sums of ``values`` (n, k) over the contiguous row segments ``[bounds[i], bounds[i+1])``:
    (segments, k) int64.

    One ``cumsum`` and two gathers, so nothing is read back to the host; empty segments sum to 0.
    """
    total = torch.zeros(
        values.shape[0] + 1, values.shape[1], dtype=torch.int64, device=values.device
    )
    torch.cumsum(values, 0, out=total[1:])
    return total[bounds[1:]] - total[bounds[:-1]]
