"""Record your own PyTorch loop with ``shedding.watch``: a pruned run and its control on digits.

    python examples/own_loop.py [OUT_DIR] [EPOCHS]   # writes OUT_DIR/{gmp,control}-s0.zarr
    shedding analyze OUT_DIR/gmp-s0.zarr OUT_DIR/control-s0.zarr

Plain PyTorch: a small MLP on scikit-learn's bundled 8x8 digits, SGD with momentum, pruned once with
``torch.nn.utils.prune`` (global L1, 50%) and retrained. The control is the same run (same seed,
same data order) whose prune event prunes nothing and records the 50% line.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch.nn.utils import prune

import shedding


def data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Digits as flat standardised vectors: 1,437 to train, 360 to test."""
    d = load_digits()
    x = torch.tensor(d.data, dtype=torch.float32)
    x = (x - x.mean()) / x.std()
    y = torch.tensor(d.target)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    x, y = x[order], y[order]
    return x[:1437], y[:1437], x[1437:], y[1437:]


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def run(out: Path, pruned: bool, seed: int = 0, epochs: int = 6) -> Path:
    """Train ``epochs``, prune (or not), retrain ``epochs``; recorded into ``out``."""
    torch.manual_seed(seed)
    xtr, ytr, xte, yte = data()
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    order = torch.Generator().manual_seed(seed)
    name = f"{'gmp' if pruned else 'control'}-s{seed}"
    path = out / f"{name}.zarr"
    condition = "gmp-0.5" if pruned else "control"
    with shedding.watch(
        model, path, optimizer=opt, seed=seed, condition=condition, overwrite=True
    ) as rec:
        for phase in ("train", "retrain"):
            if phase == "retrain":
                if pruned:
                    layers = [(model[0], "weight"), (model[2], "weight")]
                    prune.global_unstructured(layers, prune.L1Unstructured, amount=0.5)
                rec.prune_event(sparsity=0.5, test_accuracy=accuracy(model, xte, yte))
            for _ in range(epochs):
                for idx in torch.randperm(len(ytr), generator=order).split(32):
                    loss = torch.nn.functional.cross_entropy(model(xtr[idx]), ytr[idx])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    rec.log(loss=loss)
                rec.epoch(train_loss=loss.item(), test_accuracy=accuracy(model, xte, yte))
        rec.round_end(accuracy(model, xte, yte))
    print(f"{name}: test accuracy {accuracy(model, xte, yte):.3f} -> {path}")
    return path


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/own_loop")
    epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 6  # before and after the prune event
    out.mkdir(parents=True, exist_ok=True)
    np.seterr(all="ignore")
    run(out, pruned=True, epochs=epochs)
    run(out, pruned=False, epochs=epochs)


if __name__ == "__main__":
    main()
