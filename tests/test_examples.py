"""The examples in examples/ that train in seconds run with few epochs and learn."""

import importlib.util
import pathlib

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sunspots_lstm_beats_the_naive_forecast(capsys):
    mae, naive = _load("sunspots_lstm").main(epochs=20)
    assert mae < 0.85 * naive, (mae, naive)
    assert "naive" in capsys.readouterr().out


def test_text_classification_learns():
    accuracy = _load("text_classification").main(epochs=3, verbose=False)
    assert accuracy > 0.85, accuracy


def test_digits_two_heads_learns():
    # two outputs by name, a Lambda, a custom loss and metric; saved, loaded, evaluated
    accuracy, ink_error = _load("digits_two_heads").main(epochs=30, verbose=False)
    assert accuracy > 0.9 and ink_error < 2.0, (accuracy, ink_error)


def test_digits_functional_learns():
    # two inputs, a shared layer, a residual block, then fine-tuning with a frozen branch
    accuracy = _load("digits_functional").main(epochs=15, verbose=False)
    assert accuracy > 0.9, accuracy


def test_digits_image_folder_learns_and_the_saved_model_reads_raw_pixels():
    # PNG files in class folders, image_dataset_from_directory, augmentation and Rescaling
    # inside the model, saved and loaded, predicting from 0..255 pixel values
    accuracy = _load("digits_image_folder").main(epochs=6, verbose=False)
    assert accuracy > 0.9, accuracy
