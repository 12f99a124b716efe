"""One record run end to end: original training (cached), prune events, retraining rounds,
recording.

Everything that can be checked is checked before the store is created or any training starts.
"""

from __future__ import annotations

import copy
import json
import platform
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from shedding import distributed, interrupts, storage
from shedding.config import ConfigError, RunConfig, parse_step, to_dict
from shedding.data import DataBundle, build_data
from shedding.data.loader import BatchLoader
from shedding.models import build_model
from shedding.models.prunable import all_prunable_names, prunable_parameters
from shedding.pruning import PRUNERS
from shedding.pruning.mask_file import load_mask_file, masks_digest
from shedding.pruning.masks import apply_masks, flat, gmp_threshold, ones_like, sparsity_of, unflat
from shedding.pruning.schedule import DYNAMIC, Round, cascade_target, plan_rounds
from shedding.recording import resuming
from shedding.recording.layout import Layer, Timeline, build_layers, build_timeline, sample_weights
from shedding.recording.open_recorder import OpenRecorder, capacity
from shedding.recording.recorder import NullRecorder, Recorder
from shedding.recording.store import RunStore, check_path
from shedding.retraining import TECHNIQUES, RetrainContext, Technique
from shedding.training.callbacks import (
    CheckpointCallback,
    EvalCallback,
    MaskCallback,
    ProgressCallback,
)
from shedding.training.loop import Callback, TrainState, evaluate, train
from shedding.training.optim import build_optimizer
from shedding.training.schedules import ScheduleSpec, build_schedule, shifted
from shedding.validate import check_prune_layers, validate_run_config

# progress(description, total) -> advance(n); the CLI passes a rich progress bar, the API None.
ProgressFactory = Callable[[str, int], Callable[[int], None]]
StateDict = dict[str, torch.Tensor]
EVAL_BATCH = 1024
RETRAIN_DATA_EPOCH_OFFSET = 100_000  # retraining rounds see other data orders than the original run


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when available; an unavailable CUDA device is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device: {name} requested but CUDA is not available on this machine")
    return torch.device(name)


@dataclass
class Prepared:
    """Everything resolved from a config before any training: data, shapes, lengths, schedule."""

    cfg: RunConfig
    device: torch.device
    data: DataBundle
    train_loader: BatchLoader
    test_loader: BatchLoader
    T: int
    t: int
    schedule: ScheduleSpec
    technique: Technique
    rounds: list[Round]
    layers: list[Layer]

    @property
    def targets(self) -> list[float]:
        """Overall sparsity after each planned prune event."""
        return [r.target for r in self.rounds]

    @property
    def ipe(self) -> int:
        """Training steps in an epoch."""
        return len(self.train_loader)

    def new_model(self, seed: int) -> torch.nn.Module:
        """A freshly initialised model (initialisation seeded by ``seed``) on the run's device."""
        torch.manual_seed(seed)
        d = self.data
        return build_model(self.cfg.model.name, d.in_channels, d.num_classes, d.image_size).to(
            self.device
        )


def prepare(cfg: RunConfig) -> Prepared:
    """Validate ``cfg`` fully (data present, lengths compatible, layer names known) and resolve
    it."""
    validate_run_config(cfg)
    device = resolve_device(cfg.device)
    try:
        data = build_data(cfg.data)
    except FileNotFoundError as e:
        raise ConfigError(str(e).splitlines()[0]) from None
    world = distributed.world_size()
    if world > 1:  # torchrun: data.batch_size is the global batch, split evenly over the processes
        _check_global_batch(cfg, len(data.train), world)
        device = distributed.init(device)
    train_loader = BatchLoader(
        data.train,
        cfg.data.batch_size,
        True,
        cfg.seed,
        device,
        cfg.data.num_workers,
        distributed.rank(),
        world,
    )
    test_loader = BatchLoader(data.test, EVAL_BATCH, False, 0, device, cfg.data.num_workers)
    ipe = len(train_loader)
    T, t, technique = _lengths(cfg, ipe)
    schedule = build_schedule(cfg.train, ipe)
    layers = _prunable_layers(cfg, data)
    check_prune_layers(cfg.prune, {layer.name: layer.shape for layer in layers})
    rounds = plan_rounds(cfg.prune, t, _check_interval(cfg, ipe, t))
    return Prepared(
        cfg, device, data, train_loader, test_loader, T, t, schedule, technique, rounds, layers
    )


