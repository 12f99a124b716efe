"""Recording overhead: training-step time with the recorder against the same loop without it.

Run: ``python -m benchmarks.recording_overhead [--steps N] [--repeats R] [--device cpu|cuda]
[--cases ...] [--variants ...] [--json PATH]``; ``--model/--shape/--batch`` time a case's variants
on a stand-in model (a dry run of the GPU rows on a CPU, see benchmarks/gpu_check.sh).
Prints one table of ratios measured in this run (machines are shared and noisy: only ratios are
reported, each the median over repeats that interleave the variants in a shuffled order). Two
measures per variant:

* **wall**: the whole run's wall time (closing the store included) over the run without recording;
* **own**: 1 + the recorder's own time over the run without recording, from a second run of the
  variant in which the writer is held back until training ends: the time in its hooks on the
  training thread plus the time the writer then takes to write everything and close the store, alone
  on the machine. It counts the writer's work as if none of it overlapped training, and, like the
  time inside ``torch.save`` for the peer, without other work competing for the cores; unlike the
  wall ratio it stays readable when the machine's noise is larger than the overhead.

Against the peer it also gives the **training-thread** time alone (the hooks, waits for a full queue
included, not the writer's work nor closing the store): a lower bound on the added time, reached
when the writer has a core of its own and the run is long enough for closing the store not to count.

It also compares the store's bytes and the recorder's own time with the hand-written peer,
``torch.save(model.state_dict())`` at the same interval (its own time: the time inside
``torch.save``).
On CUDA it adds ResNet-56 and ResNet-50 (bf16 autocast), the GPU rows of issue 3; ``--variants``
keeps some variants only (``summary every step`` in every case, ``resnet50:full every 100, float16``
in one).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import random
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import TensorDataset

from shedding.data.loader import BatchLoader
from shedding.models import build_model
from shedding.models.prunable import prunable_parameters
from shedding.pruning import PRUNERS
from shedding.pruning.masks import apply_masks, flat, gmp_threshold, ones_like, sparsity_of
from shedding.recording.layout import build_layers, build_timeline, sample_weights
from shedding.recording.open_recorder import OpenRecorder, capacity
from shedding.recording.recorder import Recorder
from shedding.recording.store import RunStore
from shedding.training.callbacks import MaskCallback
from shedding.training.loop import Callback, TrainState, train
from shedding.training.schedules import constant

POOL = 64  # distinct batches at most (the data cycles through them: one epoch)

CPU_VARIANTS = [
    "summary every step",
    "sample every step",
    "full every step, float32",
    "full every step, float16",
    "full every step, log8",
    "full every 10, float16",
    "full every 10, log8",
    "torch.save every step",
    "torch.save every 10",
]


@dataclass
class Case:
    """One model to time: its input shape, batch, steps per run, precision, and the variants to
    time."""

    model: str
    shape: tuple[int, int, int]
    batch: int
    steps: int
    variants: list[str]
    mixed_precision: bool = False
    peers: list[tuple[str, str]] = field(
        default_factory=list
    )  # (ours, torch.save at the same interval)
    stands_for: str = ""  # the case whose variants a stand-in model times (--model)

    @property
    def label(self) -> str:
        """How the table names the case."""
        bf16 = " bf16" if self.mixed_precision else ""
        instead = f" (for {self.stands_for})" if self.stands_for else ""
        return f"{self.model} {'x'.join(map(str, self.shape))} b{self.batch}{bf16}{instead}"


CASES = {
    "small_cnn": Case(
        "small_cnn",
        (1, 8, 8),
        128,
        300,
        CPU_VARIANTS,
        peers=[
            ("full every step, float16", "torch.save every step"),
            ("full every 10, float16", "torch.save every 10"),
        ],
    ),
    "resnet20": Case(
        "resnet20",
        (3, 32, 32),
        128,
        64,
        CPU_VARIANTS,
        peers=[
            ("full every step, float16", "torch.save every step"),
            ("full every 10, float16", "torch.save every 10"),
        ],
    ),
    "resnet56": Case(
        "resnet56",
        (3, 32, 32),
        128,
        200,
        [
            "summary every step",
            "full every step, float16",
            "full every step, log8",
            "torch.save every step",
        ],
        peers=[("full every step, float16", "torch.save every step")],
    ),
    "resnet50": Case(
        "resnet50",
        (3, 224, 224),
        64,
        300,
        [
            "summary every step",
            "full every 100, float16",
            "full every 100, log8",
            "torch.save every 100",
        ],
        mixed_precision=True,
        peers=[("full every 100, float16", "torch.save every 100")],
    ),
}
CPU_CASES = ["small_cnn", "resnet20"]
GPU_CASES = ["resnet20", "resnet56", "resnet50"]


def _folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


class TorchSavePeer(Callback):
    """What users write by hand: ``torch.save(model.state_dict())`` every ``every`` steps."""

    def __init__(self, folder: Path, every: int) -> None:
        self.folder, self.every = folder, every

    def on_step_end(self, state: TrainState) -> None:
        if state.step % self.every == 0:
            torch.save(state.model.state_dict(), self.folder / f"step_{state.step}.pt")


class Timed(Callback):
    """Runs another callback's hooks and adds up the wall time they take on the training thread."""

    def __init__(self, inner: Callback) -> None:
        self.inner = inner
        self.seconds = 0.0

    def _time(self, hook: str, state: TrainState) -> None:
        t0 = time.perf_counter()
        getattr(self.inner, hook)(state)
        self.seconds += time.perf_counter() - t0

    def on_train_start(self, state: TrainState) -> None:
        self._time("on_train_start", state)

    def on_step_end(self, state: TrainState) -> None:
        self._time("on_step_end", state)

    def on_epoch_end(self, state: TrainState) -> None:
        self._time("on_epoch_end", state)

    def on_train_end(self, state: TrainState) -> None:
        self._time("on_train_end", state)


