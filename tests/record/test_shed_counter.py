"""The per-step shed counter and its reductions against plain numpy, on both the CPU and the CUDA
kernel paths."""

import numpy as np
import pytest
import torch

from shedding.recording.reductions import key_counts, key_dtype, segment_sums
from shedding.recording.shed_counter import ShedCounter


@pytest.mark.parametrize("sync_free", [False, True])
def test_key_counts_match_numpy(sync_free):
    keys = torch.as_tensor(np.random.default_rng(0).integers(0, 37, 5000)).to(
        key_dtype(40, sync_free)
    )
    assert keys.dtype == (torch.int64 if sync_free else torch.int16)
    got = key_counts(keys, 40, sync_free=sync_free)
    assert got.dtype == torch.int64
    np.testing.assert_array_equal(got.numpy(), np.bincount(keys.numpy(), minlength=40))


def test_segment_sums_with_empty_segments():
    values = torch.as_tensor(np.random.default_rng(1).integers(0, 2, (50, 3)), dtype=torch.int32)
    bounds = torch.tensor([0, 0, 7, 7, 31, 50])  # segments 0 and 2 are empty
    got = segment_sums(values, bounds).numpy()
    b = bounds.numpy()
    expect = np.stack([values.numpy()[b[i] : b[i + 1]].sum(0) for i in range(len(b) - 1)])
    np.testing.assert_array_equal(got, expect)


def _numpy_counts(trajectory, alive, line, layer_ids, n_layers):
    """The shed level, shed events and recover events per step and layer, the definition in
    docs/science.md#shedding."""
    eligible = alive & (trajectory[0] >= line)
    prev = np.zeros_like(eligible)
    rows = []
    for mag in trajectory[1:]:
        below = eligible & (mag < line)
        flags = [below, below & ~prev, prev & ~below]
        rows.append([np.bincount(layer_ids[f], minlength=n_layers) for f in flags])
        prev = below
    return eligible, np.asarray(rows)


@pytest.mark.parametrize("sync_free", [False, True])
@pytest.mark.parametrize("per_weight_line", [False, True])
def test_counts_match_numpy_and_survive_a_state_dict(sync_free, per_weight_line):
    rng = np.random.default_rng(2)
    sizes = [30, 0, 200, 75]  # an empty layer too
    layer_ids = np.repeat(np.arange(len(sizes)), sizes)
    n = layer_ids.size
    alive = rng.random(n) < 0.6
    walk = np.abs(1.0 + np.cumsum(rng.normal(0, 0.15, (12, n)), axis=0)).astype(np.float32) * alive
    if per_weight_line:
        line = np.array([0.9, 1.0, 1.1, 0.8], dtype=np.float32)[layer_ids]
    else:
        line = np.float32(1.0)
    eligible, expect = _numpy_counts(walk, alive, line, layer_ids, len(sizes))
    assert expect[:, 1].sum() > 5 and expect[:, 2].sum() > 5  # crossings both ways happen

    ids = torch.as_tensor(layer_ids)
    t_line = torch.as_tensor(line) if per_weight_line else float(line)
    counter = ShedCounter(ids, len(sizes), sync_free=sync_free)
    survivors, elig, below = counter.start(torch.as_tensor(walk[0]), torch.as_tensor(alive), t_line)
    np.testing.assert_array_equal(
        elig.numpy(), np.bincount(layer_ids[eligible], minlength=len(sizes))
    )
    np.testing.assert_array_equal((survivors - elig - below).numpy(), 0)
    got = []
    for k, mag in enumerate(walk[1:]):
        if k == 5:  # what a resumed run does: a fresh counter from the saved state
            saved = counter.state_dict()
            counter = ShedCounter(ids, len(sizes), sync_free=not sync_free)
            counter.load_state_dict(saved, torch.device("cpu"))
        got.append(counter.update(torch.as_tensor(mag)).numpy())
    np.testing.assert_array_equal(np.asarray(got), expect)
    now = counter.below_now(torch.as_tensor(walk[-1])).numpy()
    np.testing.assert_array_equal(now, eligible & (walk[-1] < line))


@pytest.mark.parametrize(
    "n_layers", [8192, 8193]
)  # CPU keys 4 * layer + 3: int16 up to 8192 layers, int64 beyond
def test_counts_match_numpy_with_many_layers(n_layers):
    rng = np.random.default_rng(3)
    sizes = rng.integers(0, 4, n_layers)
    sizes[-1] = 3  # the last layer's keys are the largest
    layer_ids = np.repeat(np.arange(n_layers), sizes)
    n = layer_ids.size
    alive = rng.random(n) < 0.8
    walk = np.abs(1.0 + np.cumsum(rng.normal(0, 0.2, (6, n)), axis=0)).astype(np.float32) * alive
    walk[:, -3:] = [[1.5, 1.5, 1.5], [0.5, 0.5, 1.5], [1.5, 0.5, 0.5]] + [
        [0.5, 0.5, 0.5]
    ] * 3  # crossings there
    alive[-3:] = True
    eligible, expect = _numpy_counts(walk, alive, np.float32(1.0), layer_ids, n_layers)
    counter = ShedCounter(torch.as_tensor(layer_ids), n_layers, sync_free=False)
    counter.start(torch.as_tensor(walk[0]), torch.as_tensor(alive), 1.0)
    got = np.asarray([counter.update(torch.as_tensor(mag)).numpy() for mag in walk[1:]])
    np.testing.assert_array_equal(got, expect)
    assert expect[:, :, -1].sum() > 0
