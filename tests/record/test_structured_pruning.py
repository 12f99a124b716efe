"""N:M, channel and file pruning against independent numpy (and torch.nn.utils.prune) computations,
their validation, and `shedding record` end to end with each."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.utils.prune as tprune
import xarray as xr
from torch import nn
from typer.testing import CliRunner

from shedding.config import ConfigError, PruneConfig, RunConfig
from shedding.pruning import PRUNERS
from shedding.pruning.mask_file import check_masks, load_mask_file
from shedding.pruning.masks import ones_like, sparsity_of
from shedding.validate import check_prune_layers, validate_run_config

# Rows of 72, 24 and 48 weights: divisible by 4, 6 and 8.
SHAPES = {"conv.weight": (5, 8, 3, 3), "conv2.weight": (6, 6, 2, 2), "fc.weight": (7, 48)}
PATTERNS = [(2, 4), (1, 4), (3, 4), (4, 8), (1, 6)]


def _weights(seed: int = 0, shapes: dict = SHAPES, ties: bool = False) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {k: torch.randn(s, generator=g) for k, s in shapes.items()}
    if ties:  # few distinct magnitudes: many ties inside groups and between rows
        out = {k: torch.round(w * 2) / 2 for k, w in out.items()}
    return out


def _prune(method: str, w, masks, sparsity: float, **cfg) -> dict[str, torch.Tensor]:
    return PRUNERS.get(method)(
        w, masks, sparsity, PruneConfig(method=method, **cfg), torch.Generator().manual_seed(0)
    )


def _one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert msg and "\n" not in msg
    return msg


# --------------------------------------------------------------------------- N:M


def _np_nm(w: np.ndarray, mask: np.ndarray, n: int, m: int) -> np.ndarray:
    """Per group of m along each row of the (out, rest) view: drop the m - n lowest of |w| (pruned
    weights lowest), earlier position first on ties; pruned weights stay pruned."""
    rows = np.abs(w).reshape(w.shape[0], -1)
    alive = mask.reshape(w.shape[0], -1) > 0
    keep = np.ones(rows.shape, dtype=bool)
    for r in range(rows.shape[0]):
        for g0 in range(0, rows.shape[1], m):
            score = [(rows[r, j] if alive[r, j] else -1.0, j) for j in range(g0, g0 + m)]
            for _, j in sorted(score)[: m - n]:
                keep[r, j] = False
    return (keep & alive).reshape(w.shape)


@pytest.mark.parametrize(("n", "m"), PATTERNS)
@pytest.mark.parametrize("ties", [False, True])
def test_nm_masks_match_numpy_and_keep_exactly_n_of_every_group(n, m, ties) -> None:
    w = _weights(ties=ties)
    masks = _prune("nm", w, ones_like(w), 1 - n / m, nm=f"{n}:{m}")
    for k in w:
        exp = _np_nm(w[k].numpy(), np.ones(w[k].shape), n, m)
        assert np.array_equal(masks[k].numpy().astype(bool), exp), k
        groups = masks[k].reshape(w[k].shape[0], -1, m).sum(-1)
        assert torch.equal(groups, torch.full_like(groups, n))  # n kept in every group
        kept = w[k].abs().reshape(-1, m)[masks[k].reshape(-1, m) > 0].reshape(-1, n)
        dropped = w[k].abs().reshape(-1, m)[masks[k].reshape(-1, m) == 0].reshape(-1, m - n)
        assert (kept.min(1).values >= dropped.max(1).values).all()  # the n largest of each group
    assert sparsity_of(masks) == 1 - n / m


def test_nm_2_4_is_exactly_half_of_every_group_and_ignores_the_target() -> None:
    w = _weights(1)
    for target in (0.0, 0.2, 0.9):
        masks = _prune("nm", w, ones_like(w), target, nm="2:4")
        assert sparsity_of(masks) == 0.5
        for k in w:
            assert (masks[k].reshape(-1, 4).sum(1) == 2).all()


def test_nm_from_a_partly_pruned_mask_keeps_pruned_weights_pruned() -> None:
    w = _weights(2)
    g = torch.Generator().manual_seed(5)
    base = {k: (torch.rand(v.shape, generator=g) > 0.4).float() for k, v in w.items()}
    masks = _prune("nm", w, base, 0.5, nm="2:4")
    for k in w:
        exp = _np_nm(w[k].numpy(), base[k].numpy(), 2, 4)
        assert np.array_equal(masks[k].numpy().astype(bool), exp)
        assert not bool(((masks[k] > 0) & (base[k] == 0)).any())  # nothing revived
        live = base[k].reshape(-1, 4).sum(1)
        assert torch.equal(masks[k].reshape(-1, 4).sum(1), torch.clamp(live, max=2))
    again = _prune("nm", w, masks, 0.5, nm="2:4")
    assert all(torch.equal(again[k], masks[k]) for k in w)  # the pattern is a fixed point


def test_nm_keeps_the_masks_dtype_and_device() -> None:
    w = _weights(3)
    base = {k: torch.ones(v.shape, dtype=torch.float64) for k, v in w.items()}
    masks = _prune("nm", w, base, 0.5, nm="2:4")
    assert all(m.dtype == torch.float64 and m.device == w[k].device for k, m in masks.items())


def test_nm_refuses_a_layer_whose_rows_m_does_not_divide() -> None:
    w = _weights(shapes={"conv1.weight": (32, 1, 3, 3), "fc.weight": (10, 256)})
    with pytest.raises(ConfigError) as e:
        _prune("nm", w, ones_like(w), 0.5, nm="2:4")
    assert _one_line(e) == (
        "--prune-nm: 2:4: conv1.weight has rows of 9 weights (in*kh*kw of shape 32x1x3x3), "
        "not divisible by M=4; leave it dense with --model-dense-layers conv1.weight"
    )
    shapes = {k: tuple(v.shape) for k, v in w.items()}
    with pytest.raises(ConfigError, match="conv1.weight has rows of 9"):
        check_prune_layers(PruneConfig(method="nm", sparsity=0.5), shapes)
    with pytest.raises(ConfigError, match="fc.weight has rows of 256 weights"):
        check_prune_layers(PruneConfig(method="nm", nm="1:3", sparsity=2 / 3), shapes)
    check_prune_layers(PruneConfig(method="nm", nm="1:3"), {"conv1.weight": (32, 1, 3, 3)})
    check_prune_layers(PruneConfig(method="gmp"), shapes)  # other methods: nothing to check


# --------------------------------------------------------------------------- channel


def _np_channel(w: np.ndarray, mask: np.ndarray, sparsity: float) -> np.ndarray:
    """Drop the round(sparsity * rows) rows of lowest L1 norm over live weights (rows with none
    live lowest), earlier row first on ties; pruned weights stay pruned."""
    rows = w.shape[0]
    alive = mask.reshape(rows, -1) > 0
    l1 = (np.abs(w).reshape(rows, -1) * alive).sum(1)
    score = np.where(alive.any(1), l1, -1.0)
    k = int(round(sparsity * rows))
    drop = sorted(range(rows), key=lambda r: (score[r], r))[:k]
    keep = np.ones(rows, dtype=bool)
    keep[drop] = False
    return keep[:, None].repeat(alive.shape[1], 1).reshape(w.shape) & (mask > 0)


@pytest.mark.parametrize("sparsity", [0.1, 0.37, 0.5, 0.8])
@pytest.mark.parametrize("ties", [False, True])
def test_channel_masks_match_numpy_and_remove_whole_rows(sparsity, ties) -> None:
    w = _weights(4, ties=ties)
    masks = _prune("channel", w, ones_like(w), sparsity)
    for k in w:
        exp = _np_channel(w[k].numpy(), np.ones(w[k].shape), sparsity)
        assert np.array_equal(masks[k].numpy().astype(bool), exp), k
        rows = masks[k].reshape(w[k].shape[0], -1)
        row_kept = rows.sum(1)
        assert set(row_kept.tolist()) <= {0.0, float(rows.shape[1])}  # whole rows only
        assert int((row_kept == 0).sum()) == round(sparsity * w[k].shape[0])  # the target count


@pytest.mark.parametrize("sparsity", [0.2, 0.5, 0.7])
def test_channel_equals_torch_ln_structured_l1_per_layer(sparsity) -> None:
    """torch's L1 structured pruning along dim 0, layer by layer, as an independent oracle
    (continuous random weights: no ties)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 10, 3), nn.Conv2d(10, 7, 2), nn.Flatten(), nn.Linear(13, 9))
    mods = {f"{i}.weight": m for i, m in enumerate(model) if isinstance(m, (nn.Conv2d, nn.Linear))}
    w = {k: m.weight.detach().clone() for k, m in mods.items()}
    ours = _prune("channel", w, ones_like(w), sparsity)
    oracle = copy.deepcopy(model)
    for i, m in enumerate(oracle):
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            tprune.ln_structured(m, "weight", amount=sparsity, n=1, dim=0)
            assert torch.equal(m.weight_mask, ours[f"{i}.weight"]), i


