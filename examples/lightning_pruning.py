"""Record a Lightning fit that Lightning's ``ModelPruning`` prunes, and its control.

A small MLP learns the 8x8 digits bundled with scikit-learn (no download) for 6 epochs on the CPU.
At the end of epoch 2, ``ModelPruning`` removes the 50% smallest weights globally; the survivors
keep training (fine-tuning). ``ShedCallback`` records the fit into ``pruned.zarr``: every step,
the prune event (its masks are the ``weight_mask`` buffers ModelPruning made) and the epochs.
The control run trains the same way from the same seed without pruning; at the same point it
records an event that prunes nothing but draws the 50% GMP line, so that ``shedding analyze``
can tell what pruning added to the shedding that retraining alone causes.

    python examples/lightning_pruning.py [OUT_DIR]      # a few seconds; then:
    shedding analyze OUT_DIR/pruned.zarr OUT_DIR/control.zarr

Needs ``pip install shedding[lightning]``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import lightning.pytorch as pl
import torch
import xarray as xr
from lightning.pytorch.callbacks import Callback, ModelPruning
from sklearn.datasets import load_digits

from shedding.integrations.lightning import ShedCallback

PRUNE_AT = 2  # the epoch at whose end the pruned run is pruned (and the control's line drawn)
EPOCHS = 6
SEED = 0


class Digits(pl.LightningModule):
    """A 64-32-10 MLP, SGD with momentum and weight decay (which makes small weights shed)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10)
        )

    def training_step(self, batch: list[torch.Tensor], index: int) -> torch.Tensor:
        x, y = batch
        out = self.net(x)
        loss = torch.nn.functional.cross_entropy(out, y)
        self.log("train_loss", loss, on_epoch=True)
        self.log("train_acc", (out.argmax(1) == y).float().mean(), on_epoch=True)
        return loss

    def validation_step(self, batch: list[torch.Tensor], index: int) -> None:
        x, y = batch
        out = self.net(x)
        self.log("val_loss", torch.nn.functional.cross_entropy(out, y))
        self.log("val_acc", (out.argmax(1) == y).float().mean())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-3)


class ControlLine(Callback):
    """The control's event: nothing pruned, the line of 50% GMP, at the pruned run's epoch."""

    def __init__(self, shed: ShedCallback) -> None:
        self.shed = shed

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == PRUNE_AT:
            self.shed.prune_event(sparsity=0.5)


def loaders() -> tuple[torch.utils.data.DataLoader, torch.utils.data.DataLoader]:
    """Digits, 1,500 to train on and the rest to validate on (scaled to [0, 1])."""
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    train = torch.utils.data.TensorDataset(x[:1500], y[:1500])
    test = torch.utils.data.TensorDataset(x[1500:], y[1500:])
    gen = torch.Generator().manual_seed(SEED)
    return (
        torch.utils.data.DataLoader(train, batch_size=128, shuffle=True, generator=gen),
        torch.utils.data.DataLoader(test, batch_size=512),
    )


def fit(callbacks: list[Callback]) -> None:
    """One fit from the same seed."""
    pl.seed_everything(SEED, verbose=False)
    trainer = pl.Trainer(
        max_epochs=EPOCHS,
        callbacks=callbacks,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
    )
    trainer.fit(Digits(), *loaders())


def main(out: Path) -> None:
    """The pruned run and its control, then a line about each store (read with xarray)."""
    out.mkdir(parents=True, exist_ok=True)
    pruning = ModelPruning(
        "l1_unstructured",
        amount=0.5,
        apply_pruning=lambda epoch: epoch == PRUNE_AT,
        parameter_names=["weight"],  # weights only (the default prunes biases too)
        use_lottery_ticket_hypothesis=False,  # keep the trained survivors (fine-tuning)
    )
    pruned = ShedCallback(out / "pruned.zarr", seed=SEED, condition="gmp-0.5", overwrite=True)
    fit([pruned, pruning])
    control = ShedCallback(
        out / "control.zarr", seed=SEED, condition="control", control=True, overwrite=True
    )
    fit([control, ControlLine(control)])
    for name in ("pruned", "control"):
        ds = xr.open_zarr(out / f"{name}.zarr")
        eligible = int(ds.event_eligible.isel(event=0).sum())
        shed = int(ds.shed_count.isel(step=-1).sum()) / max(eligible, 1)
        print(
            f"{name}: {ds.sizes['step']} steps, event sparsity "
            f"{float(ds.event_sparsity[0]):.2f}, at the end {shed:.1%} of the survivors that "
            "were above the line are below it"
        )
    print(f"next: shedding analyze {out / 'pruned.zarr'} {out / 'control.zarr'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()))
