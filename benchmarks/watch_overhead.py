"""``shedding.watch`` overhead: a plain PyTorch loop with and without a watch, as ratios.

Run: ``python -m benchmarks.watch_overhead [--model resnet20] [--steps N] [--repeats R]
[--batch B] [--device cpu|cuda]``. The loop retrains a model pruned once (50% global L1 with
``torch.nn.utils.prune``, so both loops pay for ``weight_orig * weight_mask`` in the forward) on
synthetic CIFAR-shaped data. Variants: no recording; a watch recording the summary profile (shed
counts, loss, LR) every step; a watch recording every weight's magnitude every step as float16
(the ``full`` profile). Two ratios, each the median over repeats (the variants interleaved in a
shuffled order within each repeat): **wall**, a variant's wall time (store creation and closing
included) over the unrecorded loop's; **steps**, 1 + the time the watch spent recording steps on the
training thread (``Watch.step_seconds``: the hooks, waits on a full writer queue included, not the
writer thread's compression) over the unrecorded loop's, which stays readable when the machine's
noise exceeds the overhead. Only ratios are printed: the machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch.nn.utils import prune

import shedding
from shedding.models import build_model

VARIANTS = {
    "none": None,
    "summary every step": {"profile": "summary"},
    "full every step, float16": {"profile": "full", "every": 1, "dtype": "float16"},
}


def _pruned_model(name: str, device: torch.device) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(name, 3, 10, (32, 32)).to(device)
    layers = [
        (m, "weight") for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))
    ]
    prune.global_unstructured(layers, pruning_method=prune.L1Unstructured, amount=0.5)
    return model


def _run(args: argparse.Namespace, variant: str, out: Path) -> tuple[float, float]:
    """Seconds for ``args.steps`` updates (after 2 warm-up updates) with ``variant``, and the
    seconds the watch spent recording steps on the training thread."""
    device = torch.device(args.device)
    model = _pruned_model(args.model, device)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(args.batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)

    def update() -> torch.Tensor:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    for _ in range(2):
        update()
    sync = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    sync()
    kwargs = VARIANTS[variant]
    t0 = time.perf_counter()
    own = 0.0
    if kwargs is None:
        for _ in range(args.steps):
            update()
    else:
        rec = shedding.watch(model, out / "run.zarr", optimizer=opt, overwrite=True, **kwargs)
        rec.prune_event()  # the masks torch.nn.utils.prune made: retraining from here
        for _ in range(args.steps):
            rec.log(loss=update())
        rec.close()
        own = rec.step_seconds
    sync()
    return time.perf_counter() - t0, own


def main() -> None:
    """Print each variant's median wall-time ratio over the unrecorded loop."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    own: dict[str, list[float]] = {v: [] for v in VARIANTS}
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            order = list(VARIANTS)
            rng.shuffle(order)
            for v in order:
                wall, hooks = _run(args, v, Path(tmp))
                times[v].append(wall)
                own[v].append(hooks)
    base = statistics.median(times["none"])
    print(
        f"watch overhead: {args.model}, batch {args.batch}, {args.steps} steps, {args.device}, "
        f"median of {args.repeats} repeats (wall time ratio to the loop without a watch)"
    )
    print(f"  {'variant':<28} {'wall':>6} {'steps':>6}")
    for v in VARIANTS:
        if v != "none":
            wall = statistics.median(times[v]) / base
            steps = 1 + statistics.median(own[v]) / base
            print(f"  {v:<28} {wall:6.3f} {steps:6.3f}")
    print("  wall: the run's wall time, closing the store included, over the loop's alone;")
    print("  steps: 1 + the time spent recording steps on the training thread over the loop's")
    print(f"  (the loop alone: {base / args.steps * 1000:.0f} ms a step)")


if __name__ == "__main__":
    main()
