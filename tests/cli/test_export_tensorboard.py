"""``shedding export RUN... --tensorboard DIR``: the event files, read back with TensorBoard's own
reader, hold the store's values at the right steps and its histogram counts exactly; bad input fails
with one line and status 2 before anything is written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import typer
from tensorboard.backend.event_processing import event_accumulator  # TensorBoard's own reader
from typer.testing import CliRunner
from zarr_readers import open_group

from shedding.cli.export_commands import register
from shedding.cli.feedback import OneLineUsageErrors

runner = CliRunner()
ALL = {"scalars": 0, "histograms": 0, "tensors": 0}  # keep every event


def _app() -> typer.Typer:
    """A ``shedding``-like root group holding just ``export``."""
    app = typer.Typer(cls=OneLineUsageErrors, add_completion=False, pretty_exceptions_enable=False)

    @app.callback()
    def root() -> None:
        """Test root."""

    register(app)
    return app


def invoke(*args: str):
    return runner.invoke(_app(), ["export", *map(str, args)])


def read_back(folder: Path):
    acc = event_accumulator.EventAccumulator(str(folder), size_guidance=ALL)
    acc.Reload()
    return acc


@pytest.fixture(scope="module")
def with_pretraining(tmp_path_factory) -> Path:
    """A GMP run that recorded its original training (negative steps) with snapshots but no device
    histograms."""
    from conftest import tiny_config

    from shedding.experiment import record

    root = tmp_path_factory.mktemp("tb_pre")
    cfg = tiny_config("gmp", record__hist_every=0, record__record_pretrain=True)
    return record(cfg, root / "pre.zarr", cache_dir=root / "cache")


@pytest.fixture(scope="module")
def exported(recorded, with_pretraining, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tb") / "tb"
    res = invoke(
        recorded["gmp"], with_pretraining, "--tensorboard", out, "--control", recorded["control"]
    )
    assert res.exit_code == 0, res.output
    return out


def global_shed_fraction(g) -> tuple[np.ndarray, np.ndarray]:
    """(retraining steps, S) from a store's raw counts: shed / eligible survivors of the round."""
    rounds = g["step_round"][:]
    rows = rounds >= 0
    den = g["event_eligible"][:].sum(axis=1)[rounds[rows]]
    return g["step"][:][rows], g["shed_count"][:][rows].sum(axis=1) / den


def assert_scalars(acc, tag: str, steps: np.ndarray, values: np.ndarray) -> None:
    """The tag's events are exactly the finite ``values`` at ``steps`` (as float32, TensorBoard's
    scalar type)."""
    keep = np.isfinite(values)
    events = acc.Scalars(tag)
    assert [e.step for e in events] == [int(s) for s in steps[keep]], tag
    np.testing.assert_array_equal(
        np.array([e.value for e in events], dtype=np.float32), values[keep].astype(np.float32)
    )


def test_scalars_at_their_offset_steps(exported, recorded, with_pretraining):
    run, ctrl, pre = (
        open_group(p) for p in (recorded["gmp"], recorded["control"], with_pretraining)
    )
    T = int(pre.attrs["T"])  # pre's snapshots start at -T: every step is shifted by T
    for name, g in (("gmp", run), ("pre", pre)):
        acc = read_back(exported / name)
        steps, S = global_shed_fraction(g)
        assert_scalars(acc, "shed/S", steps + T, S)
        c_steps, c_S = global_shed_fraction(ctrl)
        both = np.intersect1d(steps, c_steps)  # both prune at step 0
        ex = S[np.isin(steps, both)] - c_S[np.isin(c_steps, both)]
        assert_scalars(acc, "shed/excess", both + T, ex)
        assert_scalars(acc, "train/loss", g["step"][:] + T, g["loss"][:])
        assert_scalars(acc, "train/lr", g["step"][:] + T, g["lr"][:])
        for var in ("train_accuracy", "train_loss", "test_accuracy", "test_loss"):
            assert_scalars(acc, f"epoch/{var}", g["epoch_step"][:] + T, g[var][:])
        text = acc.Tensors("run/text_summary")[0].tensor_proto.string_val[0].decode()
        assert f"TensorBoard step = store step + {T}" in text
    assert min(e.step for e in read_back(exported / "pre").Scalars("train/loss")) == 1  # -T+1