def _check_global_batch(cfg: RunConfig, n_train: int, world: int) -> None:
    """Under torchrun the global batch (and the epoch's last) must split over the processes."""
    rest = n_train % cfg.data.batch_size
    if cfg.data.batch_size % world or 0 < rest < world:
        raise ConfigError(
            f"--data-batch-size: {cfg.data.batch_size} is the global batch, split over the "
            f"{world} torchrun processes, so it must be divisible by {world}"
            + (f" and the epoch's last batch ({rest} examples) at least {world}" if rest else "")
        )


def _lengths(cfg: RunConfig, ipe: int) -> tuple[int, int, Technique]:
    """The original training's steps T, a retraining round's steps t, and the technique (which may
    need t <= T)."""
    T = parse_step(cfg.train.duration, "--train-duration").iterations(ipe)
    t = parse_step(cfg.retrain.duration, "--retrain-duration").iterations(ipe)
    if T < 1:
        raise ConfigError("--train-duration: must be at least one step")
    if t < 1:
        raise ConfigError("--retrain-duration: must be at least one step")
    technique = TECHNIQUES.get(cfg.retrain.technique)
    if technique.needs_t_within_T and t > T:
        raise ConfigError(
            f"--retrain-duration: {cfg.retrain.duration} ({t} steps) is longer than "
            f"--train-duration {cfg.train.duration} ({T} steps); {cfg.retrain.technique} "
            "replays the original schedule from T - t, so t must be at most T"
        )
    return T, t, technique


def _prunable_layers(cfg: RunConfig, data: DataBundle) -> list[Layer]:
    """The model's prunable tensors, less ``--model-dense-layers`` (each checked)."""
    model = build_model(cfg.model.name, data.in_channels, data.num_classes, data.image_size)
    names = all_prunable_names(model)
    known = set(names) | {n.rsplit(".", 1)[0] for n in names}
    for name in cfg.model.dense_layers:
        if name not in known:
            raise ConfigError(
                f"--model-dense-layers: {name!r} is not a Conv/Linear layer of "
                f"{cfg.model.name}; prunable: {', '.join(names)}"
            )
    params = prunable_parameters(model, cfg.model.dense_layers)
    if not params:
        raise ConfigError(
            "--model-dense-layers: every prunable layer is left dense; nothing to prune"
        )
    return build_layers([(k, tuple(p.shape)) for k, p in params.items()])


def _open_timeline(
    cfg: RunConfig, expected: dict[str, int] | None = None
) -> tuple[Timeline, dict[str, int]]:
    """The growable store's first rows (room for ``expected`` rows of each dimension) and the rows
    each timeline dimension grows by (:func:`~shedding.recording.open_recorder.capacity`)."""
    return capacity(cfg.record.chunk_steps, _every(cfg), expected)


def _planned_rows(p: Prepared) -> dict[str, int]:
    """The rows of each timeline dimension the planned rounds take (a cascade-aware run may stop
    short of them): the store is made with room for them, so that it never grows in a run."""
    cfg = p.cfg
    tl = build_timeline(
        p.T,
        p.t,
        len(p.rounds),
        cfg.record.every,
        p.ipe,
        cfg.record.record_pretrain,
        cfg.record.hist_every,
        cfg.record.sample_every,
        lengths=[r.length for r in p.rounds],
    )
    return tl.step_rows


def _every(cfg: RunConfig) -> dict[str, int]:
    """Each periodic recording's cadence in steps (0: off)."""
    rc = cfg.record
    return {"snapshots": rc.every, "hist": rc.hist_every, "samples": rc.sample_every}


def _new_recorder(
    p: Prepared, store: RunStore, params: dict[str, torch.nn.Parameter]
) -> OpenRecorder:
    """The recorder of the run's growable store (rank 0's)."""
    cfg = p.cfg
    timeline, _ = _open_timeline(cfg)
    return OpenRecorder(store, p.layers, timeline, params, cfg.record.dtype, p.device, _every(cfg))


