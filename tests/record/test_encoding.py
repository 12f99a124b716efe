"""The log8 encoding: its stated error bound holds on adversarial inputs and end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shedding.recording.encoding import (
    FLOOR_RATIO,
    LEVELS,
    MISSING,
    RELATIVE_ERROR,
    STEP,
    decode_log8,
    encode_log8,
)


def _roundtrip(values: np.ndarray, layers: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_layers = int(layers.max()) + 1
    codes, top = encode_log8(torch.from_numpy(values), torch.from_numpy(layers), n_layers)
    return codes.numpy(), top.numpy(), decode_log8(codes.numpy(), top.numpy(), layers)


def _check_bound(values: np.ndarray, layers: np.ndarray, decoded: np.ndarray) -> None:
    x = values.astype(np.float64)
    finite = np.isfinite(x)
    row_max = np.zeros(int(layers.max()) + 1)
    np.maximum.at(row_max, layers[finite], np.where(finite, x, 0)[finite])
    floor = row_max[layers] * FLOOR_RATIO
    d = decoded.astype(np.float64)
    assert (d[x == 0] == 0).all()  # zeros are exact
    big = finite & (x >= floor) & (x > 0)
    # 1% relative above the floor, plus float32 rounding of log2 (< 2e-5 even for |w| near 1e+-30)
    assert (np.abs(d[big] / x[big] - 1) <= RELATIVE_ERROR + 2e-5).all()
    small = finite & (x > 0) & (x < floor)
    assert (
        np.abs(d[small] - x[small]) <= floor[small] * (1 + 2e-5)
    ).all()  # below it: at most the floor
    assert np.isnan(d[~finite]).all()


def _documented_codes(values: np.ndarray, layers: np.ndarray) -> np.ndarray:
    """The codes the store's attributes document, computed in float64 with numpy: 0 for zero,
    MISSING for non-finite, else LEVELS - round((log2 top - log2 |w|) / STEP) clipped to 1..LEVELS,
    top being the layer's largest finite."""
    x = values.astype(np.float64)
    finite = np.isfinite(x)
    top = np.log2([x[(layers == k) & finite].max() for k in range(int(layers.max()) + 1)])[layers]
    with np.errstate(divide="ignore", invalid="ignore"):
        codes = np.clip(LEVELS - np.round((top - np.log2(x)) / STEP), 1, LEVELS)
    return np.where(x == 0, 0, np.where(finite, codes, MISSING))


def test_bound_constants():
    assert RELATIVE_ERROR == pytest.approx(0.01, rel=1e-9)
    assert 1 / FLOOR_RATIO == pytest.approx(
        1.01**506, rel=1e-12
    )  # 253 steps of 2*log2(1.01): about 153.7
    assert LEVELS == 254 and MISSING == 255


def test_adversarial_values():
    values = np.array(
        [
            0.0,
            1e-45,
            1e-40,
            1e-38,
            3e-8,
            1.0,
            1e30,
            3.4e38,  # zeros, denormals, huge: one layer
            0.0,
            0.0,
            0.0,  # an all-zero layer
            1.0,
            1.0 + 1e-7,
            0.99,
            0.0066,
            0.0065,
            np.inf,
            np.nan,
        ],  # edges of the range, non-finite
        dtype=np.float32,
    )
    layers = np.array([0] * 8 + [1] * 3 + [2] * 7, dtype=np.int64)
    codes, top, decoded = _roundtrip(values, layers)
    _check_bound(values, layers, decoded)
    assert (codes[8:11] == 0).all() and (decoded[8:11] == 0).all()
    assert codes[-2] == MISSING and codes[-1] == MISSING
    assert decoded[7] == pytest.approx(
        3.4e38, rel=RELATIVE_ERROR
    )  # the layer's largest sets its range
    assert decoded[6] == pytest.approx(
        3.4e38 * FLOOR_RATIO, rel=1e-5
    )  # 1e30 lies below the floor: floor
    assert decoded[12] == pytest.approx(1.0 + 1e-7, rel=RELATIVE_ERROR)


def test_layers_of_denormals_beside_normal_ones():
    # the encoder raises magnitudes to a floor below every layer's smallest code before log2: with a
    # layer of denormals that floor is itself denormal, and with a layer topped by the smallest
    # denormal it is 0
    values = np.array(
        [
            2e-39,
            1e-39,
            5e-40,
            1e-41,
            0.0,  # denormals: the smallest top
            1.0,
            0.5,
            0.01,
            1e-3,
            0.0,  # a normal layer: 1e-3 lies below its floor
            1e-45,
            0.0,  # the smallest denormal
            np.inf,
            np.nan,
            1e-45,
            1.0,
        ],  # non-finite beside the smallest and a normal one
        dtype=np.float32,
    )
    layers = np.array([0] * 5 + [1] * 5 + [2] * 2 + [3] * 4, dtype=np.int64)
    codes, top, decoded = _roundtrip(values, layers)
    _check_bound(values, layers, decoded)
    np.testing.assert_array_equal(
        codes, _documented_codes(values, layers)
    )  # no value here sits near a tie
    assert codes[[3, 8, 14]].tolist() == [1, 1, 1]  # below their layers' floors
    assert decoded[10] == np.float32(1e-45)


