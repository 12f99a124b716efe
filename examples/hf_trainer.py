"""Record a Hugging Face ``Trainer`` run pruned with ``torch.nn.utils.prune``, and its control.

A one-layer GPT-2 built from its config (no download) learns a synthetic language, sequences
that count up by a fixed stride modulo the vocabulary, on the CPU. After the first ``train()``,
``torch.nn.utils.prune.global_unstructured`` removes the 50% smallest weights of its ``Conv1D``
layers (the transformers library's linear layers); a second ``train()`` retrains the survivors.
``ShedTrainerCallback`` watches those layers (``params=``, a regular expression; by default
``lm_head`` too, which is not pruned here) and records both calls into ``pruned.zarr`` as one
run: the change of masks between the calls is its prune event. The control trains the same way
without pruning and asks for an event that prunes nothing but draws the 50% GMP line
(``prune_event(sparsity=0.5)``), so that ``shedding analyze`` can tell what pruning added to the
shedding that retraining alone causes.

    python examples/hf_trainer.py [OUT_DIR]      # a few seconds; then:
    shedding analyze OUT_DIR/pruned.zarr OUT_DIR/control.zarr

Needs ``pip install shedding[hf]``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch
import xarray as xr
from torch.nn.utils import prune
from transformers import GPT2Config, GPT2LMHeadModel, PrinterCallback, Trainer, TrainingArguments
from transformers.utils import logging as hf_logging

from shedding.integrations.hf import ShedTrainerCallback

VOCAB, LENGTH, SEED = 50, 16, 0
CONV1D = r"\.(c_attn|c_proj|c_fc)\.weight$"  # the weights to watch: those that are pruned


class Counting(torch.utils.data.Dataset):
    """Sequences ``start, start + k, start + 2k, ...`` modulo the vocabulary (k in 1..4)."""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        start = torch.randint(0, VOCAB, (n, 1), generator=g)
        stride = torch.randint(1, 5, (n, 1), generator=g)
        self.ids = (start + stride * torch.arange(LENGTH)) % VOCAB

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


def trainer_for(model: GPT2LMHeadModel, out: Path, shed: ShedTrainerCallback) -> Trainer:
    """Two epochs of 8 steps per ``train()``, AdamW with weight decay, loss logged each step."""
    args = TrainingArguments(
        output_dir=str(out / "hf"),
        num_train_epochs=2,
        per_device_train_batch_size=32,
        learning_rate=5e-3,
        weight_decay=0.1,
        logging_steps=1,
        eval_strategy="epoch",
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
        seed=SEED,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=Counting(256, SEED),
        eval_dataset=Counting(64, SEED + 1),
        callbacks=[shed],
    )
    trainer.remove_callback(PrinterCallback)  # quiet: the logs are in the store
    return trainer


def run(out: Path, pruned: bool) -> Path:
    """One run: train, prune (or draw the control's line), train again."""
    torch.manual_seed(SEED)
    model = GPT2LMHeadModel(
        GPT2Config(n_layer=1, n_head=2, n_embd=32, vocab_size=VOCAB, n_positions=LENGTH)
    )
    name = "pruned" if pruned else "control"
    path = out / f"{name}.zarr"
    condition = "gmp-0.5" if pruned else "control"
    with ShedTrainerCallback(
        path,
        seed=SEED,
        condition=condition,
        control=not pruned,
        close_at_train_end=False,
        params=CONV1D,
        overwrite=True,
    ) as shed:
        trainer = trainer_for(model, out, shed)
        trainer.train()
        if pruned:
            conv1d = [(m, "weight") for m in model.modules() if type(m).__name__ == "Conv1D"]
            prune.global_unstructured(conv1d, pruning_method=prune.L1Unstructured, amount=0.5)
        else:
            shed.prune_event(sparsity=0.5)
        trainer.train()
    return path


def main(out: Path) -> None:
    """The pruned run and its control, then a line about each store (read with xarray)."""
    out.mkdir(parents=True, exist_ok=True)
    hf_logging.set_verbosity_error()
    for pruned in (True, False):
        ds = xr.open_zarr(run(out, pruned))
        eligible = int(ds.event_eligible.isel(event=0).sum())
        shed = int(ds.shed_count.isel(step=-1).sum()) / max(eligible, 1)
        print(
            f"{'pruned' if pruned else 'control'}: {ds.sizes['step']} steps, "
            f"{ds.sizes['layer']} watched Conv1D weights, event sparsity "
            f"{float(ds.event_sparsity[0]):.2f}; at the end {shed:.1%} of the survivors that "
            "were above the line are below it"
        )
    print(f"next: shedding analyze {out / 'pruned.zarr'} {out / 'control.zarr'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()))