def _check_interval(cfg: RunConfig, ipe: int, t: int) -> int:
    """``--prune-interval`` in steps, checked against the schedule that uses it (gradual,
    cascade)."""
    pc = cfg.prune
    interval = parse_step(pc.interval, "--prune-interval").iterations(ipe)
    if pc.method == "none" or pc.schedule not in ("gradual", "cascade"):
        return interval
    if interval < 1 or interval % ipe:
        raise ConfigError(
            f"--prune-interval: {pc.interval} ({interval} steps) must be a whole number of epochs "
            f"({ipe} steps each) so that resume checkpoints fall between events"
        )
    if pc.schedule == "gradual" and (pc.gradual_events - 1) * interval >= t:
        raise ConfigError(
            f"--prune-gradual-events: {pc.gradual_events} events every {pc.interval} do not fit in "
            f"--retrain-duration {cfg.retrain.duration} ({t} steps)"
        )
    if pc.schedule == "cascade":
        for name, every in (
            ("--record-every", cfg.record.every),
            ("--record-hist-every", cfg.record.hist_every),
            ("--record-sample-every", cfg.record.sample_every),
        ):
            if every and (interval % every or t % every):
                raise ConfigError(
                    f"{name}: {every} must divide --prune-interval ({interval} steps) and "
                    f"--retrain-duration ({t} steps) with the cascade schedule"
                )
    return interval


# --------------------------------------------------------------------------- original training


def pretrain_dir(cache_dir: Path, cfg: RunConfig) -> Path:
    """Cache folder of the original run: named by a hash of the model, data, train sections and
    seed."""
    key = cfg.hash(("model", "data", "train"))
    names = f"{storage.safe_name(cfg.model.name)}-{storage.safe_name(cfg.data.name)}"
    return Path(cache_dir) / f"pretrain-{names}-s{cfg.seed}-{key}"


def pretrain(
    p: Prepared,
    cache_dir: Path | None,
    needed: set[int],
    recorder: Recorder | None = None,
    progress: ProgressFactory | None = None,
) -> dict[int, StateDict]:
    """Train for T steps with the original schedule, keeping the state at each step in ``needed``.

    With a cache folder, checkpoints found there are reused (unless the run records the original
    training, which must then be replayed) and new ones are saved there atomically.
    """
    folder = pretrain_dir(cache_dir, p.cfg) if cache_dir is not None else None
    if folder is not None and recorder is None:
        found = {s: folder / f"step_{s}.pt" for s in needed}
        if distributed.from_main(
            lambda: all(f.exists() for f in found.values())
        ):  # rank 0 reads, sends
            loaded = distributed.from_main(
                lambda: {
                    s: torch.load(f, map_location="cpu", weights_only=True)
                    for s, f in found.items()
                }
            )
            return {s: {k: v.to(p.device) for k, v in sd.items()} for s, sd in loaded.items()}
    model = p.new_model(p.cfg.seed)
    optimizer = build_optimizer(model.parameters(), p.cfg.train)
    ckpts: dict[int, StateDict] = {}
    callbacks: list[Callback] = [CheckpointCallback(needed, lambda s, sd: ckpts.__setitem__(s, sd))]
    if recorder is not None:
        recorder.begin_phase("pretrain", step_base=-p.T, epoch_index=0)
        callbacks += [EvalCallback(p.test_loader), recorder]
    if progress is not None:
        callbacks.append(ProgressCallback(progress("original training", p.T)))
    train(
        model,
        p.train_loader,
        optimizer,
        p.schedule,
        p.T,
        callbacks,
        phase="pretrain",
        mixed_precision=p.cfg.train.mixed_precision,
    )
    if folder is not None and distributed.is_main():
        folder.mkdir(parents=True, exist_ok=True)
        for s, sd in ckpts.items():
            storage.save_atomic(sd, folder / f"step_{s}.pt")
        acc, _ = evaluate(model, p.test_loader)
        storage.write_text_atomic(
            folder / "meta.json",
            json.dumps({"config": to_dict(p.cfg), "T": p.T, "test_accuracy": acc}, indent=1),
        )
    return {s: {k: v.to(p.device) for k, v in sd.items()} for s, sd in ckpts.items()}


# --------------------------------------------------------------------------- the record run


