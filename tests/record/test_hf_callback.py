"""The Hugging Face callback (shedding.integrations.hf) on real CPU runs of a one-layer GPT-2 built
from its config (no download): its Conv1D weights are watched; torch.nn.utils.prune between two
``train()`` calls, or inside training, or an explicit ``prune_event`` is an event whose masks, line
and pre-prune magnitudes match an independent computation; steps, losses, LR and epochs match the
trainer's log."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import xarray as xr
from torch.nn.utils import prune

transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")  # the Trainer needs it (transformers[torch])

from shedding.analysis.io import open_run  # noqa: E402
from shedding.integrations.hf import ShedTrainerCallback  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CONV1D = (
    "transformer.h.0.attn.c_attn.weight",
    "transformer.h.0.attn.c_proj.weight",
    "transformer.h.0.mlp.c_fc.weight",
    "transformer.h.0.mlp.c_proj.weight",
)
STEPS_PER_EPOCH = 4  # 32 sequences, batch 8


class Tokens(torch.utils.data.Dataset):
    """32 random sequences of 16 token ids; the labels are the inputs (language modelling)."""

    def __init__(self, seed: int = 0) -> None:
        self.ids = torch.randint(0, 50, (32, 16), generator=torch.Generator().manual_seed(seed))

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


def gpt2(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    config = transformers.GPT2Config(n_layer=1, n_head=2, n_embd=16, vocab_size=50, n_positions=16)
    return transformers.GPT2LMHeadModel(config)


def trainer_for(model: torch.nn.Module, out: Path, callbacks: list, max_steps: int) -> Any:
    args = transformers.TrainingArguments(
        output_dir=str(out),
        max_steps=max_steps,
        per_device_train_batch_size=8,
        per_device_eval_batch_size=8,
        learning_rate=1e-2,
        weight_decay=1e-2,
        logging_steps=1,
        eval_strategy="epoch",
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
        seed=0,
    )
    return transformers.Trainer(
        model=model,
        args=args,
        train_dataset=Tokens(0),
        eval_dataset=Tokens(1),
        callbacks=callbacks,
    )


def conv1d_pairs(model: torch.nn.Module) -> list[tuple[torch.nn.Module, str]]:
    return [(m, "weight") for m in model.modules() if type(m).__name__ == "Conv1D"]


def watched_now(model: torch.nn.Module, names: list[str]) -> dict[str, torch.Tensor]:
    """Each watched weight's stored values (``*_orig`` where pruned) by name."""
    out = {}
    for name in names:
        module = model.get_submodule(name.removesuffix(".weight"))
        out[name] = getattr(module, "weight_orig", module.weight).detach().clone()
    return out


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


def gmp_tau(weights: dict[str, torch.Tensor], removed: int) -> float:
    """Independently: the midpoint between the largest removed and smallest kept |w|."""
    scores = np.sort(np.concatenate([w.abs().double().numpy().ravel() for w in weights.values()]))
    return float((scores[removed - 1] + scores[removed]) / 2)


def logged(history: list[dict[str, Any]], key: str) -> list[float]:
    return [float(h[key]) for h in history if key in h]


def test_pruning_between_train_calls(tmp_path: Path) -> None:
    """Train, prune the Conv1D weights globally by magnitude, train again: one store, one event
    after the first call's steps; its masks the weight_mask buffers and the 50% largest trained
    |w| over the Conv1D weights; its line and pre-prune magnitudes from the trained weights;
    steps, losses, LR and epochs as the trainer logged them."""
    model = gpt2()
    path = tmp_path / "run.zarr"
    with ShedTrainerCallback(path, seed=4, close_at_train_end=False, dtype="float32") as shed:
        trainer = trainer_for(model, tmp_path, [shed], max_steps=STEPS_PER_EPOCH)
        trainer.train()
        history = list(trainer.state.log_history)
        names = [w.name for w in shed.watch.weights]
        trained = watched_now(model, names)
        prune.global_unstructured(
            conv1d_pairs(model), pruning_method=prune.L1Unstructured, amount=0.5
        )
        trainer.train()
        history += trainer.state.log_history
    assert set(CONV1D) <= set(names) and "lm_head.weight" in names

    ds = open_run(path)
    assert list(ds.layer.values) == names and ds.attrs["status"] == "complete"
    assert ds.sizes["step"] == 2 * STEPS_PER_EPOCH and ds.sizes["event"] == 1
    assert int((ds.step <= 0).sum()) == STEPS_PER_EPOCH
    masks = store_masks(ds, 0)
    conv = np.concatenate([trained[k].abs().numpy().ravel() for k in CONV1D])
    cut = np.sort(conv)[round(0.5 * conv.size) - 1]
    for name in CONV1D:
        buffer = model.get_submodule(name.removesuffix(".weight")).weight_mask
        np.testing.assert_array_equal(masks[name], buffer.bool().numpy())
        np.testing.assert_array_equal(masks[name], trained[name].abs().numpy() > cut)
    assert masks["lm_head.weight"].all()

    removed = sum(int((~m).sum()) for m in masks.values())
    assert removed == conv.size // 2
    assert float(ds.event_tau[0]) == pytest.approx(gmp_tau(trained, removed), rel=1e-12)
    pre = np.concatenate([trained[k].abs().numpy().ravel() for k in names])
    np.testing.assert_array_equal(ds.pre_prune_magnitude.isel(event=0).values, pre)

    np.testing.assert_allclose(ds.loss.values, logged(history, "loss"), rtol=1e-6)
    np.testing.assert_allclose(ds.lr.values, logged(history, "learning_rate"), rtol=1e-6)
    np.testing.assert_array_equal(ds.epoch.values, [0, 1])
    np.testing.assert_array_equal(ds.epoch_step.values, [0, STEPS_PER_EPOCH])
    losses = np.asarray(logged(history, "loss")).reshape(2, STEPS_PER_EPOCH).mean(axis=1)
    np.testing.assert_allclose(ds.train_loss.values, losses, rtol=1e-6)
    np.testing.assert_allclose(ds.test_loss.values, logged(history, "eval_loss"), rtol=1e-6)