def test_device_histograms_are_the_store_counts(exported, recorded, with_pretraining):
    from tensorboard import data_compat
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.util import tensor_util

    g = open_group(recorded["gmp"])
    T = int(open_group(with_pretraining).attrs["T"])
    counts, lo, hi = g["magnitude_hist"][:], g["hist_bin_lo"][:], g["hist_bin_hi"][:]
    layers = list(open_group(recorded["gmp"])["layer"].attrs["labels"])
    acc = read_back(exported / "gmp")
    for j, layer in enumerate(layers):
        events = acc.Histograms(f"log10_magnitude/{layer}")
        assert [e.step for e in events] == [int(s) + T for s in g["hist_step"][:]]
        for i, e in enumerate(events):
            np.testing.assert_array_equal(e.histogram_value.bucket, counts[i, j])
            np.testing.assert_array_equal(e.histogram_value.bucket_limit, hi)
    # as TensorBoard's histogram dashboard sees them: the non-empty span with the store's own edges
    (path,) = (exported / "gmp").glob("events.out.tfevents.*")
    seen = 0
    for event in EventFileLoader(str(path)).Load():
        for value in event.summary.value:
            if value.tag == f"log10_magnitude/{layers[0]}" and event.step == T:
                buckets = tensor_util.make_ndarray(data_compat.migrate_value(value).tensor)
                full = np.flatnonzero(counts[0, 0])
                span = slice(full[0], full[-1] + 1)
                np.testing.assert_array_equal(buckets[:, 0], lo[span].astype(np.float32))
                np.testing.assert_array_equal(buckets[:, 1], hi[span].astype(np.float32))
                np.testing.assert_array_equal(buckets[:, 2], counts[0, 0][span])
                seen += 1
    assert seen == 1


def test_snapshot_histograms_without_device_ones(exported, with_pretraining):
    g = open_group(with_pretraining)
    T = int(g.attrs["T"])
    edges = np.linspace(-8.0, 1.0, 65)  # the recorder's default histogram bins
    mags, starts, sizes = g["magnitude"][:], g["layer_start"][:], g["layer_size"][:]
    acc = read_back(exported / "pre")
    for j, layer in enumerate(g["layer"].attrs["labels"]):
        events = acc.Histograms(f"log10_magnitude/{layer}")
        assert [e.step for e in events] == [int(s) + T for s in g["record_step"][:]]
        assert events[0].step == 0
        for i, e in enumerate(events):
            w = mags[i, starts[j] : starts[j] + sizes[j]]
            logs = np.log10(w[w > 0].astype(np.float64))
            bins = np.clip(np.searchsorted(edges, logs, side="right") - 1, 0, 63)
            np.testing.assert_array_equal(e.histogram_value.bucket, np.bincount(bins, minlength=64))
            assert e.histogram_value.min == logs.min() and e.histogram_value.max == logs.max()


def test_export_again_replaces_the_event_files(recorded, tmp_path):
    for _ in range(2):
        res = invoke(recorded["control"], "--tensorboard", tmp_path / "tb")
        assert res.exit_code == 0, res.output
    assert len(list((tmp_path / "tb" / "control").glob("events.out.tfevents.*"))) == 1
    acc = read_back(tmp_path / "tb" / "control")
    assert len(acc.Scalars("train/loss")) == open_group(recorded["control"])["step"].shape[0]
    assert "shed/excess" not in acc.Tags()["scalars"]


@pytest.fixture(scope="module")
def other_layers(tmp_path_factory) -> Path:
    """A control run whose model leaves the last layer dense: one prunable layer fewer."""
    from conftest import tiny_config

    from shedding.experiment import record

    root = tmp_path_factory.mktemp("tb_other")
    cfg = tiny_config("none", record__every=0, model__dense_layers=["fc.weight"])
    return record(cfg, root / "other.zarr", cache_dir=root / "cache")


def test_bad_input_one_line_exit_2(recorded, other_layers, tmp_path):
    (tmp_path / "file").write_text("x")
    (tmp_path / "folder").mkdir()
    out = tmp_path / "tb"
    cases = [
        ((tmp_path / "folder", "--tensorboard", out), "not a Zarr store"),
        ((tmp_path / "missing.zarr", "--tensorboard", out), "missing.zarr"),
        ((recorded["gmp"], "--tensorboard", tmp_path / "file"), "exists and is not a folder"),
        ((recorded["gmp"], "--tensorboard", out, "--control", other_layers), "other layers"),
        ((recorded["gmp"], "--tensorboard", out, "--control", recorded["random"]), "not a control"),
        ((recorded["gmp"], recorded["gmp"], "--tensorboard", out), "also named gmp"),
        ((recorded["gmp"],), "--tensorboard"),
    ]
    for args, fragment in cases:
        res = invoke(*args)
        assert res.exit_code == 2, (args, res.output)
        lines = res.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), res.stderr
        assert fragment in lines[0], (fragment, lines[0])
        assert not out.exists()  # nothing written
