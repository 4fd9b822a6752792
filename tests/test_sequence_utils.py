"""pad_sequences, timeseries_dataset_from_array and timeseries_windows: hand-made cases, and
Keras' own functions where Keras is installed."""

import numpy as np
import pytest
from keras_reference import import_keras

import deepcore as dc
from deepcore.utils import pad_sequences, timeseries_dataset_from_array, timeseries_windows

# ---------------------------------------------------------------- pad_sequences


def test_pad_sequences_docstring_cases():
    seqs = [[1], [2, 3], [4, 5, 6]]
    out = pad_sequences(seqs)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, [[0, 0, 1], [0, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(
        pad_sequences(seqs, value=-1), [[-1, -1, 1], [-1, 2, 3], [4, 5, 6]]
    )
    np.testing.assert_array_equal(
        pad_sequences(seqs, padding="post"), [[1, 0, 0], [2, 3, 0], [4, 5, 6]]
    )
    np.testing.assert_array_equal(pad_sequences(seqs, maxlen=2), [[0, 1], [2, 3], [5, 6]])
    np.testing.assert_array_equal(
        pad_sequences(seqs, maxlen=2, truncating="post"), [[0, 1], [2, 3], [4, 5]]
    )
    np.testing.assert_array_equal(
        pad_sequences(seqs, maxlen=4, padding="post", truncating="post"),
        [[1, 0, 0, 0], [2, 3, 0, 0], [4, 5, 6, 0]],
    )


def test_pad_sequences_empty_sequences_and_arrays():
    out = pad_sequences([[], np.array([1.5, 2.5]), (7,)], dtype="float32", value=9)
    np.testing.assert_array_equal(out, [[9, 9], [1.5, 2.5], [9, 7]])
    assert out.dtype == np.float32
    # floats cast to the int dtype as NumPy casts
    np.testing.assert_array_equal(pad_sequences([[1.7, -2.2]]), [[1, -2]])
    assert pad_sequences([[], []]).shape == (2, 0)
    assert pad_sequences([[], []], maxlen=3).tolist() == [[0, 0, 0], [0, 0, 0]]
    assert pad_sequences([]).shape == (0, 0)
    assert pad_sequences([[1, 2]], maxlen=0).shape == (1, 0)
    # a 2-D array is a list of equal-length sequences
    np.testing.assert_array_equal(
        pad_sequences(np.arange(6).reshape(2, 3), maxlen=2), [[1, 2], [4, 5]]
    )


def test_pad_sequences_trailing_dimensions():
    seqs = [np.ones((2, 3)), [], np.arange(12.0).reshape(4, 3)]
    out = pad_sequences(seqs, maxlen=3, dtype="float64", value=-1.0)
    assert out.shape == (3, 3, 3)
    np.testing.assert_array_equal(out[0], [[-1] * 3, [1] * 3, [1] * 3])
    np.testing.assert_array_equal(out[1], -np.ones((3, 3)))
    np.testing.assert_array_equal(out[2], np.arange(3.0, 12.0).reshape(3, 3))
    with pytest.raises(ValueError, match=r"Shape of sample \(2,\) of sequence at position 1"):
        pad_sequences([np.ones((2, 3)), np.ones((2, 2))])


def test_pad_sequences_strings():
    out = pad_sequences([["a", "b"], ["c"]], dtype=object, value="<pad>")
    assert out.tolist() == [["a", "b"], ["<pad>", "c"]]
    out = pad_sequences([["ab"], []], dtype="<U3", value="x", padding="post")
    assert out.tolist() == [["ab"], ["x"]]


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"padding": "middle"}, r'`padding` must be "pre" or "post". Received: padding=\'middle\''),
        ({"truncating": "both"}, r"`truncating` must be .*Received: truncating='both'"),
        ({"value": "x"}, r"`dtype` int32 is not compatible with `value`'s type"),
        ({"value": "x", "dtype": "float32"}, r"not compatible"),
        ({"value": None}, r"`value` cannot be stored as int32.*Received: value=None"),
        ({"maxlen": -1}, r"`maxlen` must be an integer >= 0. Received: maxlen=-1"),
        ({"maxlen": 2.0}, r"`maxlen` must be an integer"),
        ({"dtype": "nonsense"}, r"`dtype` is not a NumPy dtype"),
    ],
)
def test_pad_sequences_errors(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        pad_sequences([[1, 2], [3]], **kwargs)


def test_pad_sequences_bad_sequences():
    with pytest.raises(ValueError, match="`sequences` must be a list of sequences"):
        pad_sequences(iter([[1], [2]]))
    with pytest.raises(ValueError, match="Found non-iterable at position 1: 3"):
        pad_sequences([[1], 3])
    with pytest.raises(ValueError, match="sequence at position 0 cannot be read"):
        pad_sequences([[[1, 2], [3]]])
    with pytest.raises(ValueError, match="sequence at position 1 cannot be read as int32"):
        pad_sequences([[1], ["a"]])
    # padding is checked even when there is nothing to pad
    with pytest.raises(ValueError, match="padding"):
        pad_sequences([[]], padding="mid")


def test_pad_sequences_matches_keras(rng):
    keras = import_keras()
    lengths = [0, 3, 1, 7, 5, 0, 2]
    ragged = [rng.integers(1, 100, n).tolist() for n in lengths]
    ragged_3d = [rng.standard_normal((n, 2, 3)) for n in lengths]
    for seqs in (ragged, ragged_3d):
        for maxlen in (None, 1, 4, 10):
            for padding in ("pre", "post"):
                for truncating in ("pre", "post"):
                    for dtype, value in (("int32", 0.0), ("float32", -1.5), ("int64", 7)):
                        kw = dict(
                            maxlen=maxlen,
                            padding=padding,
                            truncating=truncating,
                            dtype=dtype,
                            value=value,
                        )
                        ref = keras.utils.pad_sequences(seqs, **kw)
                        out = pad_sequences(seqs, **kw)
                        assert out.dtype == ref.dtype and out.shape == ref.shape, kw
                        np.testing.assert_array_equal(out, ref, err_msg=str(kw))
    words = [["a", "b", "c"], [], ["d"]]
    ref = keras.utils.pad_sequences(words, dtype=object, value="", maxlen=2)
    assert pad_sequences(words, dtype=object, value="", maxlen=2).tolist() == ref.tolist()
    for bad in ({"value": "x"}, {"padding": "mid"}, {"truncating": "mid", "maxlen": 1}):
        with pytest.raises(ValueError):
            keras.utils.pad_sequences([[1, 2]], **bad)
        with pytest.raises(ValueError):
            pad_sequences([[1, 2]], **bad)


# ---------------------------------------------------------------- time series


def _windows_by_hand(data, targets, length, stride, rate, start, end):
    """Every window as Keras' docstring states it, by plain loops."""
    xs, ys = [], []
    start = start or 0
    end = len(data) if end is None else end
    p = 0
    while start + p + (length - 1) * rate < end and (targets is None or p < len(targets)):
        xs.append([data[start + p + k * rate] for k in range(length)])
        if targets is not None:
            ys.append(targets[start + p])
        p += stride
    return np.array(xs), np.array(ys)


def test_keras_docstring_example_1():
    ds = timeseries_dataset_from_array(
        np.arange(99), None, sequence_length=10, sampling_rate=2, sequence_stride=3
    )
    x = np.concatenate(list(ds))
    np.testing.assert_array_equal(x[0], np.arange(0, 20, 2))
    np.testing.assert_array_equal(x[1], np.arange(3, 23, 2))
    np.testing.assert_array_equal(x[-1], np.arange(78, 98, 2))
    assert len(x) == 27 and len(ds) == 1 and ds.num_windows == 27


def test_keras_docstring_example_2_next_step_targets():
    data = np.arange(100.0) ** 1.5
    ds = timeseries_dataset_from_array(data[:-10], data[10:], sequence_length=10, batch_size=16)
    x, y = ds[0]
    np.testing.assert_array_equal(x[0], data[:10])
    assert y[0] == data[10]
    assert len(ds) == 6  # 81 windows of 10 steps in 90: 16 * 5 + 1
    xs, ys = zip(*ds)
    assert [len(b) for b in xs] == [16] * 5 + [1]
    x_all, y_all = timeseries_windows(data[:-10], data[10:], sequence_length=10)
    np.testing.assert_array_equal(np.concatenate(xs), x_all)
    np.testing.assert_array_equal(np.concatenate(ys), y_all)
    for k in range(len(x_all)):  # targets[i] goes with the window starting at i
        np.testing.assert_array_equal(x_all[k], data[k : k + 10])
        assert y_all[k] == data[k + 10]


@pytest.mark.parametrize(
    "length, stride, rate, start, end",
    [
        (1, 1, 1, None, None),
        (3, 1, 1, None, None),
        (4, 2, 3, None, None),
        (5, 3, 2, 4, 30),
        (2, 5, 1, 7, None),
        (6, 1, 4, None, 25),
        (40, 1, 1, None, None),  # longer than the data: no window
    ],
)
def test_windows_against_loops(rng, length, stride, rate, start, end):
    data = rng.standard_normal((37, 2))
    targets = rng.integers(0, 5, 37)
    ref_x, ref_y = _windows_by_hand(data, targets, length, stride, rate, start, end)
    kw = dict(sequence_stride=stride, sampling_rate=rate, start_index=start, end_index=end)
    x, y = timeseries_windows(data, targets, length, **kw)
    assert x.shape == (len(ref_x), length, 2) and y.shape == (len(ref_x),)
    if len(ref_x):
        np.testing.assert_array_equal(x, ref_x)
        np.testing.assert_array_equal(y, ref_y)
    ds = timeseries_dataset_from_array(data, targets, length, batch_size=4, **kw)
    assert len(ds) == -(-len(ref_x) // 4)
    assert len(list(ds)) == len(ds)
    x_only = timeseries_windows(data, None, length, **kw)
    np.testing.assert_array_equal(x_only, x)


def test_short_targets_limit_the_windows():
    data = np.arange(20)
    x, y = timeseries_windows(data, np.arange(5) * 10, sequence_length=3)
    assert len(x) == 5 and y.tolist() == [0, 10, 20, 30, 40]
    with pytest.raises(ValueError, match=r"`targets` is too short.*targets\[7\]"):
        timeseries_windows(data, np.arange(5), sequence_length=3, start_index=3)


def test_dataset_indexing_and_unbatched():
    data = np.arange(10)
    ds = timeseries_dataset_from_array(data, data * 2, 3, batch_size=3)
    assert len(ds) == 3
    x, y = ds[-1]
    np.testing.assert_array_equal(x, [[6, 7, 8], [7, 8, 9]])
    np.testing.assert_array_equal(y, [12, 14])
    with pytest.raises(IndexError):
        ds[3]
    with pytest.raises(TypeError):
        ds[0.5]
    single = timeseries_dataset_from_array(data, None, 3, batch_size=None)
    assert len(single) == 8
    np.testing.assert_array_equal(single[2], [2, 3, 4])
    assert "8 windows" in repr(single)


def test_shuffle_is_keras_first_permutation_and_seeded():
    data = np.arange(50)
    ds = timeseries_dataset_from_array(data, data, 4, shuffle=True, seed=3, batch_size=8)
    expected = np.arange(47)
    np.random.RandomState(3).shuffle(expected)
    np.testing.assert_array_equal(ds.start_positions, expected)
    x, y = ds.arrays()
    np.testing.assert_array_equal(x[:, 0], y)
    np.testing.assert_array_equal(np.sort(y), np.arange(47))
    dc.utils.set_random_seed(5)
    a = timeseries_dataset_from_array(data, data, 4, shuffle=True).start_positions
    dc.utils.set_random_seed(5)
    b = timeseries_dataset_from_array(data, data, 4, shuffle=True).start_positions
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"start_index": -1}, r"`start_index` must be an integer >= 0"),
        ({"start_index": 20}, r"`start_index` must be lower than the length of the data"),
        ({"end_index": 20}, r"`end_index` must be lower than the length of the data"),
        ({"end_index": -2}, r"`end_index` must be higher than 0"),
        ({"start_index": 5, "end_index": 5}, r"`end_index` must be higher than `start_index`"),
        ({"sampling_rate": 0}, r"`sampling_rate` must be a positive integer"),
        ({"sampling_rate": 20}, r"`sampling_rate` must be lower than the length of the data"),
        ({"sequence_stride": 0}, r"`sequence_stride` must be a positive integer"),
        ({"sequence_stride": 25}, r"`sequence_stride` must be lower than the length"),
        ({"sequence_length": 0}, r"`sequence_length` must be a positive integer"),
        ({"batch_size": 0}, r"`batch_size` must be a positive integer"),
        ({"seed": -1}, r"`seed` must be an integer >= 0"),
    ],
)
def test_timeseries_errors(kwargs, pattern):
    args = dict(data=np.arange(20), targets=None, sequence_length=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=pattern):
        timeseries_dataset_from_array(**args)


