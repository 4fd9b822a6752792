"""Data sets (the MNIST IDX reader on small files written here, the 8x8 digits) and the
image helpers of deepcore.preprocessing."""

import gzip
import re
import struct
import sys

import numpy as np
import pytest

import deepcore as dc
from deepcore import preprocessing
from deepcore.datasets import digits, mnist

# --------------------------------------------------------------------------- IDX files

IDX_CODES = {
    np.uint8: 0x08,
    np.int8: 0x09,
    np.int16: 0x0B,
    np.int32: 0x0C,
    np.float32: 0x0D,
    np.float64: 0x0E,
}


def idx_bytes(array, magic=None):
    """The IDX encoding of `array` (big-endian header and values), written independently of
    deepcore: struct for the header, an explicit big-endian dtype for the values."""
    array = np.asarray(array)
    if magic is None:
        magic = (IDX_CODES[array.dtype.type] << 8) | array.ndim
    header = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write(path, data, gz=False):
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path


def message(excinfo, tmp_path):
    """The error message with the test's directory (whose name holds the test's name, e.g.
    "magic" or "truncated") replaced, so that assertions see only deepcore's words."""
    return str(excinfo.value).replace(str(tmp_path), "<dir>")


def fake_mnist(rng, n_train=7, n_test=5):
    return (
        (
            rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
            rng.integers(0, 10, n_train, dtype=np.uint8),
        ),
        (
            rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
            rng.integers(0, 10, n_test, dtype=np.uint8),
        ),
    )


def write_mnist(directory, data, gz=(False, False, False, False)):
    (xtr, ytr), (xte, yte) = data
    arrays = [xtr, ytr, xte, yte]
    names = list(mnist.FILES.values())
    for name, array, z in zip(names, arrays, gz):
        write(directory / name, idx_bytes(array), gz=z)


def test_idx_header_layout_by_hand(tmp_path):
    """The reader follows the published layout: 00 00 08 03, then 3 big-endian sizes."""
    raw = bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 3, 1, 2, 3, 250, 251, 252])
    x = mnist.read_idx(write(tmp_path / "a", raw))
    assert x.dtype == np.uint8 and x.shape == (2, 1, 3)
    assert x.tolist() == [[[1, 2, 3]], [[250, 251, 252]]]
    assert x.flags.writeable


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_read_idx_round_trip(tmp_path, rng, dtype, gz):
    array = (rng.normal(0, 50, (3, 4, 5))).astype(dtype)
    path = write(tmp_path / "data-idx3", idx_bytes(array), gz=gz)
    got = mnist.read_idx(path)
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative
    np.testing.assert_array_equal(got, array)


@pytest.mark.parametrize("gz", [False, True])
def test_load_data_raw_and_gzip(tmp_path, rng, gz):
    data = fake_mnist(rng)
    write_mnist(tmp_path, data, gz=(gz,) * 4)
    (xtr, ytr), (xte, yte) = mnist.load_data(tmp_path)
    for got, expected in zip((xtr, ytr, xte, yte), (*data[0], *data[1])):
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, expected)
    assert xtr.shape == (7, 28, 28) and ytr.shape == (7,) and xte.shape == (5, 28, 28)


def test_load_data_mixed_raw_and_gzip_and_str_path(tmp_path, rng):
    data = fake_mnist(rng)
    write_mnist(tmp_path, data, gz=(True, False, False, True))
    (xtr, ytr), (xte, yte) = mnist.load_data(str(tmp_path))
    np.testing.assert_array_equal(xtr, data[0][0])
    np.testing.assert_array_equal(yte, data[1][1])


def test_load_data_default_directory(tmp_path, rng, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    directory = tmp_path / ".deepcore" / "datasets" / "mnist"
    with pytest.raises(FileNotFoundError) as e:
        mnist.load_data()
    assert str(directory) in str(e.value)
    directory.mkdir(parents=True)
    data = fake_mnist(rng)
    write_mnist(directory, data)
    (xtr, _), _ = mnist.load_data()
    np.testing.assert_array_equal(xtr, data[0][0])


def test_missing_file_lists_the_expected_names(tmp_path, rng):
    write_mnist(tmp_path, fake_mnist(rng))
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError) as e:
        mnist.load_data(tmp_path)
    msg = message(e, tmp_path)
    assert "missing t10k-labels-idx1-ubyte" in msg
    for name in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        assert name in msg and name + ".gz" in msg
    assert "does not download" in msg and "internet" in msg and "in <dir>." in msg