def _setup(
    model_name: str, shape: tuple[int, int, int], device: torch.device, batch: int, steps: int
):
    torch.manual_seed(0)
    n = batch * min(steps, POOL)
    data = TensorDataset(torch.randn(n, *shape), torch.randint(0, 10, (n,)))
    loader = BatchLoader(data, batch, True, 0, device)
    model = build_model(model_name, shape[0], 10, shape[1:]).to(device)
    params = prunable_parameters(model)
    weights = {k: p.detach().clone() for k, p in params.items()}
    masks = PRUNERS.get("gmp")(weights, ones_like(weights), 0.5, None, torch.Generator())
    apply_masks(params, masks)
    return model, params, masks, weights, loader


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _run(
    model, params, masks, loader, steps: int, extra: list[Callback], mixed_precision: bool = False
) -> float:
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    callbacks: list[Callback] = [MaskCallback(params, masks), *extra]
    _sync(loader.device)
    t0 = time.perf_counter()
    train(model, loader, opt, constant(0.01), steps, callbacks, mixed_precision=mixed_precision)
    _sync(loader.device)
    return time.perf_counter() - t0


def _recorder(
    folder: Path,
    params,
    masks,
    weights,
    steps: int,
    device: torch.device,
    every: int = 0,
    dtype: str = "float32",
    hist_every: int = 0,
    sample_every: int = 0,
    max_pending: int = 8,
) -> OpenRecorder:
    """The recorder the built-in trainer makes, after its one GMP event at step 0."""
    layers = build_layers([(k, tuple(p.shape)) for k, p in params.items()])
    # the built-in trainer's recorder and store: growable, made with room for the planned rows
    planned = build_timeline(steps, steps, 1, every, steps, False, hist_every, sample_every)
    cadence = {"snapshots": every, "hist": hist_every, "samples": sample_every}
    timeline, growth = capacity(64, cadence, planned.step_rows)
    store = RunStore.create(
        folder / "run.zarr",
        layers,
        timeline,
        {},
        dtype,
        64,
        overwrite=True,
        sample=sample_weights(layers, 256, 0),
        growth=growth,
    )
    rec = OpenRecorder(
        store, layers, timeline, params, dtype, device, cadence, max_pending=max_pending
    )
    tau = gmp_threshold(weights, ones_like(weights), 0.5)
    rec.begin_event(
        0,
        0,
        masks,
        flat(weights).abs(),
        [0] * len(layers),
        sparsity_of(masks),
        tau,
        tau,
        float("nan"),
    )
    rec.begin_phase("retrain", 0, 0)
    rec.sync()  # the event's writes are part of setting up, not of the steps timed
    return rec