def test_channel_second_round_keeps_pruned_rows_and_counts_them() -> None:
    w = _weights(6)
    first = _prune("channel", w, ones_like(w), 0.4)
    second = _prune("channel", w, first, 0.6)
    lower = _prune("channel", w, first, 0.2)
    for k in w:
        assert not bool(((second[k] > 0) & (first[k] == 0)).any())
        exp = _np_channel(w[k].numpy(), first[k].numpy(), 0.6)
        assert np.array_equal(second[k].numpy().astype(bool), exp)
        assert torch.equal(lower[k], first[k])  # a lower target prunes nothing, revives nothing


def test_channel_scores_only_live_weights_of_a_partly_pruned_row() -> None:
    w = {"fc.weight": torch.tensor([[5.0, 5.0, 0.1], [1.0, 1.0, 1.0], [0.5, 0.5, 0.5]])}
    base = {"fc.weight": torch.tensor([[0.0, 0.0, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])}
    masks = _prune("channel", w, base, 0.34)  # one row: row 0's live L1 is 0.1, the smallest
    assert masks["fc.weight"].tolist() == [[0, 0, 0], [1, 1, 1], [1, 1, 1]]


# --------------------------------------------------------------------------- masks from a file


def _save(tmp_path: Path, masks: dict, name: str = "m.pt") -> str:
    path = tmp_path / name
    torch.save(masks, path)
    return str(path)


def test_file_method_returns_the_files_masks(tmp_path) -> None:
    w = _weights(7)
    gmp = _prune("gmp", w, ones_like(w), 0.5)
    path = _save(tmp_path, {k: m.bool() for k, m in reversed(list(gmp.items()))})  # any order
    got = _prune("file", w, ones_like(w), 0.5, mask_file=path)
    assert list(got) == list(w) and all(torch.equal(got[k], gmp[k]) for k in w)
    floats = _save(tmp_path, {k: m.double() for k, m in gmp.items()}, "f.pt")
    assert all(torch.equal(load_mask_file(floats)[k], gmp[k].bool()) for k in w)


def _file_error(tmp_path, content, base=None, sparsity: float = 0.5) -> str:
    w = _weights(7)
    path = content if isinstance(content, str) else _save(tmp_path, content)
    with pytest.raises(ConfigError) as e:
        _prune("file", w, base or ones_like(w), sparsity, mask_file=path)
    msg = _one_line(e)
    assert msg.startswith("--prune-mask-file: ")
    return msg


def test_file_method_refuses_bad_masks_with_one_line(tmp_path) -> None:
    w = _weights(7)
    good = {k: m.bool() for k, m in _prune("gmp", w, ones_like(w), 0.5).items()}
    less = dict(list(good.items())[1:])
    assert "no mask for conv.weight" in _file_error(tmp_path, less)
    more = {**good, "head.weight": torch.ones(3, 3, dtype=torch.bool)}
    assert "masks for head.weight, not prunable tensors of this run" in _file_error(tmp_path, more)
    wrong = {**good, "fc.weight": torch.ones(48, 7, dtype=torch.bool)}
    assert "the mask of fc.weight has shape (48, 7), the parameter (7, 48)" in _file_error(
        tmp_path, wrong
    )
    half = {**good, "fc.weight": good["fc.weight"].float() * 0.5}
    assert "holds values other than 0 and 1" in _file_error(tmp_path, half)
    assert "expected a non-empty {parameter name: mask tensor} dict" in _file_error(
        tmp_path, _save(tmp_path, [1, 2], "list.pt")
    )
    module = _save(tmp_path, nn.Linear(2, 2), "module.pt")  # not loadable with weights_only
    assert "not a mask file written by torch.save" in _file_error(tmp_path, module)
    (tmp_path / "text.pt").write_text("not torch")
    assert "not a mask file written by torch.save" in _file_error(
        tmp_path, str(tmp_path / "text.pt")
    )
    assert "no such file" in _file_error(tmp_path, str(tmp_path / "missing.pt"))
    msg = _file_error(tmp_path, good, sparsity=0.4)
    n = sum(v.numel() for v in w.values())
    assert f"prune {round(0.5 * n)} of {n} weights" in msg and "give --prune-sparsity 0.5" in msg


def test_file_masks_must_not_revive_pruned_weights(tmp_path) -> None:
    w = _weights(8)
    first = _prune("gmp", w, ones_like(w), 0.6)
    other = {k: m.bool() for k, m in _prune("random", w, ones_like(w), 0.6).items()}
    with pytest.raises(ValueError) as e:
        check_masks(other, w, first, "m.pt")
    assert "m.pt: the mask of conv.weight revives" in _one_line(e)
    assert "pruned before; a mask may only remove weights" in str(e.value)
    more = {k: m.bool() for k, m in _prune("gmp", w, first, 0.8).items()}
    got = check_masks(more, w, first)  # removing more is fine
    assert all(torch.equal(got[k], more[k].float()) for k in w)


# --------------------------------------------------------------------------- validation


def _cfg(**prune) -> RunConfig:
    cfg = RunConfig()
    for k, v in prune.items():
        setattr(cfg.prune, k, v)
    return cfg


@pytest.mark.parametrize(
    ("prune", "message"),
    [
        ({"method": "nm", "nm": "2-4", "sparsity": 0.5}, "--prune-nm: expected N:M with integers"),
        ({"method": "nm", "nm": "4:2", "sparsity": 0.5}, "got '4:2'"),
        ({"method": "nm", "nm": "0:4", "sparsity": 0.5}, "got '0:4'"),
        ({"method": "nm", "nm": "a:b", "sparsity": 0.5}, "got 'a:b'"),
        ({"method": "gmp", "nm": "2:4:8"}, "--prune-nm: expected N:M"),
        ({"method": "gmp", "nm": "1:4"}, "--prune-nm: only used with --prune-method nm"),
        (
            {"method": "nm", "sparsity": 0.2},
            "--prune-sparsity: 0.2 with --prune-nm 2:4, which prunes exactly 1 - N/M = 0.5 of "
            "every layer; give --prune-sparsity 0.5",
        ),
        ({"method": "nm", "nm": "1:3", "sparsity": 0.66}, "give --prune-sparsity 0.6666666667"),
        (
            {"method": "nm", "sparsity": 0.5, "schedule": "iterative"},
            "--prune-schedule: iterative with --prune-method nm",
        ),
        ({"method": "gmp", "mask_file": "m.pt"}, "--prune-mask-file: only used with"),
        ({"method": "file"}, "--prune-mask-file: --prune-method file needs the masks file"),
        ({"method": "file", "mask_file": "/nonexistent/m.pt"}, "/nonexistent/m.pt: no such file"),
    ],
)
def test_bad_structured_options_are_one_line(prune, message) -> None:
    with pytest.raises(ConfigError) as e:
        validate_run_config(_cfg(**prune))
    assert message in _one_line(e)


def test_valid_structured_options(tmp_path) -> None:
    validate_run_config(_cfg(method="nm", sparsity=0.5))
    validate_run_config(_cfg(method="nm", nm="1:3", sparsity=1 - 1 / 3))
    validate_run_config(_cfg(method="channel", sparsity=0.3, schedule="iterative"))
    masks = {"fc.weight": torch.tensor([[True, False], [False, True]])}
    path = _save(tmp_path, masks)
    validate_run_config(_cfg(method="file", mask_file=path, sparsity=0.5))
    with pytest.raises(ConfigError, match="--prune-schedule: gradual with --prune-method file"):
        validate_run_config(_cfg(method="file", mask_file=path, sparsity=0.5, schedule="gradual"))
    check_prune_layers(PruneConfig(method="file", mask_file=path), {"fc.weight": (2, 2)})
    with pytest.raises(ConfigError, match="no mask for conv1.weight"):
        check_prune_layers(
            PruneConfig(method="file", mask_file=path),
            {"conv1.weight": (2, 1), "fc.weight": (2, 2)},
        )


def test_prepare_checks_the_layers_before_anything_trains(tmp_path) -> None:
    """nm on the digits CNN, whose first conv has rows of 9: refused by prepare, nothing created."""
    from shedding.experiment import prepare

    with pytest.raises(ConfigError, match="conv1.weight has rows of 9"):
        prepare(_cfg(method="nm", sparsity=0.5))
    cfg = _cfg(method="nm", sparsity=0.5)
    cfg.model.dense_layers = ["conv1"]
    prepare(cfg)


# --------------------------------------------------------------------------- end to end

TINY = [
    "--train-duration", "3ep", "--train-milestones", "2ep", "--train-weight-decay", "5e-3",
    "--retrain-duration", "2ep", "--record-every", "1", "--record-hist-every", "1",
    "--record-chunk-steps", "8",
]  # fmt: skip


def _record(tmp_path: Path, name: str, *args: str) -> xr.Dataset:
    from shedding.cli.main import app

    out = tmp_path / f"{name}.zarr"
    res = CliRunner().invoke(
        app, ["record", *TINY, *args, "--out", str(out), "--cache", str(tmp_path / "cache")]
    )
    assert res.exit_code == 0, res.output
    return xr.open_zarr(out)


def _layer_masks(ds: xr.Dataset, event: int = 0) -> dict[str, np.ndarray]:
    """Each layer's recorded mask, reshaped from the flat row by the store's own coordinates."""
    flat = ds["mask"].isel(event=event).values.astype(bool)
    labels = ds["layer"].attrs["labels"]
    shapes = ds["layer_shape"].attrs["labels"]
    out = {}
    for code, shape_code, start, size in zip(
        ds.layer.values,
        ds.layer_shape.values,
        ds.layer_start.values,
        ds.layer_size.values,
        strict=True,
    ):
        dims = tuple(int(d) for d in shapes[int(shape_code)].split("x"))
        out[labels[int(code)]] = flat[int(start) : int(start + size)].reshape(dims)
    return out


def test_record_nm_end_to_end(tmp_path) -> None:
    ds = _record(
        tmp_path, "nm", "--prune-method", "nm", "--prune-sparsity", "0.5",
        "--model-dense-layers", "conv1",
    )  # fmt: skip
    assert ds.attrs["status"] == "complete" and ds.attrs["method"] == "nm"
    masks = _layer_masks(ds)
    assert sorted(masks) == ["conv2.weight", "conv3.weight", "fc.weight"]
    for k, m in masks.items():
        groups = m.reshape(m.shape[0], -1, 4).sum(-1)
        assert (groups == 2).all(), k  # exactly 2 of every 4 along each row
    assert float(ds.event_sparsity[0]) == 0.5
    pre = ds.pre_prune_magnitude.isel(event=0).values
    flat = ds["mask"].isel(event=0).values.astype(bool)
    start = 0
    for k, m in masks.items():
        w = pre[start : start + m.size].reshape(m.shape)
        start += m.size
        assert np.array_equal(m, _np_nm(w, np.ones(m.shape), 2, 4)), k  # from the recorded |w|
    assert start == flat.size
    last = ds.magnitude.isel(record_step=-1).values
    assert (last[~flat] == 0).all()  # pruned weights stayed exactly zero


def test_record_channel_end_to_end(tmp_path) -> None:
    ds = _record(tmp_path, "channel", "--prune-method", "channel", "--prune-sparsity", "0.5")
    assert ds.attrs["status"] == "complete" and ds.attrs["method"] == "channel"
    pre = ds.pre_prune_magnitude.isel(event=0).values
    start = 0
    for k, m in _layer_masks(ds).items():
        rows = m.reshape(m.shape[0], -1)
        assert set(rows.sum(1).tolist()) <= {0, rows.shape[1]}, k  # whole channels
        assert int((rows.sum(1) == 0).sum()) == round(0.5 * m.shape[0]), k
        w = pre[start : start + m.size].reshape(m.shape)
        start += m.size
        assert np.array_equal(m, _np_channel(w, np.ones(m.shape), 0.5)), k
    assert float(ds.event_sparsity[0]) == 0.5  # 32, 32, 64 and 10 channels: all even
