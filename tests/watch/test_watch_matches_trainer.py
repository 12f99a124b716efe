"""A watched run of the built-in trainer's own training gives the trainer's store, array by array.

The trainer's recorder is teed: every call it gets is also made, through the public ``Watch``
interface, on a watch of the same weights (held by modules named as the model's). The two stores
are then compared: every array and coordinate, values and dimensions (CPU, float32 snapshots).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

import shedding
from shedding import experiment
from shedding.pruning.masks import unflat
from shedding.recording.open_recorder import OpenRecorder
from tests.conftest import tiny_config


def _holder(params: dict[str, torch.nn.Parameter]) -> torch.nn.Module:
    """Modules named as the model's, holding the same Parameter objects."""
    root = torch.nn.Module()
    for name, p in params.items():
        *path, attr = name.split(".")
        module = root
        for part in path:
            if not hasattr(module, part):
                module.add_module(part, torch.nn.Module())
            module = getattr(module, part)
        module.register_parameter(attr, p)
    return root


def _tee(cfg, watch_path):
    method_none = cfg.prune.method == "none"

    class Tee(OpenRecorder):
        timeline_targets = [cfg.prune.sparsity]  # a control's one event: the line's sparsity

        def __init__(self, store, layers, timeline, params, dtype, device, *a, **k):
            super().__init__(store, layers, timeline, params, dtype, device, *a, **k)
            self.params = params
            self.watch = shedding.watch(
                _holder(params),
                watch_path,
                params=list(params),
                seed=cfg.seed,
                profile="full",
                every=cfg.record.every,
                dtype=dtype,
                hist_every=cfg.record.hist_every,
                chunk_steps=cfg.record.chunk_steps,
                alpha=cfg.record.alpha,
            )

        def on_step(self, step, loss, lr):
            super().on_step(step, loss, lr)
            self.watch.step(loss=loss, lr=lr)

        def on_epoch(self, metrics):
            super().on_epoch(metrics)
            self.watch.epoch(**metrics)

        def begin_event(self, index, round, masks, pre_prune, *args):
            super().begin_event(index, round, masks, pre_prune, *args)
            after = {k: p.detach().clone() for k, p in self.params.items()}
            with torch.no_grad():  # the weights before this event, as a watched loop has them
                for k, v in unflat(pre_prune, self.params).items():
                    self.params[k].copy_(v)
                target = self.timeline_targets[index] if method_none else None
                self.watch.prune_event(masks=masks, sparsity=target, test_accuracy=args[-1])
                for k, v in after.items():
                    self.params[k].copy_(v)

        def end_round(self, index, test_accuracy):
            super().end_round(index, test_accuracy)
            self.watch.round_end(test_accuracy)

        def close(self, status, **attrs):
            super().close(status, **attrs)
            self.watch.close(status)

    return Tee


@pytest.mark.parametrize(
    "method,schedule", [("gmp", "oneshot"), ("none", "oneshot"), ("gmp", "iterative")]
)
def test_watched_store_equals_the_trainers(tmp_path, monkeypatch, method, schedule):
    cfg = tiny_config(
        method, technique="finetune", record__record_pretrain=True, prune__schedule=schedule
    )
    cfg.prune.fraction_per_round = 0.3
    cfg.record.every = 2
    cfg.record.hist_every = 3
    monkeypatch.setattr(experiment, "OpenRecorder", _tee(cfg, tmp_path / "watched.zarr"))
    built_in = experiment.record(cfg, tmp_path / "builtin.zarr")
    a = xr.open_zarr(built_in, mask_and_scale=False)
    b = xr.open_zarr(tmp_path / "watched.zarr", mask_and_scale=False)
    assert set(a.variables) == set(b.variables)
    assert dict(a.sizes) == dict(b.sizes)
    for name in a.variables:
        assert a[name].dims == b[name].dims, name
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
    assert a.sizes["record_step"] > 10 and a.sizes["step"] > 20  # a real run, not an empty one
    assert b.attrs["control"] is (method == "none")