def _variant(
    name: str,
    folder: Path,
    params,
    masks,
    weights,
    steps: int,
    device: torch.device,
    max_pending: int = 8,
) -> Callback:
    """The callback a variant name stands for (``summary every step``, ``full every 10, log8``,
    ...)."""
    what, _, dtype = name.partition(", ")
    words = what.split()
    every = 1 if words[-1] == "step" else int(words[-1])
    if words[0] == "torch.save":
        return TorchSavePeer(folder, every)
    kw: dict = {
        "summary": {"hist_every": every},
        "sample": {"sample_every": every},
        "full": {"every": every, "dtype": dtype or "float32"},
    }[words[0]]
    return _recorder(folder, params, masks, weights, steps, device, max_pending=max_pending, **kw)


def _writer_held(rec: Recorder) -> Callable[[], float]:
    """Hold ``rec``'s writer back (its queue must be long enough for the whole run); the returned
    function lets it go, closes the store and returns the seconds that took: the writer's work,
    alone on the machine."""
    gate = threading.Event()
    rec.io.submit(gate.wait)

    def release() -> float:
        t0 = time.perf_counter()
        gate.set()
        rec.close("complete")
        return time.perf_counter() - t0

    return release


@dataclass
class _Timings:
    """Per variant: the repeats' wall and own seconds, the seconds on the training thread alone
    (hooks, waits for a full queue included), and the store's bytes."""

    wall: dict[str, list[float]] = field(default_factory=dict)
    own: dict[str, list[float]] = field(default_factory=dict)
    thread: dict[str, list[float]] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, wall: float, own: float, thread: float, size: int) -> None:
        """One repeat of variant ``name``."""
        self.wall.setdefault(name, []).append(wall)
        self.own.setdefault(name, []).append(own)
        self.thread.setdefault(name, []).append(thread)
        self.sizes[name] = size

    def median(self, which: str, name: str) -> float:
        """The median over repeats of ``wall``, ``own`` or ``thread`` seconds of ``name``."""
        return statistics.median(getattr(self, which)[name])


def _time_variant(
    build: Callable[..., Callback | None],
    folder: Path,
    run: Callable[[list[Callback]], float],
) -> tuple[float, float, float, int]:
    """One repeat of one variant in ``folder`` (removed after): (wall, own, training-thread
    seconds, store bytes). A recorder runs twice, the second time with its writer held back until
    training ends (a queue for every write) for its own time."""
    folder.mkdir(parents=True, exist_ok=True)
    cb = build(folder)
    timed = Timed(cb) if cb is not None else None
    elapsed = run([timed] if timed else [])
    seconds = thread = timed.seconds if timed else 0.0
    if isinstance(cb, Recorder):
        t0 = time.perf_counter()
        cb.close("complete")
        elapsed += time.perf_counter() - t0
        size = _folder_bytes(folder)
        shutil.rmtree(folder)
        folder.mkdir()
        held = build(folder, max_pending=1 << 20)
        release = _writer_held(held)
        timed = Timed(held)
        run([timed])
        seconds = timed.seconds + release()
    else:
        size = _folder_bytes(folder)
    shutil.rmtree(folder)
    return elapsed, seconds, thread, size