@pytest.mark.parametrize("top", [240, 250, 300, 400])
def test_smallest_top_a_few_hundred_denormal_spacings(top):
    # the floor below every layer's smallest code is then a denormal that float32 rounds up to twice
    # its value: it must not lift the smallest magnitudes above code 1 (found in review: 2**-149 got
    # code 13)
    tiny = 2.0**-149
    values = np.array([top * tiny, tiny, 2 * tiny, 0.0, 1.0, 0.5], dtype=np.float32)
    layers = np.array([0, 0, 0, 0, 1, 1], dtype=np.int64)
    codes, _, decoded = _roundtrip(values, layers)
    np.testing.assert_array_equal(codes, _documented_codes(values, layers))
    _check_bound(values, layers, decoded)


def test_no_layers():
    codes, top = encode_log8(torch.zeros(0), torch.zeros(0, dtype=torch.int64), 0)
    assert codes.shape == (0,) and top.shape == (0,)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bound_over_many_decades(seed):
    rng = np.random.default_rng(seed)
    n = 200_000
    values = (10.0 ** rng.uniform(-30, 30, n)).astype(np.float32)
    values[rng.random(n) < 0.3] = 0.0
    layers = rng.integers(0, 7, n)
    _, _, decoded = _roundtrip(values, layers)
    _check_bound(values, layers, decoded)
    # every value within a factor 150 of its layer's largest is above the floor: 1% for all of them
    w = (0.25 * 10.0 ** -rng.uniform(0, np.log10(150), n)).astype(np.float32)
    _, _, dw = _roundtrip(w, layers)
    assert (np.abs(dw / w - 1) <= RELATIVE_ERROR + 1e-6).all()


def test_log8_run_decodes_within_bound_of_float32_run(tmp_path):
    from conftest import tiny_config

    from shedding.analysis import open_run, shed_fraction
    from shedding.experiment import record

    a = open_run(record(tiny_config("gmp"), tmp_path / "f32.zarr", cache_dir=tmp_path / "c"))
    b = open_run(
        record(
            tiny_config("gmp", record__dtype="log8"), tmp_path / "l8.zarr", cache_dir=tmp_path / "c"
        )
    )
    assert "magnitude_code" in b and b.magnitude_code.dtype == np.uint8
    # recording does not touch training: the counts are identical, and so are the masks
    np.testing.assert_array_equal(a.shed_count.values, b.shed_count.values)
    np.testing.assert_array_equal(
        shed_fraction(a).shed_fraction_global.values, shed_fraction(b).shed_fraction_global.values
    )
    layers = a.weight_layer.values
    for k in (0, 5, -1):
        _check_bound(a.magnitude.values[k], layers, b.magnitude.values[k])
    coded = sum(
        f.stat().st_size
        for f in (tmp_path / "l8.zarr" / "magnitude_code").rglob("*")
        if f.is_file()
    )
    assert coded / b.magnitude_code.size <= 1.1  # bytes per weight-step, compressed


def test_encoder_for_contiguous_layers_equals_the_general_encoding():
    """The recorder's buffered encoder gives the same codes and tops as encode_log8, adversarial
    values included."""
    from shedding.recording.encoding import Log8Encoder

    rng = np.random.default_rng(3)
    sizes = [5, 300, 0, 40, 7]
    layers = np.repeat(np.arange(len(sizes)), sizes)
    values = (10.0 ** rng.uniform(-40, 38, layers.size)).astype(np.float32)
    values[rng.random(layers.size) < 0.3] = 0.0
    values[[0, 1, 2, 3, 4]] = 0.0  # an all-zero layer
    values[[10, 11, 12]] = [np.inf, np.nan, 1e-45]
    encoder = Log8Encoder(sizes, torch.from_numpy(layers))
    for _ in range(2):  # the buffers are reused
        codes, top = encoder(torch.from_numpy(values))
        expect_codes, expect_top = encode_log8(
            torch.from_numpy(values), torch.from_numpy(layers), len(sizes)
        )
        np.testing.assert_array_equal(codes.numpy(), expect_codes.numpy())
        np.testing.assert_array_equal(top.numpy(), expect_top.numpy())
    _check_bound(values, layers, decode_log8(codes.numpy(), top.numpy(), layers))