def test_empty_directory_and_missing_directory(tmp_path):
    for path in (tmp_path, tmp_path / "nope"):
        with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
            mnist.load_data(path)


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize(
    "magic", [0x00000802, 0x00000903, 0x01000803, 0x00000703, 0x00000800, 0x1F8B0803]
)
def test_wrong_magic_number(tmp_path, rng, magic, gz):
    """Wrong type code, wrong dimension count, non-zero leading bytes, unknown type."""
    data = fake_mnist(rng)
    write_mnist(tmp_path, data)
    name = "train-images-idx3-ubyte"
    (tmp_path / name).unlink()
    images = data[0][0]
    raw = idx_bytes(images)
    raw = struct.pack(">I", magic) + raw[4:]
    write(tmp_path / name, raw, gz=gz)
    with pytest.raises(ValueError) as e:
        mnist.load_data(tmp_path)
    msg = message(e, tmp_path)
    assert f"<dir>/{name}{'.gz' if gz else ''}: " in msg
    assert f"wrong magic number 0x{magic:08X}" in msg


def test_labels_file_in_place_of_images(tmp_path, rng):
    data = fake_mnist(rng)
    write_mnist(tmp_path, data)
    write(tmp_path / "t10k-images-idx3-ubyte", idx_bytes(data[1][1]))
    with pytest.raises(ValueError) as e:
        mnist.load_data(tmp_path)
    assert message(e, tmp_path).startswith(
        "<dir>/t10k-images-idx3-ubyte: wrong magic number 0x00000801, expected 0x00000803"
    )


@pytest.mark.parametrize("cut", [1, 100, 28 * 28 * 7, 28 * 28 * 7 + 10, 28 * 28 * 7 + 14])
def test_truncated_raw_file(tmp_path, rng, cut):
    data = fake_mnist(rng)
    write_mnist(tmp_path, data)
    path = tmp_path / "train-images-idx3-ubyte"
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) - cut])
    with pytest.raises(ValueError) as e:
        mnist.load_data(tmp_path)
    msg = message(e, tmp_path)
    assert msg.startswith("<dir>/train-images-idx3-ubyte: ") and "truncated" in msg


def test_truncated_values_report_sizes(tmp_path):
    path = write(tmp_path / "x", idx_bytes(np.zeros((4, 28, 28), np.uint8))[:-5])
    with pytest.raises(ValueError) as e:
        mnist.read_idx(path)
    msg = message(e, tmp_path)
    assert "truncated" in msg and "(4, 28, 28)" in msg and "need 3152 bytes" in msg
    assert "has 3147" in msg


def test_trailing_bytes(tmp_path):
    path = write(tmp_path / "y", idx_bytes(np.zeros(6, np.uint8)) + b"\0")
    with pytest.raises(ValueError) as e:
        mnist.read_idx(path)
    assert "trailing bytes" in message(e, tmp_path)


def test_truncated_gzip_stream(tmp_path, rng):
    data = fake_mnist(rng)
    write_mnist(tmp_path, data, gz=(True,) * 4)
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError) as e:
        mnist.load_data(tmp_path)
    msg = message(e, tmp_path)
    assert msg.startswith("<dir>/train-labels-idx1-ubyte.gz: ") and "truncated" in msg


def test_gz_name_that_is_not_gzip(tmp_path):
    path = write(tmp_path / "z.gz", idx_bytes(np.zeros(3, np.uint8)))
    with pytest.raises(ValueError) as e:
        mnist.read_idx(path)
    assert "not a valid gzip file" in message(e, tmp_path)


