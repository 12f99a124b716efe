"""The Lightning callback (shedding.integrations.lightning) on real CPU fits of a tiny module:
ModelPruning's pruning becomes a prune event whose masks, line and pre-prune magnitudes match an
independent torch computation, whatever the order of the callbacks; steps, losses and epochs match
what the trainer did."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from torch.nn.utils import prune

pl = pytest.importorskip("lightning.pytorch")

from lightning.pytorch.callbacks import Callback, ModelPruning  # noqa: E402

from shedding.analysis.io import open_run  # noqa: E402
from shedding.integrations.lightning import ShedCallback  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("net.0.weight", "net.2.weight")
BATCHES = 4  # per epoch: 64 examples, batch 16


class Tiny(pl.LightningModule):
    """Two Linear layers on random data; logs train/val loss and accuracy each epoch."""

    def __init__(self, prune_at: tuple[int, ...] = (), fail_at: int | None = None) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)
        )
        self.prune_at, self.fail_at = prune_at, fail_at

    def training_step(self, batch: list[torch.Tensor], index: int) -> torch.Tensor:
        if self.fail_at is not None and self.global_step == self.fail_at:
            raise RuntimeError("boom")
        x, y = batch
        out = self.net(x)
        loss = torch.nn.functional.cross_entropy(out, y)
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        self.log("train_acc", (out.argmax(1) == y).float().mean(), on_epoch=True)
        return loss

    def validation_step(self, batch: list[torch.Tensor], index: int) -> None:
        x, y = batch
        out = self.net(x)
        self.log("val_loss", torch.nn.functional.cross_entropy(out, y))
        self.log("val_acc", (out.argmax(1) == y).float().mean())

    def on_train_epoch_end(self) -> None:
        """Pruning in the module itself (no ModelPruning): 50% of the remaining weights."""
        if self.current_epoch in self.prune_at:
            pairs = [(self.net[0], "weight"), (self.net[2], "weight")]
            prune.global_unstructured(pairs, pruning_method=prune.L1Unstructured, amount=0.5)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-3)


class Probe(Callback):
    """Takes what the test compares against: the step losses, the validation metrics, and the
    weights and masks at the end of epoch ``at`` (placed before ModelPruning: the trained
    weights; after it: the pruned, possibly reset, ones)."""

    def __init__(self, at: int = 1) -> None:
        self.at, self.losses, self.val_acc, self.weights, self.masks = at, [], [], {}, {}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        self.losses.append(float(outputs["loss"]))

    def on_train_epoch_end(self, trainer, pl_module) -> None:  # noqa: ANN001
        self.val_acc.append(float(trainer.callback_metrics["val_acc"]))
        if trainer.current_epoch == self.at:
            for name in LAYERS:
                layer = pl_module.get_submodule(name.removesuffix(".weight"))
                mask = getattr(layer, "weight_mask", torch.ones_like(layer.weight))
                orig = getattr(layer, "weight_orig", layer.weight)
                self.weights[name] = (orig * mask).detach().clone()
                self.masks[name] = mask.detach().bool().clone()


def loaders() -> tuple[torch.utils.data.DataLoader, torch.utils.data.DataLoader]:
    g = torch.Generator().manual_seed(0)
    data = torch.utils.data.TensorDataset(
        torch.randn(64, 8, generator=g), torch.randint(0, 3, (64,), generator=g)
    )
    return (
        torch.utils.data.DataLoader(data, batch_size=16),
        torch.utils.data.DataLoader(data, batch_size=16),
    )


def fit(module: Tiny, callbacks: list[Callback], epochs: int = 3) -> pl.Trainer:
    trainer = pl.Trainer(
        max_epochs=epochs,
        callbacks=callbacks,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
    )
    trainer.fit(module, *loaders())
    return trainer


def store_masks(ds: xr.Dataset, event: int) -> dict[str, np.ndarray]:
    """The event's masks from the store, cut into layers by its layer coordinates."""
    flat = np.asarray(ds["mask"].isel(event=event).values).astype(bool)
    out = {}
    for name, start, size, shape in zip(
        ds.layer.values,
        ds.layer_start.values,
        ds.layer_size.values,
        ds.layer_shape.values,
        strict=True,
    ):
        dims = tuple(int(d) for d in str(shape).split("x"))
        out[str(name)] = flat[int(start) : int(start) + int(size)].reshape(dims)
    return out


def torch_global_l1(weights: dict[str, torch.Tensor], amount: float) -> dict[str, np.ndarray]:
    """The oracle: torch's global L1 pruning of copies of ``weights``."""
    layers = {k: torch.nn.Linear(w.shape[1], w.shape[0]) for k, w in weights.items()}
    for k, layer in layers.items():
        layer.weight.data.copy_(weights[k])
    pairs = [(layer, "weight") for layer in layers.values()]
    prune.global_unstructured(pairs, pruning_method=prune.L1Unstructured, amount=amount)
    return {k: layer.weight_mask.bool().numpy() for k, layer in layers.items()}


