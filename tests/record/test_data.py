"""Dataset registry: digits split, CIFAR from real-format files, ImageFolder, synthetic data."""

from __future__ import annotations

import io
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets.cifar
from PIL import Image
from torch.utils.data import TensorDataset

from shedding.config import DataConfig
from shedding.data import DATASETS, build_data
from shedding.data.cifar import CIFAR10_MEAN, CIFAR10_STD, CIFAR100_MEAN, CIFAR100_STD
from shedding.data.imagefolder import IMAGENET_MEAN, IMAGENET_STD


def test_registry_lists_the_datasets() -> None:
    assert {"digits", "cifar10", "cifar100", "imagefolder", "synthetic"} <= set(DATASETS.names())


# --------------------------------------------------------------------------- digits


def test_digits_sizes_stratified_split_and_dtypes() -> None:
    from sklearn.datasets import load_digits

    b = build_data(DataConfig(name="digits"))
    assert isinstance(b.train, TensorDataset) and isinstance(b.test, TensorDataset)
    x_tr, y_tr = b.train.tensors
    x_te, y_te = b.test.tensors
    assert len(b.train) + len(b.test) == 1797
    assert len(b.test) == 360  # ceil(0.2 * 1797)
    assert x_tr.shape == (1437, 1, 8, 8) and x_te.shape == (360, 1, 8, 8)
    assert x_tr.dtype == torch.float32 and y_tr.dtype == torch.int64
    assert (b.in_channels, b.num_classes, b.image_size) == (1, 10, (8, 8))
    # Standardised with the training split's statistics.
    assert abs(x_tr.mean().item()) < 1e-4 and x_tr.std().item() == pytest.approx(1.0, abs=1e-3)
    # Stratified: each class keeps its share (within one example) in the test split.
    totals = np.bincount(load_digits().target, minlength=10)
    test_counts = torch.bincount(y_te, minlength=10).numpy()
    assert np.all(np.abs(test_counts - 0.2 * totals) <= 1)
    assert np.array_equal(test_counts + torch.bincount(y_tr, minlength=10).numpy(), totals)


def test_digits_split_depends_only_on_the_seed() -> None:
    a = build_data(DataConfig(name="digits", split_seed=0))
    b = build_data(DataConfig(name="digits", split_seed=0))
    c = build_data(DataConfig(name="digits", split_seed=1))
    for t1, t2 in zip(
        a.test.tensors + a.train.tensors, b.test.tensors + b.train.tensors, strict=True
    ):
        assert torch.equal(t1, t2)
    assert not torch.equal(a.test.tensors[1], c.test.tensors[1])


# -------------------------------------------------------------------- CIFAR in the real file format


