"""Recording overhead: training-step time with the recorder against the same loop without it.

Run: ``python -m benchmarks.recording_overhead [--steps N] [--repeats R] [--device cpu|cuda]``.
Prints one table of ratios measured in this run (machines are shared and noisy: only ratios are
reported, each the median over interleaved repeats). Also compares the store's bytes and the recorder's
added time with the hand-written peer, ``torch.save(model.state_dict())`` at the same interval.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.data import TensorDataset

from shedding.data.loader import BatchLoader
from shedding.models import build_model
from shedding.models.prunable import prunable_parameters
from shedding.pruning import PRUNERS
from shedding.pruning.masks import apply_masks, flat, gmp_threshold, ones_like, sparsity_of
from shedding.recording.layout import build_layers, build_timeline, sample_weights
from shedding.recording.recorder import Recorder
from shedding.recording.store import RunStore
from shedding.training.callbacks import MaskCallback
from shedding.training.loop import Callback, TrainState, train
from shedding.training.schedules import constant

CASES = [("small_cnn", (1, 8, 8), 128), ("resnet20", (3, 32, 32), 128)]  # (model, input shape, batch)
NOISE = 0.02  # added times under 2% of the baseline are reported as noise, not divided


def _folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


class TorchSavePeer(Callback):
    """What users write by hand: ``torch.save(model.state_dict())`` every ``every`` steps."""

    def __init__(self, folder: Path, every: int) -> None:
        self.folder, self.every = folder, every

    def on_step_end(self, state: TrainState) -> None:
        if state.step % self.every == 0:
            torch.save(state.model.state_dict(), self.folder / f"step_{state.step}.pt")


def _setup(model_name: str, shape: tuple[int, int, int], device: torch.device, batch: int, steps: int):
    torch.manual_seed(0)
    n = batch * steps
    data = TensorDataset(torch.randn(n, *shape), torch.randint(0, 10, (n,)))
    loader = BatchLoader(data, batch, True, 0, device)
    model = build_model(model_name, shape[0], 10, shape[1:]).to(device)
    params = prunable_parameters(model)
    weights = {k: p.detach().clone() for k, p in params.items()}
    masks = PRUNERS.get("gmp")(weights, ones_like(weights), 0.5, None, torch.Generator())
    apply_masks(params, masks)
    return model, params, masks, weights, loader


def _run(model, params, masks, loader, steps: int, extra: list[Callback]) -> float:
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    callbacks: list[Callback] = [MaskCallback(params, masks), *extra]
    if loader.device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    train(model, loader, opt, constant(0.01), steps, callbacks)
    if loader.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def _recorder(folder: Path, params, masks, weights, steps: int, device: torch.device, every: int = 0,
              dtype: str = "float32", hist_every: int = 0, sample_every: int = 0) -> Recorder:
    layers = build_layers([(k, tuple(p.shape)) for k, p in params.items()])
    timeline = build_timeline(steps, steps, 1, every, steps, False, hist_every, sample_every)
    store = RunStore.create(folder / "run.zarr", layers, timeline, {}, dtype, 64, overwrite=True,
                            sample=sample_weights(layers, 256, 0))
    rec = Recorder(store, layers, timeline, params, dtype, device)
    tau = gmp_threshold(weights, ones_like(weights), 0.5)
    rec.begin_event(0, 0, masks, flat(weights).abs(), [0] * len(layers), sparsity_of(masks), tau, tau, float("nan"))
    rec.begin_phase("retrain", 0, 0)
    return rec


def measure(model_name: str, shape: tuple[int, int, int], device: torch.device, steps: int, repeats: int,
            batch: int) -> list[tuple[str, str, float]]:
    """Rows of (case, measurement, value) for one model."""
    model, params, masks, weights, loader = _setup(model_name, shape, device, batch, steps)
    tmp = Path(tempfile.mkdtemp(prefix="shedding-bench-"))
    times: dict[str, list[float]] = {}
    sizes: dict[str, int] = {}
    def rec(**kw):
        return lambda d: [_recorder(d, params, masks, weights, steps, device, **kw)]

    variants: dict[str, Callable[[Path], list[Callback]]] = {
        "none": lambda d: [],
        "summary every step": rec(hist_every=1),
        "sample every step": rec(sample_every=1),
        "full every step, float32": rec(every=1),
        "full every step, float16": rec(every=1, dtype="float16"),
        "full every step, log8": rec(every=1, dtype="log8"),
        "full every 10, float16": rec(every=10, dtype="float16"),
        "full every 10, log8": rec(every=10, dtype="log8"),
        "torch.save every 10": lambda d: [TorchSavePeer(d, 10)],
    }
    _run(model, params, masks, loader, min(steps, 5), [])  # warm-up
    for _ in range(repeats):
        for name, make in variants.items():
            folder = tmp / name.replace(" ", "_")
            folder.mkdir(parents=True, exist_ok=True)
            extra = make(folder)
            elapsed = _run(model, params, masks, loader, steps, extra)
            for cb in extra:
                if isinstance(cb, Recorder):
                    t0 = time.perf_counter()
                    cb.close("complete")
                    elapsed += time.perf_counter() - t0
            times.setdefault(name, []).append(elapsed)
            sizes[name] = _folder_bytes(folder)
            shutil.rmtree(folder)
    shutil.rmtree(tmp, ignore_errors=True)
    base = statistics.median(times["none"])
    case = f"{model_name} {'x'.join(map(str, shape))} b{batch}"
    n_weights = sum(p.numel() for p in params.values())
    rows = [(case, f"{name} / none (step time)", statistics.median(t) / base) for name, t in times.items()
            if name != "none"]
    ours = statistics.median(times["full every 10, float16"]) - base
    peer = statistics.median(times["torch.save every 10"]) - base
    ratio = peer / ours if min(ours, peer) > NOISE * base else float("nan")  # nan: below the noise
    rows.append((case, "added time: torch.save / ours (full every 10, float16)", ratio))
    for enc in ("float16", "log8"):
        rows.append((case, f"bytes: ours / torch.save (full every 10, {enc})",
                     sizes[f"full every 10, {enc}"] / sizes["torch.save every 10"]))
    for enc in ("float32", "float16", "log8"):
        rows.append((case, f"bytes per weight-step, full every step, {enc}",
                     sizes[f"full every step, {enc}"] / (n_weights * (steps + 1))))
    return rows


def main() -> None:
    """Parse options, measure every case, print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    device = torch.device(args.device)
    print(f"device: {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else 'CPU'}, "
          f"{torch.get_num_threads()} threads); {args.steps} steps, median of {args.repeats} interleaved repeats")
    rows = []
    for model_name, shape, batch in CASES:
        rows += measure(model_name, shape, device, args.steps, args.repeats, batch)
    width = max(len(r[0]) for r in rows)
    mwidth = max(len(r[1]) for r in rows)
    for case, what, value in rows:
        shown = "below noise" if value != value else f"{value:8.3f}"
        print(f"{case:<{width}}  {what:<{mwidth}}  {shown:>11}")


if __name__ == "__main__":
    main()