class Pruner(transformers.TrainerCallback):
    """The user's own pruning inside one ``train()``: torch's global L1 at the end of epoch 1
    (the buffers then are kept), then, at the end of epoch 2, an explicit event with a mask for
    one layer."""

    def __init__(self, shed: ShedTrainerCallback) -> None:
        self.shed = shed
        self.first: dict[str, np.ndarray] = {}
        self.c_fc: torch.Tensor | None = None

    def on_epoch_end(self, args, state, control, model=None, **kw) -> None:  # noqa: ANN001
        if state.global_step == STEPS_PER_EPOCH:
            prune.global_unstructured(
                conv1d_pairs(model), pruning_method=prune.L1Unstructured, amount=0.5
            )
            self.first = {k: _buffer(model, k) for k in CONV1D}
        elif state.global_step == 2 * STEPS_PER_EPOCH:
            c_fc = model.get_submodule("transformer.h.0.mlp.c_fc")
            magnitude = c_fc.weight_orig.detach().abs()
            self.c_fc = c_fc.weight_mask.bool() & (magnitude > magnitude.median())
            self.shed.prune_event(masks={"transformer.h.0.mlp.c_fc.weight": self.c_fc})


def _buffer(model: torch.nn.Module, name: str) -> np.ndarray:
    return model.get_submodule(name.removesuffix(".weight")).weight_mask.bool().numpy().copy()


@pytest.mark.parametrize("shed_first", [True, False], ids=["shed-first", "pruner-first"])
def test_pruning_inside_training(tmp_path: Path, shed_first: bool) -> None:
    """Pruning made by another callback at an epoch's end is an event before the next step,
    after that epoch's row, whatever the order of the callbacks; an explicit prune_event(masks=)
    is applied and recorded the same way."""
    model = gpt2(1)
    shed = ShedTrainerCallback(tmp_path / "run.zarr")
    pruner = Pruner(shed)
    order = [shed, pruner] if shed_first else [pruner, shed]
    trainer = trainer_for(model, tmp_path, order, max_steps=3 * STEPS_PER_EPOCH)
    trainer.train()
    ds = open_run(tmp_path / "run.zarr")
    assert ds.sizes["step"] == trainer.state.global_step == 3 * STEPS_PER_EPOCH
    np.testing.assert_array_equal(ds.event_step.values, [0, STEPS_PER_EPOCH])
    np.testing.assert_array_equal(ds.epoch.values, [0, 1, 2])
    np.testing.assert_array_equal(ds.epoch_step.values, [0, STEPS_PER_EPOCH, 2 * STEPS_PER_EPOCH])
    first, second = store_masks(ds, 0), store_masks(ds, 1)
    c_fc = "transformer.h.0.mlp.c_fc.weight"
    for name in CONV1D:
        np.testing.assert_array_equal(first[name], pruner.first[name])
        np.testing.assert_array_equal(second[name], _buffer(model, name))
        if name != c_fc:
            np.testing.assert_array_equal(second[name], first[name])
    np.testing.assert_array_equal(second[c_fc], pruner.c_fc.numpy())
    assert int(ds.event_pruned.isel(event=1).sum()) == int((first[c_fc] & ~second[c_fc]).sum()) > 0


def test_control_event_and_failure(tmp_path: Path) -> None:
    """An explicit prune_event(sparsity=0.5) between two train() calls on an unpruned model is a
    control's event (nothing pruned, the 50% GMP line); an exception in the second call closes
    the store as failed with the steps made."""

    class Boom(transformers.TrainerCallback):
        def on_step_end(self, args, state, control, **kw) -> None:  # noqa: ANN001
            if state.global_step == 2 and self.armed:
                raise RuntimeError("boom")

        armed = False

    model, boom = gpt2(2), Boom()
    path = tmp_path / "control.zarr"
    with pytest.raises(RuntimeError, match="boom"):
        with ShedTrainerCallback(path, condition="control", close_at_train_end=False) as shed:
            trainer = trainer_for(model, tmp_path, [shed, boom], max_steps=STEPS_PER_EPOCH)
            trainer.train()
            before = watched_now(model, [w.name for w in shed.watch.weights])
            shed.prune_event(sparsity=0.5)
            boom.armed = True
            trainer.train()
    ds = xr.open_zarr(path)
    assert ds.attrs["status"] == "failed" and ds.attrs["control"] is True
    assert ds.attrs["line_sparsity"] == 0.5
    assert ds.sizes["step"] == STEPS_PER_EPOCH + 2 and ds.sizes["event"] == 1
    assert int(ds.event_pruned.sum()) == 0
    n = sum(w.numel() for w in before.values())
    assert float(ds.event_line[0]) == pytest.approx(gmp_tau(before, round(0.5 * n)), rel=1e-12)


def test_example_runs(tmp_path: Path) -> None:
    """examples/hf_trainer.py records a pruned run and its control that plain xarray opens."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "hf_trainer.py"), str(tmp_path)],
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
    assert int(pruned.event_pruned.sum()) > 0 and int(control.event_pruned.sum()) == 0
    assert float(pruned.event_sparsity[0]) == pytest.approx(0.5, abs=1e-3)
    assert pruned.attrs["line_sparsity"] == control.attrs["line_sparsity"] == pytest.approx(0.5)