def _versions() -> dict[str, str]:
    import xarray
    import zarr

    from shedding import __version__

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "zarr": zarr.__version__,
        "xarray": xarray.__version__,
        "shedding": __version__,
    }


def _clone(sd: StateDict) -> StateDict:
    return {k: v.detach().clone() for k, v in sd.items()}


RESUME_DIR = "_resume"  # inside the store: what --resume needs; removed when the run completes
FINAL_MODEL = "final_model.pt"  # inside the store: the retrained network's state_dict


def _atomic_save(obj: Any, path: Path) -> None:
    storage.save_atomic(obj, path)


class ResumeCallback(Callback):
    """After the recorder's flush at each retraining epoch end: an atomic checkpoint to resume
    from."""

    def __init__(
        self, folder: Path, round: int, recorder: Recorder, masks: dict[str, torch.Tensor]
    ) -> None:
        self.folder, self.round, self.recorder = folder, round, recorder
        self.masks = {k: m.detach().cpu() for k, m in masks.items()}

    def on_epoch_end(self, state: TrainState) -> None:
        """Checkpoint the round (model, optimizer, masks, recorder) at the epoch's end."""
        # copies taken now; written by the store's writer after the epoch's data (its queue keeps
        # the order)
        payload = {
            "round": self.round,
            "step": state.step,
            "model": {k: v.detach().clone() for k, v in state.model.state_dict().items()},
            "optimizer": copy.deepcopy(state.optimizer.state_dict()),
            "masks": self.masks,
        }
        self.recorder.checkpoint(self.folder / "checkpoint.pt", payload)


@contextmanager
def _signals_stop_the_run() -> Iterator[None]:
    """SIGINT and SIGTERM stop the run at the next step (:mod:`shedding.interrupts`) while it
    records."""
    if distributed.launched() and not distributed.is_main():
        with distributed.deferred_stop():  # torchrun: the others wait for rank 0 to stop
            yield
        return
    with interrupts.stop_on_signals():
        yield


def record(
    cfg: RunConfig,
    out: str | Path,
    *,
    cache_dir: str | Path | None = None,
    overwrite: bool = False,
    progress: ProgressFactory | None = None,
) -> Path:
    """Run ``cfg`` and record it into a new Zarr store at ``out``; return the store path.

    Bad configurations raise :class:`ConfigError` and an unusable ``out`` raises ``StoreError``,
    both before anything is written. A failure during training leaves the store with status
    ``failed`` and every step up to ``last_committed_step`` readable. SIGINT and SIGTERM stop the
    run at the next step and raise :class:`~shedding.interrupts.Interrupted` once the store is
    closed (``interrupted``, or
    ``complete`` when the signal came while a finished run was closing). :func:`resume` finishes a
    run that did not complete.
    """
    with _signals_stop_the_run():
        out = storage.as_path(out)
        p = prepare(cfg)
        distributed.on_main(
            check_path, out, overwrite
        )  # fail early, before training; nothing is removed yet
        cache = _check_cache(cache_dir)
        interrupts.check()  # a signal before the store exists: nothing was written
        with interrupts.shielded():  # a second signal can't leave a half-made store
            store = distributed.on_main(_create_store, p, out, overwrite)
        try:
            model = p.new_model(cfg.seed)
            params = prunable_parameters(model, cfg.model.dense_layers)
            recorder = (
                _new_recorder(p, store, params) if distributed.is_main() else NullRecorder()
            )  # torchrun: only rank 0 records
        except BaseException as e:
            _abandon(store, e)
            raise
        return _run_recorded(
            out,
            model,
            recorder,
            lambda: _original_then_retrain(p, out, cache, model, params, recorder, progress),
        )


def _abandon(store: RunStore | None, error: BaseException) -> None:
    """A store made but never run (its recorder could not be built): mark it and release its
    lock."""
    if store is None:
        return
    status = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
    with interrupts.shielded():
        store.set_attrs(status=status, error=f"{type(error).__name__}: {error}".splitlines()[0])
        store.release()
    if isinstance(error, KeyboardInterrupt):
        error.status = status


def _check_cache(cache_dir: str | Path | None) -> Path | None:
    cache = Path(cache_dir) if cache_dir is not None else None
    if cache is not None and cache.exists() and not cache.is_dir():
        raise ConfigError(
            f"--cache: {cache} is a file, not a folder for the original run's checkpoints"
        )
    return cache