def gmp_tau(weights: dict[str, torch.Tensor], pruned: int) -> float:
    """Independently: the midpoint between the largest removed and smallest kept |w|."""
    scores = np.sort(np.concatenate([w.abs().double().numpy().ravel() for w in weights.values()]))
    return float((scores[pruned - 1] + scores[pruned]) / 2)


@pytest.mark.parametrize("shed_first", [True, False], ids=["shed-first", "pruning-first"])
def test_model_pruning_event_matches_torch(tmp_path: Path, shed_first: bool) -> None:
    """One ModelPruning call at the end of epoch 1: one event after exactly two epochs of steps,
    its masks the modules' weight_mask buffers and torch's global L1 pruning of the trained
    weights, its line and pre-prune magnitudes from those weights; steps, losses, LR and epoch
    metrics as the trainer had them. The same store whichever callback comes first."""
    torch.manual_seed(0)
    pruning = ModelPruning(
        "l1_unstructured",
        amount=0.5,
        apply_pruning=lambda epoch: epoch == 1,
        parameter_names=["weight"],
        use_lottery_ticket_hypothesis=False,
        make_pruning_permanent=False,
    )
    shed = ShedCallback(tmp_path / "run.zarr", seed=3, condition="mp", dtype="float32")
    probe = Probe(at=1)
    module = Tiny()
    order = [shed, pruning] if shed_first else [pruning, shed]
    trainer = fit(module, [probe, *order])

    ds = open_run(tmp_path / "run.zarr")
    assert ds.attrs["status"] == "complete" and ds.attrs["seed"] == 3
    assert ds.attrs["condition"] == "mp" and ds.attrs["control"] is False
    assert ds.sizes["step"] == trainer.global_step == 3 * BATCHES
    assert ds.sizes["event"] == 1 and int((ds.step <= 0).sum()) == 2 * BATCHES

    masks = store_masks(ds, 0)
    oracle = torch_global_l1(probe.weights, 0.5)
    for name in LAYERS:
        buffer = module.get_submodule(name.removesuffix(".weight")).weight_mask.bool().numpy()
        np.testing.assert_array_equal(masks[name], buffer)
        np.testing.assert_array_equal(masks[name], oracle[name])
    pruned = sum(int((~m).sum()) for m in masks.values())
    assert float(ds.event_tau[0]) == pytest.approx(gmp_tau(probe.weights, pruned), rel=1e-12)
    trained = np.concatenate([probe.weights[k].abs().numpy().ravel() for k in LAYERS])
    np.testing.assert_array_equal(ds.pre_prune_magnitude.isel(event=0).values, trained)

    np.testing.assert_allclose(ds.loss.values, probe.losses, rtol=1e-6)
    np.testing.assert_allclose(ds.lr.values, 0.1)
    np.testing.assert_array_equal(ds.epoch.values, [-1, 0, 1])
    per_epoch = np.asarray(probe.losses).reshape(3, BATCHES).mean(axis=1)
    np.testing.assert_allclose(ds.train_loss.values, per_epoch, rtol=1e-5)
    np.testing.assert_allclose(ds.test_accuracy.values, probe.val_acc, rtol=1e-6)
    assert float(ds.event_final_test_accuracy[0]) == pytest.approx(probe.val_acc[-1])