class _Py2Pickler(pickle._Pickler):
    """Pickles ``bytes`` as Python 2 ``str`` (SHORT_BINSTRING / BINSTRING opcodes), as the cPickle
    that wrote the real CIFAR files did: they load as ``str`` with ``encoding='latin1'``
    (torchvision) and as ``bytes`` with ``encoding='bytes'`` (the CIFAR web page's ``unpickle``)."""

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_py2_str(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str


def _dump_py2(obj: dict, path: Path) -> None:
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(obj)
    # The real files name numpy's reconstructor by its numpy 1 module path.
    path.write_bytes(
        buf.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
    )


def _images(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)


def _write_cifar10(root: Path) -> dict[str, tuple[np.ndarray, list[int]]]:
    """Five 2-image training batches and a 3-image test batch in ``root/cifar-10-batches-py``."""
    rng = np.random.default_rng(0)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    train_x, test_x = _images(rng, 10), _images(rng, 3)
    train_y, test_y = [int(v) for v in rng.integers(0, 10, 10)], [7, 0, 9]
    for i in range(5):
        sl = slice(2 * i, 2 * i + 2)
        _dump_py2(
            {
                b"batch_label": f"training batch {i + 1} of 5".encode(),
                b"labels": train_y[sl],
                b"data": train_x[sl].reshape(2, 3072),  # row-major R, G, B planes of 1024 pixels
                b"filenames": [f"img_{j}.png".encode() for j in range(2 * i, 2 * i + 2)],
            },
            folder / f"data_batch_{i + 1}",
        )
    _dump_py2(
        {
            b"batch_label": b"testing batch 1 of 1",
            b"labels": test_y,
            b"data": test_x.reshape(3, 3072),
            b"filenames": [b"t0.png", b"t1.png", b"t2.png"],
        },
        folder / "test_batch",
    )
    names = [
        b"airplane",
        b"automobile",
        b"bird",
        b"cat",
        b"deer",
        b"dog",
        b"frog",
        b"horse",
        b"ship",
        b"truck",
    ]
    _dump_py2(
        {b"num_cases_per_batch": 2, b"label_names": names, b"num_vis": 3072},
        folder / "batches.meta",
    )
    return {"train": (train_x, train_y), "test": (test_x, test_y)}


def _write_cifar100(root: Path) -> dict[str, tuple[np.ndarray, list[int]]]:
    """A 6-image ``train`` and a 3-image ``test`` file in ``root/cifar-100-python``."""
    rng = np.random.default_rng(1)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    out = {}
    for split, n, fine in (("train", 6, [0, 99, 42, 7, 7, 63]), ("test", 3, [99, 1, 50])):
        x = _images(rng, n)
        _dump_py2(
            {
                b"filenames": [f"{split}_{j}.png".encode() for j in range(n)],
                b"batch_label": f"{split}ing batch 1 of 1".encode(),
                b"fine_labels": fine,
                b"coarse_labels": [f // 5 for f in fine],
                b"data": x.reshape(n, 3072),
            },
            folder / split,
        )
        out[split] = (x, fine)
    _dump_py2(
        {
            b"fine_label_names": [f"fine{i}".encode() for i in range(100)],
            b"coarse_label_names": [f"coarse{i}".encode() for i in range(20)],
        },
        folder / "meta",
    )
    return out


@pytest.fixture
def skip_md5(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiny files cannot match the real md5s: torchvision's integrity check becomes 'the file
    exists'."""
    monkeypatch.setattr(
        torchvision.datasets.cifar, "check_integrity", lambda fpath, md5=None: os.path.isfile(fpath)
    )


def test_fixture_files_have_the_real_cifar_layout(tmp_path: Path) -> None:
    written = _write_cifar10(tmp_path)
    with open(tmp_path / "cifar-10-batches-py" / "data_batch_1", "rb") as f:
        raw = pickle.load(
            f, encoding="bytes"
        )  # as https://www.cs.toronto.edu/~kriz/cifar.html reads it
    assert set(raw) == {b"batch_label", b"labels", b"data", b"filenames"}
    assert raw[b"data"].dtype == np.uint8 and raw[b"data"].shape == (2, 3072)
    green = raw[b"data"][1, 1024:2048].reshape(32, 32)  # second image's G plane, row-major
    assert np.array_equal(green, written["train"][0][1, 1])


@pytest.mark.parametrize(
    "name, writer, mean, std, num_classes",
    [
        ("cifar10", _write_cifar10, CIFAR10_MEAN, CIFAR10_STD, 10),
        ("cifar100", _write_cifar100, CIFAR100_MEAN, CIFAR100_STD, 100),
    ],
)
def test_cifar_pixels_and_labels_round_trip(
    tmp_path: Path,
    skip_md5: None,
    name: str,
    writer,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    num_classes: int,
) -> None:
    written = writer(tmp_path)
    b = build_data(DataConfig(name=name, root=str(tmp_path), augment=False))
    assert (b.name, b.in_channels, b.num_classes, b.image_size) == (name, 3, num_classes, (32, 32))
    m = torch.tensor(mean, dtype=torch.float64)[:, None, None]
    s = torch.tensor(std, dtype=torch.float64)[:, None, None]
    for split, ds in (("train", b.train), ("test", b.test)):
        images, labels = written[split]
        assert len(ds) == len(labels)
        for i in range(len(labels)):
            x, y = ds[i]
            assert x.shape == (3, 32, 32) and x.dtype == torch.float32
            assert y == labels[i]
            pixels = torch.from_numpy(images[i]).double() / 255
            assert torch.allclose(x.double() * s + m, pixels, atol=1e-6, rtol=0)
        # Normalised, not raw: the channel means sit near (0.5 - mean) / std for uniform noise.
        assert not torch.allclose(
            ds[0][0].double(), torch.from_numpy(images[0]).double() / 255, atol=0.01
        )


def test_cifar_augmentation_only_on_the_training_split(tmp_path: Path, skip_md5: None) -> None:
    written = _write_cifar10(tmp_path)
    b = build_data(DataConfig(name="cifar10", root=str(tmp_path), augment=True))
    m = torch.tensor(CIFAR10_MEAN, dtype=torch.float64)[:, None, None]
    s = torch.tensor(CIFAR10_STD, dtype=torch.float64)[:, None, None]
    torch.manual_seed(0)
    original = torch.from_numpy(written["train"][0][0]).double() / 255
    draws = [b.train[0][0].double() * s + m for _ in range(10)]
    assert all(d.shape == (3, 32, 32) for d in draws)
    assert any(not torch.allclose(d, original, atol=1e-6) for d in draws)  # cropped and/or flipped
    x, _ = b.test[0]
    pixels = torch.from_numpy(written["test"][0][0]).double() / 255
    assert torch.allclose(x.double() * s + m, pixels, atol=1e-6)


@pytest.mark.parametrize(
    "name, folder", [("cifar10", "cifar-10-batches-py"), ("cifar100", "cifar-100-python")]
)
def test_cifar_missing_files_give_a_one_line_error(tmp_path: Path, name: str, folder: str) -> None:
    with pytest.raises(FileNotFoundError) as info:
        build_data(DataConfig(name=name, root=str(tmp_path)))
    msg = str(info.value)
    assert "\n" not in msg and "--data-download" in msg and str(tmp_path / folder) in msg
    with pytest.raises(FileNotFoundError, match="--data-root") as info:
        build_data(DataConfig(name=name, root=""))
    assert "\n" not in str(info.value)


def test_cifar_missing_metadata_gives_the_same_error(tmp_path: Path, skip_md5: None) -> None:
    _write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "batches.meta").unlink()
    with pytest.raises(FileNotFoundError, match="--data-download"):
        build_data(DataConfig(name="cifar10", root=str(tmp_path)))


# --------------------------------------------------------------------------- ImageFolder

COLOURS = {"cat": (255, 0, 0), "dog": (0, 255, 0), "fish": (0, 0, 255)}


def _write_imagefolder(root: Path, test_name: str = "val") -> None:
    for split, n in (("train", 2), (test_name, 1)):
        for cls, colour in COLOURS.items():
            (root / split / cls).mkdir(parents=True)
            for j in range(n):
                Image.new("RGB", (40 + 10 * j, 30), colour).save(root / split / cls / f"{j}.png")


@pytest.mark.parametrize("test_name", ["val", "test"])
def test_imagefolder_classes_labels_and_shapes(tmp_path: Path, test_name: str) -> None:
    _write_imagefolder(tmp_path, test_name)
    b = build_data(DataConfig(name="imagefolder", root=str(tmp_path), augment=False))
    assert (b.in_channels, b.num_classes, b.image_size) == (3, 3, (224, 224))
    assert len(b.train) == 6 and len(b.test) == 3
    m = torch.tensor(IMAGENET_MEAN)[:, None, None]
    s = torch.tensor(IMAGENET_STD)[:, None, None]
    for ds in (b.train, b.test):
        for x, y in (ds[i] for i in range(len(ds))):
            assert x.shape == (3, 224, 224) and x.dtype == torch.float32
            # Labels follow the sorted class folders; each class has its own solid colour.
            colour = torch.tensor(list(COLOURS.values())[y], dtype=torch.float32) / 255
            assert torch.allclose((x * s + m).mean(dim=(1, 2)), colour, atol=1e-5)
    assert [y for _, y in b.test] == [0, 1, 2]
    aug = build_data(DataConfig(name="imagefolder", root=str(tmp_path), augment=True))
    assert aug.train[0][0].shape == (3, 224, 224)


def test_imagefolder_missing_or_mismatched_folders(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        build_data(DataConfig(name="imagefolder", root=str(tmp_path)))
    msg = str(info.value)
    assert "\n" not in msg and "train/" in msg and "val/" in msg and str(tmp_path.resolve()) in msg
    (tmp_path / "train" / "a").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "train" / "a" / "0.png")
    with pytest.raises(FileNotFoundError, match=r"no val/ \(or test/\) folder"):
        build_data(DataConfig(name="imagefolder", root=str(tmp_path)))
    (tmp_path / "val" / "b").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "val" / "b" / "0.png")
    with pytest.raises(ValueError, match="class folders differ"):
        build_data(DataConfig(name="imagefolder", root=str(tmp_path)))
    with pytest.raises(FileNotFoundError, match="--data-root"):
        build_data(DataConfig(name="imagefolder", root=""))


# --------------------------------------------------------------------------- synthetic


def _synthetic(seed: int, **kw) -> DataConfig:
    args = dict(name="synthetic", image_shape=[2, 6, 5], num_classes=4, train_size=50, test_size=20)
    return DataConfig(**{**args, **kw, "split_seed": seed})


def test_synthetic_shapes_and_determinism() -> None:
    a, b, c = build_data(_synthetic(3)), build_data(_synthetic(3)), build_data(_synthetic(4))
    assert isinstance(a.train, TensorDataset) and isinstance(a.test, TensorDataset)
    assert (a.in_channels, a.num_classes, a.image_size) == (2, 4, (6, 5))
    assert a.train.tensors[0].shape == (50, 2, 6, 5) and a.test.tensors[0].shape == (20, 2, 6, 5)
    assert a.train.tensors[0].dtype == torch.float32 and a.train.tensors[1].dtype == torch.int64
    assert a.train.tensors[1].min() >= 0 and a.train.tensors[1].max() < 4
    for t1, t2 in zip(
        a.train.tensors + a.test.tensors, b.train.tensors + b.test.tensors, strict=True
    ):
        assert torch.equal(t1, t2)
    assert not torch.equal(a.train.tensors[0], c.train.tensors[0])
    with pytest.raises(ValueError, match="image_shape"):
        build_data(_synthetic(0, image_shape=[3, 32]))


def test_synthetic_labels_are_learnable() -> None:
    b = build_data(
        _synthetic(0, image_shape=[3, 8, 8], num_classes=4, train_size=1000, test_size=500)
    )
    (x, y), (xt, yt) = b.train.tensors, b.test.tensors
    assert torch.bincount(y, minlength=4).min() > 100  # every class well represented
    # A least-squares linear classifier on the raw pixels generalises far above chance (25 %).
    w = torch.linalg.lstsq(x.flatten(1), torch.nn.functional.one_hot(y, 4).float()).solution
    accuracy = ((xt.flatten(1) @ w).argmax(1) == yt).float().mean().item()
    assert accuracy > 0.6
