"""Multi-process training under ``torchrun``: one process per device, DistributedDataParallel, rank
0 records.

A run launched by torchrun (``WORLD_SIZE`` > 1 in the environment) joins a process group (gloo on
CPU, NCCL on
CUDA, each process on ``cuda:LOCAL_RANK``). Every rank builds the same model from the same seed and
trains on its own contiguous shard of each global batch (:class:`shedding.data.loader.BatchLoader`);
DDP averages the gradients, so the ranks keep identical weights. Only rank 0 creates the store,
records, and writes the resume checkpoints, ``final_model.pt`` and the original run's cache; the
other ranks train in lockstep and write nothing. Without torchrun nothing here does anything: no
process group, world size 1, rank 0.
"""

from __future__ import annotations

import atexit
import os
import pickle
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


def launched() -> bool:
    """True in a process started by torchrun with more than one process in the launch."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def world_size() -> int:
    return int(os.environ["WORLD_SIZE"]) if launched() else 1


def rank() -> int:
    return int(os.environ.get("RANK", "0")) if launched() else 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0")) if launched() else 0


def is_main() -> bool:
    """True on rank 0 (and in every process not started by torchrun): the process that records."""
    return rank() == 0


def active() -> bool:
    """True once this process has joined a process group of more than one process."""
    return launched() and dist.is_available() and dist.is_initialized()


def init(device: torch.device) -> torch.device:
    """Join torchrun's process group (once; later calls just return the device) and return this
    rank's device.

    On CUDA each process takes ``cuda:LOCAL_RANK``; an explicit other index is an error. Without
    torchrun the device is returned unchanged and nothing else happens.
    """
    from shedding.config import ConfigError

    if not launched():
        return device
    if device.type == "cuda":
        if device.index is not None and device.index != local_rank():
            raise ConfigError(
                f"--device: {device} under torchrun; each process uses cuda:LOCAL_RANK, so pass "
                "--device cuda or auto"
            )
        device = torch.device("cuda", local_rank())
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        atexit.register(cleanup)
    return device


def cleanup() -> None:
    """Leave the process group (no-op when there is none)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every rank (no-op without a process group)."""
    if active():
        dist.barrier()


def _portable(error: BaseException | None) -> BaseException | None:
    """``error`` if it survives pickling, else a RuntimeError carrying its one-line description."""
    if error is None:
        return None
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        return RuntimeError(f"{type(error).__name__} on rank 0: {error}".splitlines()[0])


def _on_main(fn: Callable[..., T], args: Any, kwargs: Any, share: bool) -> T | None:
    if not active():
        return fn(*args, **kwargs)
    result, error = None, None
    if is_main():
        try:
            result = fn(*args, **kwargs)
        except Exception as e:
            error = e
    box = [(_portable(error), result if share and error is None else None)]
    dist.broadcast_object_list(box, src=0)
    sent_error, sent = box[0]
    if sent_error is not None:
        raise error if error is not None else sent_error
    return result if is_main() else sent if share else None


def on_main(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """``fn(*args, **kwargs)`` on rank 0 only (its result there, None elsewhere); an error is raised
    on all ranks.

    Rank 0's error reaches the other ranks as the same exception (a RuntimeError when it does not
    pickle), so that every rank stops together instead of waiting for rank 0 in a later collective.
    """
    return _on_main(fn, args, kwargs, share=False)


def from_main(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Like :func:`on_main`, but every rank gets rank 0's result (which must pickle; keep tensors on
    the CPU)."""
    return _on_main(fn, args, kwargs, share=True)  # type: ignore[return-value]


def wrap(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` in DistributedDataParallel (its parameters and buffers broadcast from rank 0), or
    ``model``.

    On CUDA the model's batch-norm layers become SyncBatchNorm first (in place: same parameters and
    buffers, same state_dict keys), so batch statistics are over the global batch. SyncBatchNorm
    needs a GPU; on CPU (gloo) each rank normalises with its own shard's statistics and the running
    statistics are rank 0's (DDP broadcasts buffers before every forward), which differs from a
    single-process run with the whole batch.
    """
    if not active():
        return model
    device = next(model.parameters()).device
    if device.type == "cuda" and any(
        isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
        and not isinstance(m, torch.nn.SyncBatchNorm)
        for m in model.modules()
    ):
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device] if device.type == "cuda" else None
    )


def batch_totals(
    loss_sum: torch.Tensor, correct: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sums over the ranks of a step's summed loss and correct count (for the whole global batch's
    metrics)."""
    if not active():
        return loss_sum, correct
    totals = torch.stack([loss_sum.detach().float(), correct.float()])
    dist.all_reduce(totals)
    return totals[0], totals[1]


_stop_requested = False  # set by the deferred SIGINT/SIGTERM handler of a rank other than 0


def stop_requested(here: bool = False) -> bool:
    """True on every rank when any rank has been asked to stop (a collective: call on all ranks);
    ``here`` is rank 0's own request (:func:`shedding.interrupts.requested`), the others' come from
    :func:`deferred_stop`."""
    if not active():
        return False
    flag = torch.tensor(
        [float(_stop_requested or here)],
        device=torch.device("cuda", local_rank()) if dist.get_backend() == "nccl" else "cpu",
    )
    dist.all_reduce(flag)
    return bool(flag.item() > 0)


@contextmanager
def deferred_stop() -> Iterator[None]:
    """On a rank other than 0: the first SIGINT/SIGTERM asks for a stop instead of raising.

    Rank 0 notes its own signal too (:mod:`shedding.interrupts`). No rank may die first: the others,
    waiting for it in a collective, would fail instead. So every rank carries on to the next epoch
    end, where
    :func:`stop_requested` agrees on the stop and all ranks raise together. A second signal raises
    at once.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        global _stop_requested
        if _stop_requested:
            raise KeyboardInterrupt(f"signal {signum}")
        _stop_requested = True

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