def _create_store(p: Prepared, out: Path, overwrite: bool) -> RunStore:
    from shedding.recording.config_identity import identity_attributes

    cfg = p.cfg
    config = to_dict(cfg)
    attrs: dict[str, Any] = {
        "config": config,
        # condition, seed, control, line_sparsity: what analyze groups runs and matches controls by
        **identity_attributes(config, cfg.record.alpha),
        "versions": _versions(),
        "device": str(p.device),
        # torchrun processes that trained it (1 without torchrun)
        "world_size": distributed.world_size(),
        "iterations_per_epoch": p.ipe,
        "T": p.T,
        "t": p.t,
        "rounds": len(p.rounds),
        "schedule": cfg.prune.schedule if cfg.prune.method != "none" else "oneshot",
        "method": cfg.prune.method,
        "technique": cfg.retrain.technique,
        "alpha": cfg.record.alpha,
        "dataset": cfg.data.name,
        "model": cfg.model.name,
        "shed_definition": "a survivor at or above the line alpha*tau at its event is shed at step "
        "s while |w(s)| < alpha*tau; tau is the GMP cut value at the event's sparsity",
    }
    if cfg.prune.method == "file":  # what a resume checks the file against
        attrs["mask_file_digest"] = masks_digest(load_mask_file(cfg.prune.mask_file))
    timeline, growth = _open_timeline(cfg, _planned_rows(p))
    return RunStore.create(
        out,
        p.layers,
        timeline,
        attrs,
        cfg.record.dtype,
        cfg.record.chunk_steps,
        overwrite=overwrite,
        hist_bins=cfg.record.hist_bins,
        hist_range=tuple(cfg.record.hist_range),
        lines=cfg.record.lines,
        sample=sample_weights(p.layers, cfg.record.sample_per_layer, cfg.seed),
        growth=growth,
    )


def _original_then_retrain(
    p: Prepared,
    out: Path,
    cache: Path | None,
    model: torch.nn.Module,
    params: dict[str, torch.nn.Parameter],
    recorder: Recorder,
    progress: ProgressFactory | None,
    checkpoints: dict[int, StateDict] | None = None,
) -> float:
    """The original run (from ``checkpoints``, the cache or trained now), kept for resume, then
    retraining."""
    if checkpoints is None:
        needed = p.technique.checkpoints_needed(p.T, p.t)
        checkpoints = pretrain(
            p, cache, needed, recorder if p.cfg.record.record_pretrain else None, progress
        )
    resume_dir = out / RESUME_DIR if distributed.is_main() else None
    if resume_dir is not None:
        resume_dir.mkdir(exist_ok=True)
        _atomic_save(checkpoints, resume_dir / "original_run.pt")
    return _retrain(p, model, params, checkpoints, recorder, progress, resume_dir)


def _run_recorded(
    out: Path, model: torch.nn.Module, recorder: Recorder, body: Callable[[], float]
) -> Path:
    """Run ``body`` and close the store with the status it earned (complete, interrupted or failed).

    Whatever happens, the store is closed exactly once, shielded from signals, and its lock
    released. The resume folder goes only after the status is ``complete``, so a run killed at any
    moment can be finished.
    """
    started = time.time()
    status, extra, error = "complete", {}, None
    try:
        interrupts.check()
        extra["final_test_accuracy"] = body()
        with interrupts.shielded():
            recorder.finish()  # the last state's periodic rows
            recorder.flush()
            recorder.sync()  # the writer has written everything, the last checkpoint included
            if distributed.is_main():
                _atomic_save(model.state_dict(), out / FINAL_MODEL)
    except KeyboardInterrupt as e:
        status, extra, error = "interrupted", {}, e
    except BaseException as e:
        status, extra, error = "failed", {"error": f"{type(e).__name__}: {e}".splitlines()[0]}, e
    with interrupts.shielded():
        recorder.close(status, seconds=time.time() - started, **extra)
        if status == "complete" and distributed.is_main():
            storage.rmtree(out / RESUME_DIR)
    if error is not None:
        if isinstance(
            error, KeyboardInterrupt
        ):  # what the store was left as, for the one line the CLI prints
            error.status, error.path = "interrupted", out
        raise error
    if (
        signal_name := interrupts.requested()
    ) is not None:  # it came while the finished run was closing
        stop = interrupts.Interrupted(signal_name, status="complete")
        stop.path = out
        raise stop
    distributed.barrier()  # torchrun: every rank returns once the store is complete
    return out