def _peer_rows(case: Case, t: _Timings) -> list[tuple[str, str, float]]:
    """Our encodings against the hand-written peer: own and training-thread time, bytes."""
    rows = []
    for ours, peer in case.peers:
        for enc in ("float16", "log8"):
            name = ours.replace("float16", enc)
            if name in t.sizes and peer in t.sizes:
                rows.append(
                    (
                        case.label,
                        f"own time: {peer} / {name}",
                        t.median("own", peer) / t.median("own", name),
                    )
                )
                rows.append(
                    (
                        case.label,
                        f"training-thread time: {peer} / {name}",
                        t.median("thread", peer) / t.median("thread", name),
                    )
                )
                if t.sizes[peer]:  # a run shorter than the peer's interval saves nothing
                    size_ratio = t.sizes[name] / t.sizes[peer]
                    rows.append((case.label, f"bytes: {name} / {peer}", size_ratio))
    return rows


def _rows(case: Case, t: _Timings, steps: int, n_weights: int) -> list[tuple[str, str, float]]:
    """The table rows of one case from its timings."""
    base = t.median("wall", "none")
    rows = [(case.label, f"step time without recording (ms, {steps} steps)", 1e3 * base / steps)]
    for name in case.variants:
        rows.append((case.label, f"{name} / none: wall", t.median("wall", name) / base))
        rows.append((case.label, f"{name} / none: own", 1 + t.median("own", name) / base))
    rows += _peer_rows(case, t)
    for name in case.variants:
        if name.startswith("full every step"):
            per = t.sizes[name] / (n_weights * (steps + 1))
            rows.append((case.label, f"bytes per weight-step, {name}", per))
    return rows


def measure(
    case: Case, device: torch.device, repeats: int, steps: int | None = None
) -> list[tuple[str, str, float]]:
    """Rows of (case, measurement, value) for one model."""
    steps = steps or case.steps
    model, params, masks, weights, loader = _setup(
        case.model, case.shape, device, case.batch, steps
    )
    tmp = Path(tempfile.mkdtemp(prefix="shedding-bench-"))
    timings = _Timings()
    make: dict[str, Callable[..., Callback | None]] = {"none": lambda d, **kw: None}
    for name in case.variants:
        make[name] = lambda d, name=name, **kw: _variant(
            name, d, params, masks, weights, steps, device, **kw
        )

    def run(extra: list[Callback]) -> float:
        return _run(model, params, masks, loader, steps, extra, case.mixed_precision)

    _run(model, params, masks, loader, min(steps, 5), [], case.mixed_precision)  # warm-up
    for rep in range(repeats):
        order = list(make)
        # no variant always runs first, or right after the disk-heavy peer
        random.Random(rep).shuffle(order)
        for name in order:
            folder = tmp / name.replace(" ", "_").replace(",", "")
            timings.add(name, *_time_variant(make[name], folder, run))
    shutil.rmtree(tmp, ignore_errors=True)
    n_weights = sum(p.numel() for p in params.values())
    return _rows(case, timings, steps, n_weights)


def _positive(text: str) -> int:
    """An argparse type: a whole number of at least 1 (argparse turns the error into one line, exit
    2)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _shape(text: str) -> tuple[int, int, int]:
    """An argparse type: an input shape as channels,height,width."""
    try:
        c, h, w = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not C,H,W") from None
    if min(c, h, w) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not C,H,W with each at least 1")
    return c, h, w


def select_variants(names: list[str], wanted: list[str] | None) -> dict[str, list[str]]:
    """The variants to time in each case of ``names``: all of them, or those ``wanted`` names, each
    either a variant (kept in every case that has it) or ``CASE:VARIANT`` (kept in that case).
    Raises ValueError naming a wanted variant that none of the cases has, or a case left with
    none."""
    if not wanted:
        return {n: list(CASES[n].variants) for n in names}
    chosen: dict[str, list[str]] = {}
    used: set[str] = set()
    for n in names:
        keep = []
        for v in CASES[n].variants:
            hits = {w for w in wanted if w == v or w == f"{n}:{v}"}
            used |= hits
            if hits:
                keep.append(v)
        if not keep:
            raise ValueError(
                f"--variants: none of them is timed in case {n} "
                f"(it has: {', '.join(CASES[n].variants)})"
            )
        chosen[n] = keep
    unused = [w for w in wanted if w not in used]
    if unused:
        raise ValueError(
            f"--variants: {', '.join(map(repr, unused))} is in none of the cases {', '.join(names)}"
        )
    return chosen


def _write_json(path: Path, meta: dict, rows: list[dict]) -> None:
    """The table so far as JSON (written after each case, so a run stopped by a time limit keeps its
    rows)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({**meta, "rows": rows}, indent=1))
    os.replace(tmp, path)