@pytest.mark.parametrize(
    "which,bad,pattern",
    [
        ("x_train", np.zeros((3, 27, 28), np.uint8), r"\(n, 28, 28\).*\(3, 27, 28\)"),
        ("x_test", np.zeros((5, 28, 28), np.int32), r"0x00000C03, expected 0x00000803"),
        ("y_train", np.zeros((7, 1), np.uint8), r"0x00000802, expected 0x00000801"),
        ("y_test", np.zeros(4, np.uint8), r"5 images .* but 4 labels"),
        ("y_train", np.full(7, 10, np.uint8), r"labels must be 0..9"),
    ],
)
def test_wrong_dimensions_and_values(tmp_path, rng, which, bad, pattern):
    data = fake_mnist(rng)
    write_mnist(tmp_path, data)
    write(tmp_path / mnist.FILES[which], idx_bytes(bad))
    with pytest.raises(ValueError) as e:
        mnist.load_data(tmp_path)
    assert re.search(pattern, message(e, tmp_path))


def test_fake_mnist_feeds_a_conv_model(tmp_path, rng):
    write_mnist(tmp_path, fake_mnist(rng, 12, 4))
    (x_train, y_train), (x_test, _) = mnist.load_data(tmp_path)
    x_train = preprocessing.add_channel_axis(preprocessing.rescale(x_train))
    assert x_train.shape == (12, 28, 28, 1) and x_train.dtype == np.float32
    model = dc.Sequential(
        [
            dc.Input(shape=(28, 28, 1)),
            dc.layers.Conv2D(4, 3, activation="relu"),
            dc.layers.MaxPooling2D(),
            dc.layers.Flatten(),
            dc.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    history = model.fit(x_train, y_train, epochs=2, batch_size=4, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    out = model.predict(preprocessing.add_channel_axis(preprocessing.rescale(x_test)), verbose=0)
    assert out.shape == (4, 10)


# --------------------------------------------------------------------------- digits


def test_digits_shapes_types_and_stratified_split():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    (x_train, y_train), (x_test, y_test) = dc.datasets.digits.load_data(test_split=0.2, seed=0)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    assert x_train.shape[1:] == (8, 8) and x_test.shape[1:] == (8, 8)
    assert len(x_train) + len(x_test) == 1797 and len(y_train) == len(x_train)
    assert x_train.min() == 0 and x_train.max() == 16
    assert np.array_equal(x_train, np.round(x_train))
    counts = np.bincount(np.concatenate([y_train, y_test]), minlength=10)
    assert set(np.unique(y_train)) == set(range(10)) == set(np.unique(y_test))
    np.testing.assert_array_equal(np.bincount(y_test, minlength=10), np.round(counts * 0.2))

    # the split is a partition of scikit-learn's images, labels kept with their images
    ref = sklearn_datasets.load_digits()
    key = lambda x, y: sorted(
        map(
            bytes,
            np.concatenate(
                [x.reshape(len(x), -1).astype(np.uint8), y[:, None].astype(np.uint8)], axis=1
            ),
        )
    )
    assert key(np.concatenate([x_train, x_test]), np.concatenate([y_train, y_test])) == key(
        ref.images, ref.target
    )


def test_digits_seed_and_split_fraction():
    pytest.importorskip("sklearn")
    a = dc.datasets.digits.load_data(test_split=0.2, seed=0)
    b = dc.datasets.digits.load_data(test_split=0.2, seed=0)
    c = dc.datasets.digits.load_data(test_split=0.2, seed=1)
    np.testing.assert_array_equal(a[1][0], b[1][0])
    assert not np.array_equal(a[1][1], c[1][1])
    (x_all, y_all), (x_none, y_none) = dc.datasets.digits.load_data(test_split=0.0)
    assert x_all.shape == (1797, 8, 8) and x_none.shape == (0, 8, 8) and y_none.dtype == np.int64
    (x_half, _), (x_rest, _) = dc.datasets.digits.load_data(test_split=0.5)
    assert abs(len(x_half) - len(x_rest)) <= 10
    for bad in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match="test_split"):
            dc.datasets.digits.load_data(test_split=bad)


def test_digits_without_scikit_learn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match="pip install scikit-learn"):
        digits.load_data()


def test_datasets_registered():
    assert dc.datasets.digits is digits and dc.datasets.mnist is mnist
    assert {"digits", "iris", "mnist"} <= set(dc.datasets.__all__)


# --------------------------------------------------------------------------- preprocessing


def test_rescale():
    x = np.array([[0, 1, 128, 255]], np.uint8)
    got = preprocessing.rescale(x)
    assert got.dtype == np.float32 and got.shape == x.shape
    np.testing.assert_array_equal(got, np.float32([[0, 1 / 255, 128 / 255, 1.0]]))
    assert got[0, 3] == 1.0
    np.testing.assert_allclose(
        preprocessing.rescale(x, scale=1 / 127.5, offset=-1),
        [[-1, 1 / 127.5 - 1, 0.003921, 1]],
        atol=1e-6,
    )
    np.testing.assert_array_equal(preprocessing.rescale([2, 4], scale=0.5), np.float32([1, 2]))
    with pytest.raises(TypeError):
        preprocessing.rescale(np.array(["a"]))


def test_add_channel_axis():
    x = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    got = preprocessing.add_channel_axis(x)
    assert got.shape == (2, 3, 4, 1) and got.dtype == np.uint8 and got.flags.c_contiguous
    np.testing.assert_array_equal(got[..., 0], x)
    assert preprocessing.add_channel_axis([[1.5, 2.5]]).shape == (1, 2, 1)


def test_scale_to_unit_uses_one_range_for_the_whole_data_set():
    x = np.array([[[2, 4], [6, 10]], [[3, 3], [4, 5]]], np.int64)
    got = preprocessing.scale_to_unit(x)
    assert got.dtype == np.float32 and got.shape == x.shape
    np.testing.assert_allclose(got, (x - 2) / 8.0, rtol=1e-7)
    assert got[1].max() < 1.0  # not per image
    # the training range applied to other data
    np.testing.assert_allclose(
        preprocessing.scale_to_unit([0, 12], value_range=(2, 10)), [-0.25, 1.25]
    )
    np.testing.assert_array_equal(preprocessing.scale_to_unit(np.full((2, 2), 7.0)), 0.0)
    with pytest.raises(ValueError, match="NaN"):
        preprocessing.scale_to_unit([1.0, np.nan])
    with pytest.raises(ValueError, match="value_range"):
        preprocessing.scale_to_unit([1.0, 2.0], value_range=(3, 1))
    with pytest.raises(TypeError):
        preprocessing.scale_to_unit(["x"])


def test_digits_preprocessed_for_conv2d():
    pytest.importorskip("sklearn")
    (x_train, _), _ = dc.datasets.digits.load_data()
    x = preprocessing.add_channel_axis(preprocessing.scale_to_unit(x_train))
    assert x.shape == (len(x_train), 8, 8, 1) and x.dtype == np.float32
    assert x.min() == 0.0 and x.max() == 1.0
    np.testing.assert_allclose(x[..., 0], x_train / 16.0, rtol=1e-6)


def test_sunspots_shipped_series():
    years, values = dc.datasets.sunspots.load_data()
    assert years.dtype == np.float64 and values.dtype == np.float64
    assert years.shape == values.shape == (309,)
    np.testing.assert_array_equal(years, np.arange(1700, 2009))
    assert values[:4].tolist() == [5.0, 11.0, 16.0, 23.0]  # 1700-1703
    assert values[-3:].tolist() == [15.2, 7.5, 2.9]  # 2006-2008
    assert values.min() == 0.0 and values.max() == 190.2  # 1957, the highest year
    assert years[values.argmax()] == 1957
    assert abs(values.sum() - 15373.4) < 1e-9
    # the ~11-year cycle: the autocorrelation peaks near a lag of 11
    centred = values - values.mean()
    acf = [np.dot(centred[:-k], centred[k:]) for k in range(8, 14)]
    assert 8 + int(np.argmax(acf)) in (10, 11)
    # load_data returns fresh arrays
    values[0] = -1
    assert dc.datasets.sunspots.load_data()[1][0] == 5.0