def resume(out: str | Path, *, progress: ProgressFactory | None = None) -> Path:
    """Finish a run that did not complete: interrupted, failed, or crashed (killed at any moment).

    It continues from the last retraining-epoch checkpoint, after checking that every chunk the run
    committed before it is on disk and intact; a run stopped before its first checkpoint restarts
    its retraining from the original run kept in the store (or retrains that too if it was not
    kept). The configuration comes from the store. On CPU the result is bitwise equal to an
    uninterrupted run. A store that can't be finished (a damaged checkpoint or chunk) raises
    ``StoreError`` naming the file, and nothing in it is changed.
    """
    with _signals_stop_the_run():
        out = storage.as_path(out)
        cfg = resuming.check_resumable(out)
        p = prepare(cfg)
        state, checkpoints = resuming.load_resume_files(out / RESUME_DIR, p.T)
        if cfg.record.record_pretrain and state is None:
            checkpoints = None  # the recorded original training is recorded again
        store = RunStore.reopen(out, _open_timeline(cfg)[1])
        recorder = None
        try:  # nothing in the store changes until the recorder holds what the store had committed
            rounds = int(store.group.attrs.get("rounds", len(p.rounds)))
            if rounds < len(p.rounds):  # a cascade-aware run that had reached its target
                p.rounds = _cut_rounds(p, rounds - 1)
            model = p.new_model(cfg.seed)
            params = prunable_parameters(model, cfg.model.dense_layers)
            recorder = _new_recorder(p, store, params)
            if state is not None:
                step = _state_step(p, state)
                resuming.verify_committed(
                    store, recorder.rows_at(state["recorder"], step), int(state["round"]) + 1
                )
                recorder.load_state_dict(state["recorder"], step=step)
            interrupts.check()
        except BaseException:
            if recorder is not None:
                recorder.abandon()
            store.release()
            raise
        store.consolidate()  # the arrays as they are (a growth no commit followed included)
        store.set_attrs(status="running", error=None, resumed=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        if state is None:
            return _run_recorded(
                out,
                model,
                recorder,
                lambda: _original_then_retrain(
                    p, out, None, model, params, recorder, progress, checkpoints
                ),
            )
        return _run_recorded(
            out,
            model,
            recorder,
            lambda: _retrain(
                p, model, params, checkpoints, recorder, progress, out / RESUME_DIR, state
            ),
        )


def _state_step(p: Prepared, state: dict[str, Any]) -> int:
    """The global step of a resume checkpoint (its round's first step plus the steps done in it)."""
    return _event_steps(p.rounds)[int(state["round"])] + int(state["step"])


def _cut_rounds(p: Prepared, final: int) -> list[Round]:
    """A dynamic schedule's rounds once event ``final`` reached the target: its windows, then the
    full round."""
    return list(p.rounds[:final]) + [Round(p.cfg.prune.sparsity, p.t, True, True)]


def _event_steps(rounds: list[Round]) -> list[int]:
    return [sum(r.length for r in rounds[:i]) for i in range(len(rounds))]


@torch.no_grad()
def _cascade_masks(
    p: Prepared,
    weights: StateDict,
    masks: StateDict,
    shed_flat: torch.Tensor,
    prune_fn: Any,
    generator: torch.Generator,
) -> tuple[StateDict, float, bool]:
    """Cascade-aware event: remove what the cascade shed since the previous event (``shed_flat``,
    the recorder's shed set), then trigger again; returns the new masks, their target sparsity and
    whether it is the last."""
    cfg = p.cfg.prune
    shed = {
        k: v.bool()
        for k, v in unflat(shed_flat.to(next(iter(masks.values())).device), masks).items()
    }
    n_shed = int(shed_flat.sum())
    total = sum(m.numel() for m in masks.values())
    target, final = cascade_target(sparsity_of(masks), n_shed, total, cfg)
    base = {k: masks[k] * (~shed[k]).to(masks[k].dtype) for k in masks}
    if (
        sparsity_of(base) > target
    ):  # more was shed than the target allows: drop only the smallest shed weights
        only_shed = {
            k: torch.where(shed[k], w, torch.full_like(w, float("inf"))) for k, w in weights.items()
        }
        return PRUNERS.get("gmp")(only_shed, masks, target, cfg, generator), target, final
    return prune_fn(weights, base, target, cfg, generator), target, final


@dataclass
class _Retraining:
    """What :func:`_retrain` carries from round to round: the rounds, the weights and masks the next
    event starts from, the optimizer and the technique's plan of the current phase."""

    p: Prepared
    model: torch.nn.Module
    params: dict[str, torch.nn.Parameter]
    checkpoints: dict[int, StateDict]
    recorder: Recorder
    rounds: list[Round]
    dynamic: bool  # a cascade-aware schedule: events after the first remove what was shed
    current: StateDict  # the weights the next event prunes
    masks: StateDict  # the masks the next event prunes from
    epoch_index: int  # the recorder's epoch index where the next round starts
    advance: Callable[[int], None] | None = None
    optimizer: torch.optim.Optimizer | None = None
    plan: Any = None
    phase: int = 0  # the round whose restart began the current optimizer / LR phase

    def plan_for(self, trained: StateDict) -> Any:
        """The technique's plan (start weights, LR schedule) for a phase after ``trained``."""
        p = self.p

        def fresh_init() -> StateDict:
            return _clone(p.new_model(p.cfg.seed + 1_000_003).state_dict())

        return p.technique.plan(
            RetrainContext(
                trained=trained,
                checkpoints=self.checkpoints,
                schedule=p.schedule,
                T=p.T,
                t=p.t,
                finetune_lr=p.cfg.retrain.finetune_lr,
                fresh_init=fresh_init,
            )
        )

    def resume_round(self, r: int, state: dict[str, Any]) -> tuple[StateDict, int]:
        """Round ``r`` from a resume checkpoint ``state``: its masks and the steps done in it
        (resume() has loaded the recorder's state at that step)."""
        new_masks = {k: m.to(self.p.device) for k, m in state["masks"].items()}
        self.phase = max(i for i in range(r + 1) if self.rounds[i].restart)
        self.plan = self.plan_for(self.current)
        self.optimizer = build_optimizer(self.model.parameters(), self.p.cfg.train)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        start = int(state["step"])
        self.epoch_index = self.recorder.epoch_index
        if self.advance is not None:
            self.advance(_event_steps(self.rounds)[r] + start)
        return new_masks, start

    def prune_event(self, r: int) -> StateDict:
        """Prune event ``r`` on the previous round's weights, recorded; its masks."""
        cfg = self.p.cfg
        self.model.load_state_dict(self.current)
        weights = {k: v.detach().clone() for k, v in self.params.items()}
        generator = torch.Generator().manual_seed(cfg.seed * 7919 + r + 1)
        target = self.rounds[r].target
        if self.dynamic and r > 0:
            new_masks, target = self._cascade_event(r, weights, generator)
        else:
            prune_fn = PRUNERS.get(cfg.prune.method)
            new_masks = prune_fn(weights, self.masks, target, cfg.prune, generator)
        tau = gmp_threshold(weights, self.masks, target)
        old = self.masks
        pruned = np.array([int(((old[k] > 0) & (new_masks[k] == 0)).sum()) for k in self.params])
        rd = self.rounds[r]
        if rd.restart or self.optimizer is None:
            self.plan = self.plan_for(self.current)
            # momentum starts empty
            self.optimizer = build_optimizer(self.model.parameters(), cfg.train)
            self.phase = r
            if rd.rewind:
                self.model.load_state_dict(self.plan.start)
        apply_masks(self.params, new_masks)
        if r == 0:  # where the retraining LR trace starts in the original schedule (null: constant)
            self.recorder.set_attrs(schedule_offset=self.plan.schedule_offset)
        acc, _ = evaluate(self.model, self.p.test_loader)
        sparsity = sparsity_of(new_masks)
        line = cfg.record.alpha * tau
        pre_prune = flat(weights).abs()
        self.recorder.begin_event(r, r, new_masks, pre_prune, pruned, sparsity, tau, line, acc)
        return new_masks

    def _cascade_event(
        self, r: int, weights: StateDict, generator: torch.Generator
    ) -> tuple[StateDict, float]:
        """A cascade-aware event's masks and target; the last one cuts the rounds to it."""
        p = self.p
        # torchrun: rank 0's count
        shed = distributed.from_main(lambda: self.recorder.shed_now().cpu())
        prune_fn = PRUNERS.get(p.cfg.prune.method)
        new_masks, target, final = _cascade_masks(p, weights, self.masks, shed, prune_fn, generator)
        if final and len(self.rounds) != r + 1:  # the rounds end here; so does the recording
            if self.advance is not None:
                lengths = [x.length for x in self.rounds]
                self.advance(sum(lengths) - sum(lengths[:r]) - p.t)
            self.rounds = _cut_rounds(p, r)
            self.recorder.set_attrs(rounds=len(self.rounds))
        return new_masks, target

    def train_round(
        self, r: int, new_masks: StateDict, start: int, resume_dir: Path | None
    ) -> float:
        """Retraining round ``r`` under ``new_masks`` from its step ``start``; its final test
        accuracy."""
        p, rd = self.p, self.rounds[r]
        starts = _event_steps(self.rounds)
        b = starts[r]
        self.recorder.begin_phase("retrain", step_base=b, epoch_index=self.epoch_index)
        callbacks: list[Callback] = [
            MaskCallback(self.params, new_masks),
            EvalCallback(p.test_loader),
            self.recorder,
        ]
        if resume_dir is not None:
            callbacks.append(ResumeCallback(resume_dir, r, self.recorder, new_masks))
        if self.advance is not None:
            callbacks.append(ProgressCallback(self.advance))
        offset = b - starts[self.phase]  # steps of this phase before the round
        train(
            self.model,
            p.train_loader,
            self.optimizer,
            shifted(self.plan.schedule, offset) if offset else self.plan.schedule,
            rd.length,
            callbacks,
            phase="retrain",
            round=r,
            data_epoch_offset=RETRAIN_DATA_EPOCH_OFFSET * (self.phase + 1) + offset // p.ipe,
            mixed_precision=p.cfg.train.mixed_precision,
            start_step=start,
        )
        self.epoch_index = self.recorder.epoch_index
        final_acc, _ = evaluate(self.model, p.test_loader)
        self.recorder.end_round(r, final_acc)
        self.current = _clone(self.model.state_dict())
        self.masks = new_masks
        return final_acc


def _retrain(
    p: Prepared,
    model: torch.nn.Module,
    params: dict[str, torch.nn.Parameter],
    checkpoints: dict[int, StateDict],
    recorder: Recorder,
    progress: ProgressFactory | None,
    resume_dir: Path | None = None,
    resume_state: dict[str, Any] | None = None,
) -> float:
    """All prune events and retraining rounds (from a resume checkpoint when given); final test
    accuracy.

    A round with ``restart`` gets a new optimizer and the technique's LR schedule from its start
    (and, with ``rewind``, the technique's start weights); other rounds (gradual events, cascade
    windows) continue the previous round's optimizer, LR schedule and data order.
    """
    cfg = p.cfg
    dynamic = cfg.prune.schedule in DYNAMIC and cfg.prune.method != "none"
    rounds = list(p.rounds)  # resume() cut them where a cascade had reached its target
    run = _Retraining(
        p,
        model,
        params,
        checkpoints,
        recorder,
        rounds,
        dynamic,
        current=_clone(checkpoints[p.T]),
        masks=ones_like({k: v.detach() for k, v in params.items()}),
        epoch_index=recorder.epoch_index,  # the original training's epochs recorded
        advance=(
            progress("retraining", sum(r.length for r in rounds)) if progress is not None else None
        ),
    )
    final_acc = float("nan")
    r = resume_state["round"] if resume_state else 0
    if resume_state is not None and r < len(run.rounds):
        new_masks, start = run.resume_round(r, resume_state)
        final_acc = run.train_round(r, new_masks, start, resume_dir)
        r += 1
    while r < len(run.rounds):
        final_acc = run.train_round(r, run.prune_event(r), 0, resume_dir)
        r += 1
    return final_acc
