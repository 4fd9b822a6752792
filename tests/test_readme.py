"""The README's Python examples run as written."""

import pathlib
import re

import numpy as np

import deepcore as dc

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_first_example_trains_iris(tmp_path, monkeypatch):
    # It uses x_train / y_train without defining them: the Iris data stands in.
    (x_train, y_train), _ = dc.datasets.iris.load_data()
    scope = {"x_train": x_train, "y_train": y_train}
    monkeypatch.chdir(tmp_path)
    exec(_python_blocks()[0].replace("epochs=100", "epochs=5"), scope)
    assert scope["model"].compiled


def test_training_workflow_example(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    scope = {}
    dc.utils.set_random_seed(0)
    exec(_python_blocks()[1], scope)
    history = scope["history"]
    assert {"loss", "val_loss", "accuracy", "val_accuracy"} <= set(history.history)
    assert (tmp_path / "checkpoints" / "best.keras").exists()
    assert (tmp_path / "history.png").exists()
    loaded = dc.models.load_model(tmp_path / "checkpoints" / "best.keras")
    x_test = scope["x_test"]
    assert np.isfinite(loaded.predict(x_test, verbose=0)).all()


def test_sequences_and_text_example():
    block = next(b for b in _python_blocks() if "pad_sequences" in b)
    scope = {}
    exec(block, scope)
    assert scope["x"].shape == (290, 10) and scope["y"].shape == (290,)
    np.testing.assert_array_equal(scope["padded"], [[0, 1], [2, 3], [5, 6]])
    vocab = scope["vectorize"].get_vocabulary()
    tokens = scope["tokens"]
    assert tokens.shape == (2, 6) and tokens.dtype == np.int64
    assert [vocab[i] for i in tokens[0][:3]] == ["the", "dog", "sat"]
    np.testing.assert_array_equal(tokens[1], [1, 1, 1, 0, 0, 0])


def test_py_dataset_example():
    block = next(b for b in _python_blocks() if "PyDataset" in b)
    (x, y), (x_test, y_test) = dc.datasets.iris.load_data()
    model = dc.Sequential([dc.Input(shape=(4,)), dc.layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    scope = {"dc": dc, "model": model, "x": x, "y": y, "x_test": x_test, "y_test": y_test}
    exec(block, scope)
    assert model.optimizer.iterations == 10 * len(scope["Batches"](x, y))
    assert len(model.history.history["val_loss"]) == 10


def test_preprocessing_example():
    block = next(b for b in _python_blocks() if "Normalization()" in b)
    x_train = np.random.default_rng(0).normal(5.0, 2.0, (50, 8)).astype(np.float32)
    scope = {"x_train": x_train}
    exec(block, scope)
    mean = scope["norm"].get_weights()[0]
    np.testing.assert_allclose(mean, x_train.mean(axis=0), rtol=1e-5)
    assert scope["model"].predict(x_train, verbose=0).shape == (50, 1)
    assert scope["cnn"].output_shape == (None, 62, 62, 16)