@pytest.fixture(scope="module")
def lottery(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """ModelPruning's defaults: biases pruned too, the survivors reset to their initial values
    (lottery ticket) right after pruning, and the pruning made permanent at the end."""
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("lottery") / "run.zarr"
    module = Tiny()
    initial = {k: module.get_parameter(k).detach().clone() for k in LAYERS}
    pruning = ModelPruning("l1_unstructured", amount=0.5, apply_pruning=lambda e: e == 1)
    trained, after = Probe(at=1), Probe(at=1)
    shed = ShedCallback(path, profile="full", dtype="float32")
    fit(module, [trained, shed, pruning, after])
    return {"ds": open_run(path), "initial": initial, "trained": trained, "after": after}


def test_lottery_ticket_reset_is_where_retraining_starts(lottery: dict) -> None:
    """The event is recorded after ModelPruning reset the survivors: its masks are the buffers
    right after pruning, its recorded magnitudes the initial weights times the mask, and the
    buffers vanishing at the end (make_pruning_permanent) is no second event."""
    ds, after = lottery["ds"], lottery["after"]
    assert ds.sizes["event"] == 1 and ds.attrs["status"] == "complete"
    masks = store_masks(ds, 0)
    for name in LAYERS:
        np.testing.assert_array_equal(masks[name], after.masks[name].numpy())
        np.testing.assert_array_equal(
            after.weights[name].numpy(), (lottery["initial"][name] * after.masks[name]).numpy()
        )
    start = np.concatenate([after.weights[k].abs().numpy().ravel() for k in LAYERS])
    np.testing.assert_array_equal(ds.magnitude.sel(record_step=0).values, start)


def test_lottery_ticket_line_from_trained_weights(lottery: dict) -> None:
    """The line and pre-prune magnitudes are those of the trained weights the masks were
    computed from, not of the reset ones."""
    ds, trained = lottery["ds"], lottery["trained"]
    masks = store_masks(ds, 0)
    pruned = sum(int((~m).sum()) for m in masks.values())
    assert float(ds.event_tau[0]) == pytest.approx(gmp_tau(trained.weights, pruned), rel=1e-12)
    pre = np.concatenate([trained.weights[k].abs().numpy().ravel() for k in LAYERS])
    np.testing.assert_array_equal(ds.pre_prune_magnitude.isel(event=0).values, pre)


def test_pruning_in_the_module_is_noticed(tmp_path: Path) -> None:
    """torch.nn.utils.prune called by the module itself (twice, iteratively) is two events at
    the next steps; each event's masks are the buffers then."""
    torch.manual_seed(2)
    seen: list[dict[str, np.ndarray]] = []

    class Masks(Callback):
        def on_train_epoch_start(self, trainer, pl_module) -> None:  # noqa: ANN001
            if trainer.current_epoch in (1, 2):
                seen.append({k: pl_module.get_buffer(f"{k}_mask").bool().numpy() for k in LAYERS})

    trainer = fit(Tiny(prune_at=(0, 1)), [ShedCallback(tmp_path / "run.zarr"), Masks()])
    ds = open_run(tmp_path / "run.zarr")
    assert ds.sizes["event"] == 2 and ds.sizes["step"] == trainer.global_step
    np.testing.assert_array_equal(ds.event_step.values, [0, BATCHES])
    assert int((ds.step <= 0).sum()) == BATCHES
    for event, expected in enumerate(seen):
        masks = store_masks(ds, event)
        for name in LAYERS:
            np.testing.assert_array_equal(masks[name], expected[name])
    np.testing.assert_allclose(ds.event_sparsity.values, [0.5, 0.75], atol=1 / 176)


def test_control_event_and_failure(tmp_path: Path) -> None:
    """prune_event(sparsity=) from a hook is a control's event (nothing pruned, the 50% line),
    recorded after the epoch's row; an exception closes the store as failed with the steps made."""

    class Control(Callback):
        def __init__(self, shed: ShedCallback) -> None:
            self.shed = shed

        def on_train_epoch_end(self, trainer, pl_module) -> None:  # noqa: ANN001
            if trainer.current_epoch == 0:
                self.shed.prune_event(sparsity=0.5)

    torch.manual_seed(3)
    shed = ShedCallback(tmp_path / "control.zarr", condition="control")
    module = Tiny(fail_at=6)
    with pytest.raises(RuntimeError, match="boom"):
        fit(module, [Control(shed), shed])
    ds = xr.open_zarr(tmp_path / "control.zarr")
    assert ds.attrs["status"] == "failed" and ds.attrs["control"] is True
    assert ds.sizes["step"] == 6 and ds.sizes["event"] == 1
    assert int(ds.event_pruned.sum()) == 0 and float(ds.event_sparsity[0]) == 0.0
    assert ds.attrs["line_sparsity"] == 0.5
    np.testing.assert_array_equal(ds.epoch.values, [0])
    np.testing.assert_array_equal(ds.epoch_step.values, [0])


def test_example_runs(tmp_path: Path) -> None:
    """examples/lightning_pruning.py records a pruned run and its control that plain xarray
    opens."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "lightning_pruning.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    pruned = xr.open_zarr(tmp_path / "pruned.zarr")
    control = xr.open_zarr(tmp_path / "control.zarr")
    assert pruned.attrs["status"] == control.attrs["status"] == "complete"
    assert control.attrs["control"] is True and pruned.attrs["control"] is False
    assert pruned.sizes["event"] == control.sizes["event"] == 1
    assert pruned.sizes["step"] == control.sizes["step"]
    assert float(pruned.event_sparsity[0]) == pytest.approx(0.5, abs=1e-3)
    assert float(control.event_line[0]) > 0


def test_not_needed_by_import_shedding() -> None:
    """``import shedding`` (and shedding.watch) loads neither lightning nor transformers."""
    code = (
        "import sys, shedding; shedding.watch; "
        "print(any(m.split('.')[0] in ('lightning', 'transformers', 'pytorch_lightning') "
        "for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
