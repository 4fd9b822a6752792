"""Image files, as Keras 3's keras.utils reads them: load_img, img_to_array, array_to_img and
save_img (round trips exact for PNG, resizes as Pillow's), and image_dataset_from_directory
(the file listing, labels, splits and seeded shuffles as Keras', pixels resized as
the float64 reference resize and as Keras' JAX backend, a model trained on it, clear errors)."""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

PIL = pytest.importorskip("PIL")
from keras_reference import import_keras  # noqa: E402
from PIL import Image  # noqa: E402
from resize_reference import resize  # noqa: E402

import deepcore as dc  # noqa: E402
from deepcore import layers as L  # noqa: E402
from deepcore.utils import (  # noqa: E402
    array_to_img,
    image_dataset_from_directory,
    img_to_array,
    load_img,
    save_img,
)

CLASSES = {"zero": 0, "one": 1, "two": 2}  # folder -> digit (the classes sort as one, two, zero)


@pytest.fixture(scope="module")
def digits():
    """scikit-learn's 8x8 digits as uint8 in 0..255, and their digits (read from the file
    scikit-learn ships: importing scikit-learn takes seconds)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        pytest.skip("scikit-learn is not installed")
    csv = os.path.join(os.path.dirname(spec.origin), "datasets", "data", "digits.csv.gz")
    data = np.loadtxt(csv, delimiter=",", dtype=np.float64)
    images = data[:, :-1].reshape(-1, 8, 8)
    return np.round(images * (255 / 16)).astype(np.uint8), data[:, -1].astype(int)


def rgb(img, k):
    """A grayscale uint8 image (h, w) as RGB with channels that differ."""
    return np.stack([img, 255 - img, np.roll(img, k, axis=1)], axis=-1).astype(np.uint8)


@pytest.fixture
def folder(tmp_path, digits):
    """tmp_path/data/<class>/: 5 PNGs per class (RGB, grayscale, 16x8 and 8x12 sizes, one
    in a nested folder), plus files that are not images and a hidden folder."""
    images, target = digits
    root = tmp_path / "data"
    for name, digit in CLASSES.items():
        (root / name / "nested").mkdir(parents=True)
        picks = images[target == digit][:5]
        for i, img in enumerate(picks):
            if i == 1:
                img = np.kron(img, np.ones((2, 1), np.uint8))  # 16 x 8
            if i == 2:
                img = np.concatenate([img, img[:, :4]], axis=1)  # 8 x 12
            arr = img if i % 2 else rgb(img, i)
            where = root / name / ("nested" if i == 4 else "") / f"{name}_{i}.png"
            Image.fromarray(arr).save(where)
        (root / name / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()
    return root


def decoded(path, mode="RGB"):
    with Image.open(path) as img:
        x = np.asarray(img.convert(mode), np.float32)
    return x[..., None] if x.ndim == 2 else x


def batches(ds):
    xs, ys = zip(*ds)
    return np.concatenate(xs), np.concatenate(ys)


# --- load_img, img_to_array, array_to_img, save_img -------------------------------------


def test_png_round_trips_are_exact(tmp_path, digits):
    img = digits[0][5]
    x = rgb(img, 3).astype(np.float32)
    save_img(tmp_path / "a.png", x, scale=False)
    loaded = load_img(tmp_path / "a.png")
    assert loaded.mode == "RGB" and loaded.size == (8, 8)
    back = img_to_array(loaded)
    assert back.dtype == np.float32 and back.shape == (8, 8, 3)
    np.testing.assert_array_equal(back, x)
    gray = img[:, :, None].astype(np.float32)
    save_img(str(tmp_path / "g.png"), gray, scale=False)
    g = load_img(tmp_path / "g.png", color_mode="grayscale")
    assert g.mode == "L"
    np.testing.assert_array_equal(img_to_array(g), gray)
    np.testing.assert_array_equal(img_to_array(g, dtype="uint8")[..., 0], img)
    # RGBA keeps its alpha; rgb of grayscale repeats the channel
    rgba = np.concatenate([x, np.full((8, 8, 1), 7, np.float32)], axis=-1)
    save_img(tmp_path / "c.png", rgba, scale=False)
    np.testing.assert_array_equal(img_to_array(load_img(tmp_path / "c.png", "rgba")), rgba)
    np.testing.assert_array_equal(img_to_array(load_img(tmp_path / "g.png")), gray.repeat(3, -1))


def test_array_to_img_scales_and_picks_the_mode():
    x = np.linspace(-1, 3, 48, dtype=np.float32).reshape(4, 4, 3)
    img = array_to_img(x)
    assert img.mode == "RGB" and img.size == (4, 4)
    a = np.asarray(img)
    assert a.min() == 0 and a.max() == 255
    np.testing.assert_array_equal(a, ((x + 1) / 4 * 255).astype(np.uint8))
    assert array_to_img(np.zeros((3, 5, 1))).mode == "L"
    assert array_to_img(np.zeros((3, 5, 4))).size == (5, 3)
    assert array_to_img(np.full((2, 2, 1), 1000.0), scale=False).mode == "I"
    with pytest.raises(ValueError, match="3 axes"):
        array_to_img(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="1, 3 or 4 channels"):
        array_to_img(np.zeros((4, 4, 2)))
    with pytest.raises(ValueError, match="data_format"):
        array_to_img(x, data_format="channels_first")


def test_load_img_resizes_as_pillow(tmp_path, digits):
    arr = rgb(np.concatenate([digits[0][0], digits[0][1]], axis=1), 1)  # 8 x 16
    Image.fromarray(arr).save(tmp_path / "w.png")
    src = Image.fromarray(arr)
    for name, method in [("nearest", Image.NEAREST), ("bilinear", Image.BILINEAR)]:
        got = load_img(tmp_path / "w.png", target_size=(5, 7), interpolation=name)
        assert got.size == (7, 5)
        np.testing.assert_array_equal(np.asarray(got), np.asarray(src.resize((7, 5), method)))
    # keep_aspect_ratio: the centred 8 x 8 window, then the resize
    got = load_img(tmp_path / "w.png", target_size=(4, 4), keep_aspect_ratio=True)
    want = src.resize((4, 4), Image.NEAREST, box=(4, 0, 12, 8))
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    gray = load_img(tmp_path / "w.png", color_mode="grayscale", target_size=(8, 16))
    np.testing.assert_array_equal(np.asarray(gray), np.asarray(src.convert("L")))
    assert img_to_array(load_img(tmp_path / "w.png", color_mode="rgba")).shape == (8, 16, 4)


def test_image_utils_errors(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="missing.png"):
        load_img(tmp_path / "missing.png")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(PIL.UnidentifiedImageError, match="bad.png"):
        load_img(tmp_path / "bad.png")
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(tmp_path / "ok.png")
    with pytest.raises(ValueError, match="color_mode='cmyk'"):
        load_img(tmp_path / "ok.png", color_mode="cmyk")
    with pytest.raises(ValueError, match="interpolation='cubic'"):
        load_img(tmp_path / "ok.png", target_size=(3, 3), interpolation="cubic")
    with pytest.raises(ValueError, match="target_size"):
        load_img(tmp_path / "ok.png", target_size=(3, 0))
    with pytest.raises(ValueError, match="data_format='channels_first'"):
        img_to_array(Image.new("RGB", (2, 2)), data_format="channels_first")
    with pytest.warns(UserWarning, match="RGBA"):
        save_img(tmp_path / "x.jpg", np.zeros((4, 4, 4)))
    assert load_img(tmp_path / "x.jpg").size == (4, 4)
    # Pillow is imported when needed, not with deepcore
    code = "import sys, deepcore.utils; assert 'PIL' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
    monkeypatch.setitem(sys.modules, "PIL", None)  # Pillow missing
    with pytest.raises(ImportError, match="pip install pillow"):
        load_img(tmp_path / "ok.png")
    with pytest.raises(ImportError, match="pip install pillow"):
        image_dataset_from_directory(tmp_path)


# --- image_dataset_from_directory -----------------------------------------------------


def test_files_classes_and_labels(folder, capsys):
    ds = image_dataset_from_directory(folder, image_size=(8, 8), batch_size=4, shuffle=False)
    assert "Found 15 files belonging to 3 classes." in capsys.readouterr().out
    assert isinstance(ds, dc.utils.PyDataset)
    assert ds.class_names == ["one", "two", "zero"]
    assert len(ds) == 4 and len(ds.file_paths) == 15
    assert ds.file_paths[:5] == [
        os.path.join(str(folder), "one", f)
        for f in ["one_0.png", "one_1.png", "one_2.png", "one_3.png", "nested/one_4.png"]
    ]
    shapes = [(x.shape, y.shape, x.dtype, y.dtype) for x, y in ds]
    assert shapes[0] == ((4, 8, 8, 3), (4,), np.float32, np.int32)
    assert shapes[-1][:2] == ((3, 8, 8, 3), (3,))
    x, y = batches(ds)
    folders = [os.path.relpath(p, folder).split(os.sep)[0] for p in ds.file_paths]
    np.testing.assert_array_equal(y, [ds.class_names.index(f) for f in folders])
    assert 0 <= x.min() and x.max() <= 255 and x.max() > 200
    # one decoded without resizing: exact pixels
    np.testing.assert_array_equal(x[0], decoded(ds.file_paths[0]))
    # take, iteration again, negative index
    taken = ds.take(2)
    assert len(taken) == 2 and len(list(taken)) == 2 and len(list(ds.take(-1))) == 4
    np.testing.assert_array_equal(next(iter(ds.take(1)))[0], ds[0][0])
    np.testing.assert_array_equal(ds[-1][1], ds[3][1])
    with pytest.raises(IndexError):
        ds[4]


def test_label_modes_and_color_modes(folder):
    common = dict(image_size=(6, 5), batch_size=32, shuffle=False, verbose=False)
    _, y_int = image_dataset_from_directory(folder, **common)[0]
    _, cat = image_dataset_from_directory(folder, label_mode="categorical", **common)[0]
    assert cat.shape == (15, 3) and cat.dtype == np.float32
    np.testing.assert_array_equal(cat, np.eye(3)[y_int])
    ds = image_dataset_from_directory(
        folder, label_mode="binary", class_names=["zero", "one"], **common
    )
    assert ds.class_names == ["zero", "one"] and len(ds.file_paths) == 10
    x, y = ds[0]
    assert y.shape == (10, 1) and y.dtype == np.float32
    np.testing.assert_array_equal(y[:, 0], [0] * 5 + [1] * 5)
    assert ["zero" in p for p in ds.file_paths] == [True] * 5 + [False] * 5
    for kw in (dict(label_mode=None), dict(labels=None)):
        only = image_dataset_from_directory(folder, color_mode="grayscale", **kw, **common)
        assert isinstance(only[0], np.ndarray) and only[0].shape == (15, 6, 5, 1)
        assert only.class_names is None
    explicit = list(range(5)) * 3
    ds = image_dataset_from_directory(folder, labels=explicit, color_mode="rgba", **common)
    x, y = ds[0]
    assert x.shape == (15, 6, 5, 4) and ds.class_names == ["0", "1", "2", "3", "4"]
    np.testing.assert_array_equal(y, explicit)
    assert np.all(x[..., 3] == 255)


def test_split_seed_and_reshuffle(folder):
    common = dict(image_size=(8, 8), batch_size=5, verbose=False, seed=3)
    train, val = image_dataset_from_directory(folder, validation_split=0.2, subset="both", **common)
    assert len(train.file_paths) == 12 and len(val.file_paths) == 3
    assert not set(train.file_paths) & set(val.file_paths)
    everything = image_dataset_from_directory(folder, **common)
    assert train.file_paths + val.file_paths == everything.file_paths
    alone = image_dataset_from_directory(
        folder, validation_split=0.2, subset="validation", **common
    )
    assert alone.file_paths == val.file_paths
    np.testing.assert_array_equal(alone[0][0], val[0][0])
    again = image_dataset_from_directory(folder, **common)
    assert again.file_paths == everything.file_paths
    other = image_dataset_from_directory(folder, **{**common, "seed": 4})
    assert other.file_paths != everything.file_paths
    assert sorted(other.file_paths) == sorted(everything.file_paths)
    # labels follow their files through the shuffle
    _, y = batches(everything)
    folders = [os.path.relpath(p, folder).split(os.sep)[0] for p in everything.file_paths]
    np.testing.assert_array_equal(y, [everything.class_names.index(f) for f in folders])
    # a fresh seeded order every epoch after the first; the validation set keeps its own
    first = list(train.file_paths)
    for _ in range(3):
        train.on_epoch_begin()
        val.on_epoch_begin()
    assert train.file_paths != first and sorted(train.file_paths) == sorted(first)
    assert val.file_paths == alone.file_paths


@pytest.mark.parametrize(
    "kw",
    [
        dict(interpolation="bilinear"),
        dict(interpolation="nearest"),
        dict(interpolation="bicubic", crop_to_aspect_ratio=True),
        dict(interpolation="lanczos3", pad_to_aspect_ratio=True),
    ],
)
def test_pixels_are_the_decoded_files_resized(folder, kw):
    ds = image_dataset_from_directory(
        folder, image_size=(5, 7), shuffle=False, verbose=False, batch_size=15, **kw
    )
    x, _ = ds[0]
    for got, path in zip(x, ds.file_paths):
        want = resize(decoded(path)[None], (5, 7), **kw)[0]
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=2e-4)


def test_same_files_labels_and_pixels_as_keras(folder):
    keras = import_keras()
    if keras.backend.backend() != "jax":
        pytest.skip("the pixel comparison is with Keras' JAX backend")
    try:
        from keras.src.utils import dataset_utils
        from keras.src.utils.image_dataset_utils import ALLOWLIST_FORMATS, _load_image_grain
    except ImportError as e:
        pytest.skip(f"Keras' helpers moved: {e}")
    directory = str(folder)
    paths, labels, names = dataset_utils.index_directory(
        directory, "inferred", ALLOWLIST_FORMATS, shuffle=True, seed=11, verbose=False
    )
    ds = image_dataset_from_directory(directory, seed=11, image_size=(6, 9), verbose=False)
    assert ds.file_paths == list(paths) and ds.class_names == names
    np.testing.assert_array_equal(ds[0][1], labels)
    for kw in (
        dict(interpolation="bilinear"),
        dict(interpolation="bicubic", crop_to_aspect_ratio=True),
        dict(interpolation="nearest", pad_to_aspect_ratio=True, color_mode="grayscale"),
    ):
        kw = {"color_mode": "rgb", **kw}
        ds = image_dataset_from_directory(
            directory, image_size=(6, 9), shuffle=False, verbose=False, batch_size=32, **kw
        )
        x = ds[0][0]
        channels = {"rgb": 3, "grayscale": 1}[kw["color_mode"]]
        for i in (0, 1, 2):  # (8 x 8 RGB, 16 x 8 grayscale, 8 x 12 RGB)
            got, path = x[i], ds.file_paths[i]
            want = _load_image_grain(
                path,
                (6, 9),
                channels,
                kw["interpolation"],
                "channels_last",
                kw.get("crop_to_aspect_ratio", False),
                kw.get("pad_to_aspect_ratio", False),
            )
            np.testing.assert_allclose(got, np.asarray(want), rtol=1e-5, atol=1e-4)
    # load_img and img_to_array as Keras'
    path = ds.file_paths[2]
    for kw in (dict(), dict(target_size=(5, 3), interpolation="bicubic", keep_aspect_ratio=True)):
        np.testing.assert_array_equal(
            img_to_array(load_img(path, **kw)),
            keras.utils.img_to_array(keras.utils.load_img(path, **kw)),
        )


def test_fit_evaluate_and_predict_on_a_dataset(folder):
    dc.utils.set_random_seed(0)
    train, val = image_dataset_from_directory(
        folder,
        color_mode="grayscale",
        image_size=(8, 8),
        batch_size=4,
        validation_split=0.2,
        subset="both",
        seed=1,
        verbose=False,
    )
    model = dc.Sequential(
        [dc.Input(shape=(8, 8, 1)), L.Flatten(), L.Dense(3, activation="softmax")]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(train, validation_data=val, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and "val_loss" in history.history
    assert np.isfinite(model.evaluate(val, verbose=0)).all()
    out = model.predict(val, verbose=0)
    assert out.shape == (3, 3)
    np.testing.assert_allclose(out.sum(axis=1), 1, rtol=1e-5)


def test_bad_input_is_named(tmp_path, folder):
    call = image_dataset_from_directory
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="nowhere"):
        call(missing)
    flat = tmp_path / "flat"
    flat.mkdir()
    Image.new("RGB", (4, 4)).save(flat / "a.png")
    with pytest.raises(ValueError, match="(?s)flat.*one subfolder per class"):
        call(flat, verbose=False)
    assert len(call(flat, labels=None, verbose=False).file_paths) == 1
    empty = tmp_path / "empty"
    (empty / "cls").mkdir(parents=True)
    (empty / "cls" / "x.txt").write_text("")
    with pytest.raises(ValueError, match="No images found in directory .*empty"):
        call(empty, verbose=False)
    with pytest.raises(ValueError, match=r"len\(labels\) is 3 .* 15 image files"):
        call(folder, labels=[0, 1, 2], verbose=False)
    with pytest.raises(ValueError, match="class_names=\\['one', 'four'\\]"):
        call(folder, class_names=["one", "four"], verbose=False)
    with pytest.raises(ValueError, match="exactly 2 classes"):
        call(folder, label_mode="binary", verbose=False)
    bad = [
        (dict(label_mode="sparse"), "label_mode='sparse'"),
        (dict(color_mode="bgr"), "color_mode='bgr'"),
        (dict(validation_split=1.5, subset="training", seed=1), "validation_split=1.5"),
        (dict(validation_split=0.2, subset="train", seed=1), "subset='train'"),
        (dict(validation_split=0.2), "subset=None"),
        (dict(validation_split=0.2, subset="training"), "seed"),
        (dict(batch_size=None), "batch_size=None"),
        (dict(batch_size=0), "batch_size=0"),
        (dict(image_size=(8,)), "image_size"),
        (dict(interpolation="area"), "interpolation='area'"),
        (dict(data_format="channels_first"), "data_format='channels_first'"),
        (dict(crop_to_aspect_ratio=True, pad_to_aspect_ratio=True), "pad_to_aspect_ratio"),
        (dict(labels="folders"), "labels='folders'"),
        (dict(labels=None, class_names=["one"]), "class_names"),
    ]
    for kw, named in bad:
        with pytest.raises(ValueError, match=named.replace("(", r"\(").replace(")", r"\)")):
            call(folder, verbose=False, **kw)
    (folder / "one" / "broken.png").write_bytes(b"\x89PNG broken")
    ds = call(folder, shuffle=False, verbose=False, batch_size=2)
    with pytest.raises(ValueError, match="broken.png"):
        list(ds)


def test_the_tutorials_dataset_pipeline(folder):
    # ds.map(augment).prefetch(...) and ds.cache() as tf.data's, in a nested Sequential
    train = image_dataset_from_directory(
        folder, image_size=(8, 8), batch_size=4, seed=1, verbose=False
    )
    flips = L.RandomFlip("horizontal", seed=3)
    mapped = train.cache().map(lambda images, labels: (flips(images), labels)).prefetch(2)
    shuffled = train.shuffle(1000, seed=4)
    assert sorted(int(b[1][0]) for b in shuffled) == sorted(int(b[1][0]) for b in train)
    assert len(mapped) == len(train) and mapped.class_names == train.class_names
    images, labels = next(iter(mapped.take(1)))
    plain, same = train[0]
    np.testing.assert_array_equal(labels, same)
    assert images.shape == plain.shape
    augment = dc.Sequential([L.RandomFlip("horizontal", input_shape=(8, 8, 3)), L.RandomZoom(0.1)])
    model = dc.Sequential([augment, L.Rescaling(1 / 255), L.Flatten(), L.Dense(3)])
    model.compile("adam", dc.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(mapped, epochs=2, verbose=0)
    assert [la.name for la in model.layers[:2]] == [la.name for la in augment.layers]
