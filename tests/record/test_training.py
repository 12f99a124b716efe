"""Training loop, masking, evaluation and data order, each checked against an independent
computation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from shedding.config import PruneConfig, TrainConfig
from shedding.data.loader import BatchLoader
from shedding.models.prunable import prunable_parameters
from shedding.pruning import PRUNERS
from shedding.pruning.masks import apply_masks, ones_like
from shedding.training.callbacks import CheckpointCallback, EvalCallback, MaskCallback
from shedding.training.loop import Callback, TrainState, evaluate, train
from shedding.training.optim import build_optimizer
from shedding.training.schedules import ScheduleSpec, constant

CPU = torch.device("cpu")


def _data(n: int, seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 8, 8, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    return TensorDataset(x, y)


def _net(seed: int = 0, bn: bool = False) -> nn.Module:
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Conv2d(1, 4, 3, padding=1)]
    if bn:
        layers.append(nn.BatchNorm2d(4))
    layers += [nn.ReLU(), nn.Flatten(), nn.Linear(4 * 64, 16), nn.ReLU(), nn.Linear(16, 10)]
    return nn.Sequential(*layers)


def _pruned_setup(optimizer: str, nesterov: bool, seed: int = 0):
    model = _net(seed)
    params = prunable_parameters(model)
    w = {k: v.detach().clone() for k, v in params.items()}
    masks = PRUNERS.get("gmp")(w, ones_like(w), 0.6, PruneConfig(), torch.Generator())
    apply_masks(params, masks)  # the experiment masks the start weights before retraining
    cfg = TrainConfig(
        optimizer=optimizer, momentum=0.9, nesterov=nesterov, weight_decay=5e-3, lr=0.05
    )
    opt = build_optimizer(model.parameters(), cfg)
    loader = BatchLoader(_data(64, 1), 16, True, 0, CPU)
    return model, params, masks, opt, loader, w


OPTIMIZERS = [("sgd", False), ("sgd", True), ("adam", False), ("adamw", False)]
STATE_KEYS = {
    "sgd": ("momentum_buffer",),
    "adam": ("exp_avg", "exp_avg_sq"),
    "adamw": ("exp_avg", "exp_avg_sq"),
}


@pytest.mark.parametrize(("optimizer", "nesterov"), OPTIMIZERS)
def test_mask_callback_keeps_pruned_weights_and_optimizer_state_at_zero(
    optimizer: str, nesterov: bool
) -> None:
    model, params, masks, opt, loader, w0 = _pruned_setup(optimizer, nesterov)
    train(model, loader, opt, constant(0.05), 12, [MaskCallback(params, masks)])
    for k, p in params.items():
        pruned = masks[k] == 0
        assert pruned.any() and (~pruned).any()
        assert torch.all(p.detach()[pruned] == 0.0), k
        for key in STATE_KEYS[optimizer]:
            state = opt.state[p][key]
            assert torch.all(state[pruned] == 0.0), (k, key)
            assert (state[~pruned] != 0).any(), (k, key)  # the state is alive elsewhere
        # Survivors trained.
        assert not torch.equal(p.detach()[~pruned], w0[k][~pruned])


@pytest.mark.parametrize(("optimizer", "nesterov"), OPTIMIZERS)
def test_without_the_mask_callback_pruned_weights_revive(optimizer: str, nesterov: bool) -> None:
    """The control: the same run without MaskCallback moves pruned weights and fills their state."""
    model, params, masks, opt, loader, _ = _pruned_setup(optimizer, nesterov)
    train(model, loader, opt, constant(0.05), 12, [])
    for k, p in params.items():
        pruned = masks[k] == 0
        assert (p.detach()[pruned] != 0).any(), k
        for key in STATE_KEYS[optimizer]:
            assert (opt.state[p][key][pruned] != 0).any(), (k, key)


def test_masked_training_is_deterministic() -> None:
    runs = []
    for _ in range(2):
        model, params, masks, opt, loader, _ = _pruned_setup("sgd", False)
        train(model, loader, opt, constant(0.05), 6, [MaskCallback(params, masks)])
        runs.append({k: v.detach().clone() for k, v in model.state_dict().items()})
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])


# --------------------------------------------------------------------------- the loop's contract


class _Probe(Callback):
    """Records the LR the optimizer holds at each step and the epoch-end hooks (independent of the
    loop)."""

    def __init__(self) -> None:
        self.lrs: list[float] = []
        self.steps_at_step: list[int] = []
        self.epochs: list[int] = []
        self.started = self.ended = 0

    def on_train_start(self, state: TrainState) -> None:
        self.started += 1

    def before_optimizer_step(self, state: TrainState) -> None:
        self.lrs.append(state.optimizer.param_groups[0]["lr"])
        self.steps_at_step.append(state.step)

    def on_epoch_end(self, state: TrainState) -> None:
        self.epochs.append(state.epoch)

    def on_train_end(self, state: TrainState) -> None:
        self.ended += 1


def test_loop_uses_schedule_per_step_and_epoch_indexed_batches() -> None:
    data = _data(40, 2)
    loader = BatchLoader(data, 16, True, 5, CPU)  # 3 batches per epoch, the last of 8
    model = _net(1)
    seen: list[torch.Tensor] = []
    model.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach().clone()))
    sched = ScheduleSpec("multistep", 0.2, 8, milestones=(4,), gamma=0.5)
    probe = _Probe()
    opt = torch.optim.SGD(model.parameters(), lr=123.0)
    state = train(model, loader, opt, sched, 8, [probe], data_epoch_offset=3)
    assert state.step == 8 and state.epoch == 2 and state.iterations_per_epoch == 3
    assert probe.lrs == [sched(k) for k in range(8)]
    assert probe.steps_at_step == list(range(8))
    assert probe.epochs == [1, 2]  # the partial third epoch runs no epoch-end hook
    assert probe.started == probe.ended == 1
    expected = [x for e in (3, 4, 5) for x, _ in loader.epoch(e)][:8]
    assert len(seen) == 8 and all(torch.equal(a, b) for a, b in zip(seen, expected, strict=True))


def test_checkpoint_callback_saves_the_state_at_the_requested_steps() -> None:
    loader = BatchLoader(_data(32, 3), 8, True, 0, CPU)
    model = _net(2)
    init = {k: v.detach().clone() for k, v in model.state_dict().items()}
    saved: dict[int, dict[str, torch.Tensor]] = {}
    after: dict[int, dict[str, torch.Tensor]] = {}

    class Snap(Callback):
        def on_step_end(self, state: TrainState) -> None:
            after[state.step] = {k: v.detach().clone() for k, v in state.model.state_dict().items()}

    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    train(
        model,
        loader,
        opt,
        constant(0.1),
        6,
        [CheckpointCallback({0, 3, 6}, saved.__setitem__), Snap()],
    )
    assert set(saved) == {0, 3, 6}
    assert all(torch.equal(saved[0][k], init[k]) for k in init)
    for s in (3, 6):
        assert all(torch.equal(saved[s][k], after[s][k]) for k in init)
    assert not torch.equal(saved[3]["0.weight"], saved[6]["0.weight"])


# --------------------------------------------------------------------------- evaluation


def _independent_eval(model: nn.Module, data: TensorDataset) -> tuple[float, float]:
    x, y = data.tensors
    was = model.training
    model.eval()
    with torch.no_grad():
        out = model(x).double()
    model.train(was)
    return int((out.argmax(1) == y).sum()) / len(y), float(F.cross_entropy(out, y))


def test_eval_callback_metrics_equal_an_independent_evaluation() -> None:
    train_data, test_data = _data(48, 4), _data(30, 5)
    loader = BatchLoader(train_data, 16, True, 1, CPU)
    test_loader = BatchLoader(test_data, 7, False, 0, CPU)  # several batches, a partial last one
    model = _net(3, bn=True)
    outputs: list[torch.Tensor] = []
    model.register_forward_hook(
        lambda m, a, out: outputs.append(out.detach().clone()) if m.training else None
    )
    epochs: list[dict] = []

    class Check(Callback):
        def on_epoch_end(self, state: TrainState) -> None:
            acc, loss = _independent_eval(state.model, test_data)
            epochs.append({"metrics": dict(state.metrics), "acc": acc, "loss": loss})

    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    train(model, loader, opt, constant(0.1), 6, [EvalCallback(test_loader), Check()])
    assert len(epochs) == 2
    for e, rec in enumerate(epochs):
        m = rec["metrics"]
        assert m["test_accuracy"] == rec["acc"]
        assert m["test_loss"] == pytest.approx(rec["loss"], rel=1e-5)
        # Running training metrics: the train-mode outputs of this epoch's batches.
        batches = list(loader.epoch(e))
        outs = outputs[3 * e : 3 * e + 3]
        correct = sum(
            int((o.argmax(1) == y).sum()) for o, (_, y) in zip(outs, batches, strict=True)
        )
        loss = sum(
            float(F.cross_entropy(o.double(), y, reduction="sum"))
            for o, (_, y) in zip(outs, batches, strict=True)
        )
        assert m["train_accuracy"] == correct / 48
        assert m["train_loss"] == pytest.approx(loss / 48, rel=1e-5)
    assert model.training  # evaluation restores train mode
    acc, loss = evaluate(model, test_loader)
    ind_acc, ind_loss = _independent_eval(model, test_data)
    assert acc == ind_acc and loss == pytest.approx(ind_loss, rel=1e-5)


# --------------------------------------------------------------------------- data order


class _ListDataset(Dataset):
    """A map-style dataset that is not a TensorDataset (takes the DataLoader path)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        return torch.tensor([float(i)]), i