def _parser() -> argparse.ArgumentParser:
    """The command line options."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--steps", type=_positive, default=None, help="steps per run (default: each case's own)"
    )
    ap.add_argument("--repeats", type=_positive, default=3)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument(
        "--cases",
        nargs="+",
        choices=sorted(CASES),
        default=None,
        help=f"models to time (default: {' '.join(CPU_CASES)} on CPU, "
        f"{' '.join(GPU_CASES)} on CUDA)",
    )
    ap.add_argument(
        "--variants",
        nargs="+",
        default=None,
        metavar="[CASE:]VARIANT",
        help="time only these variants (names as in the table, e.g. 'summary every step' or "
        "'resnet50:full every 100, float16'); the run without recording is always timed",
    )
    ap.add_argument(
        "--model", default=None, help="time the cases' variants on this model instead (a stand-in)"
    )
    ap.add_argument(
        "--shape", type=_shape, default=None, help="with --model: its input shape C,H,W"
    )
    ap.add_argument(
        "--batch", type=_positive, default=None, help="batch size (default: each case's own)"
    )
    ap.add_argument("--json", type=Path, default=None, help="also write the rows to this JSON file")
    return ap


def _checked(
    ap: argparse.ArgumentParser, args: argparse.Namespace
) -> tuple[torch.device, list[str]]:
    """The device and the case names, or a one-line usage error (exit 2)."""
    try:
        device = torch.device(args.device)
    except RuntimeError:
        ap.error(f"--device: {args.device!r} is not a torch device (cpu, cuda, cuda:N)")
    if device.type == "cuda" and not torch.cuda.is_available():
        ap.error("--device: CUDA is not available on this machine")
    if (args.model is None) != (args.shape is None):
        ap.error("--model and --shape go together")
    return device, args.cases or (GPU_CASES if device.type == "cuda" else CPU_CASES)


def _case(name: str, variants: list[str], args: argparse.Namespace) -> Case:
    """Case ``name`` with the chosen variants, on the stand-in model and batch size if given."""
    case = dataclasses.replace(CASES[name], variants=variants)
    if args.model:
        case = dataclasses.replace(case, model=args.model, shape=args.shape, stands_for=name)
    if args.batch:
        case = dataclasses.replace(case, batch=args.batch)
    return case


def main() -> None:
    """Parse options, measure every case, print the table."""
    ap = _parser()
    args = ap.parse_args()
    device, names = _checked(ap, args)
    try:
        variants = select_variants(names, args.variants)
    except ValueError as e:
        ap.error(str(e))
    name_of = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(
        f"device: {device} ({name_of}, {torch.get_num_threads()} threads); "
        f"median of {args.repeats} interleaved repeats",
        flush=True,
    )
    meta = {
        "device": str(device),
        "device_name": name_of,
        "repeats": args.repeats,
        "torch": torch.__version__,
    }
    table: list[dict] = []
    for name in names:  # each case's rows as soon as they are measured
        case = _case(name, variants[name], args)
        for label, what, value in measure(case, device, args.repeats, args.steps):
            print(f"{label:<40}  {what:<72}  {value:8.3f}", flush=True)
            table.append(
                {
                    "case": name,
                    "label": label,
                    "what": what,
                    "value": value if math.isfinite(value) else None,
                }
            )
        if args.json:
            _write_json(args.json, meta, table)


if __name__ == "__main__":
    main()