def test_timeseries_scalar_data():
    with pytest.raises(ValueError, match="`data` must be an array whose axis 0 is time"):
        timeseries_windows(5.0, None, 1)


def test_windows_feed_a_model():
    years, values = dc.datasets.sunspots.load_data()
    series = (values / values.max()).astype(np.float32)
    x, y = timeseries_windows(series[:-8], series[8:], sequence_length=8)
    model = dc.Sequential(
        [dc.Input(shape=(8,)), dc.layers.Dense(4, activation="relu"), dc.layers.Dense(1)]
    )
    model.compile(optimizer="adam", loss="mse")
    history = model.fit(x, y, epochs=3, batch_size=32, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


@pytest.mark.parametrize(
    "length, stride, rate, start, end, batch",
    [
        (10, 1, 1, None, None, 128),
        (4, 2, 3, None, None, 7),
        (5, 3, 2, 4, 60, 5),
        (3, 1, 1, 10, None, None),
    ],
)
def test_timeseries_matches_keras(rng, length, stride, rate, start, end, batch):
    keras = import_keras(need_tensorflow=True)
    data = rng.standard_normal((80, 3)).astype(np.float32)
    targets = rng.standard_normal(80)
    kw = dict(
        sequence_length=length,
        sequence_stride=stride,
        sampling_rate=rate,
        start_index=start,
        end_index=end,
        batch_size=batch,
    )
    for t in (targets, None):
        ref = list(keras.utils.timeseries_dataset_from_array(data, t, **kw))
        out = list(timeseries_dataset_from_array(data, t, **kw))
        assert len(out) == len(ref)
        for a, b in zip(out, ref):
            a = a if t is not None else (a,)
            b = b if t is not None else (b,)
            for u, v in zip(a, b):
                v = np.asarray(v)
                assert u.shape == v.shape and u.dtype == v.dtype
                np.testing.assert_array_equal(u, v)
    # shuffled: the same (window, target) pairs
    ref = keras.utils.timeseries_dataset_from_array(
        data, targets, **{**kw, "batch_size": None}, shuffle=True, seed=1
    )
    pairs_ref = sorted((float(np.asarray(y)), np.asarray(x).tobytes()) for x, y in ref)
    out = timeseries_dataset_from_array(
        data, targets, **{**kw, "batch_size": None}, shuffle=True, seed=1
    )
    pairs = sorted((float(y), x.tobytes()) for x, y in out)
    assert pairs == pairs_ref