def _ids(loader: BatchLoader, epoch: int) -> list[int]:
    ids = []
    for x, y in loader.epoch(epoch):
        assert torch.equal(x[:, 0], y.float())  # inputs stay paired with their labels
        ids += y.tolist()
    return ids


@pytest.mark.parametrize("kind", ["tensor", "dataset"])
def test_batch_loader_order_is_a_function_of_seed_and_epoch(kind: str) -> None:
    n = 30
    ds = (
        TensorDataset(torch.arange(n).float()[:, None], torch.arange(n))
        if kind == "tensor"
        else _ListDataset(n)
    )
    loader = BatchLoader(ds, 7, True, 11, CPU)
    assert len(loader) == 5
    assert [len(y) for _, y in loader.epoch(0)] == [7, 7, 7, 7, 2]
    e0, e0_again, e1 = _ids(loader, 0), _ids(loader, 0), _ids(loader, 1)
    for ids in (e0, e1):
        assert sorted(ids) == list(range(n))  # every example exactly once per epoch
    assert e0 == e0_again
    assert e0 != e1
    assert e0 != list(range(n))
    other_seed = BatchLoader(ds, 7, True, 12, CPU)
    assert _ids(other_seed, 0) != e0
    assert _ids(BatchLoader(ds, 7, True, 11, CPU), 1) == e1  # a new loader, same (seed, epoch)
    assert _ids(BatchLoader(ds, 7, False, 11, CPU), 3) == list(range(n))
