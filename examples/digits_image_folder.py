"""Images from a folder, as the Keras tutorials load them (needs Pillow and scikit-learn).

Writes scikit-learn's 8x8 handwritten digits as 24x24 PNG files into one subfolder per class,
reads them back with `image_dataset_from_directory` (80% to train, 20% to validate), and
trains a small CNN whose preprocessing lives in the model: augmentation (RandomRotation,
RandomZoom, RandomTranslation: active in training only) and Rescaling(1/255). The model is
saved, loaded back and given raw pixel values of image files, as a deployed model would be.

    python examples/digits_image_folder.py
"""

import pathlib
import tempfile
import time

import numpy as np

import deepcore as dc
from deepcore import layers as L
from deepcore.utils import image_dataset_from_directory, img_to_array, load_img, save_img

SIZE = 24  # pixels of the written images (the 8x8 digits upscaled 3 times)


def write_folder(root: pathlib.Path) -> None:
    """The digits as grayscale PNG files: root/<digit>/<index>.png."""
    (x, y), _ = dc.datasets.digits.load_data(test_split=0.0)
    for i, (image, label) in enumerate(zip(x, y)):
        pixels = np.kron(image / 16.0 * 255.0, np.ones((3, 3)))[..., None]  # (24, 24, 1)
        folder = root / str(int(label))
        folder.mkdir(parents=True, exist_ok=True)
        save_img(folder / f"{i}.png", pixels.round(), scale=False)


def build() -> dc.Sequential:
    model = dc.Sequential(
        [
            dc.Input(shape=(SIZE, SIZE, 1)),
            L.RandomRotation(0.04, fill_mode="constant"),
            L.RandomZoom(0.1, fill_mode="constant"),
            L.RandomTranslation(0.08, 0.08, fill_mode="constant"),
            L.Rescaling(1 / 255),
            L.Conv2D(16, 3, activation="relu"),
            L.MaxPooling2D(),
            L.Conv2D(32, 3, activation="relu"),
            L.MaxPooling2D(),
            L.Flatten(),
            L.Dense(64, activation="relu"),
            L.Dense(10, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def main(epochs: int = 15, verbose: bool = True, folder: str | None = None) -> float:
    """Trains and returns the validation accuracy of the loaded model on raw files."""
    dc.utils.set_random_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(folder or tmp) / "digits"
        write_folder(root)
        train, val = image_dataset_from_directory(
            root,
            image_size=(SIZE, SIZE),
            color_mode="grayscale",
            batch_size=32,
            validation_split=0.2,
            subset="both",
            seed=0,
            verbose=verbose,
        )
        model = build()
        start = time.perf_counter()
        model.fit(train, epochs=epochs, validation_data=val, verbose=2 if verbose else 0)
        seconds = time.perf_counter() - start

        path = pathlib.Path(tmp) / "digits_cnn.keras"
        model.save(path)
        loaded = dc.models.load_model(path)
        # raw pixel values of the validation files, 0..255, as a deployed model gets them
        files = val.file_paths
        raw = np.stack([img_to_array(load_img(f, color_mode="grayscale")) for f in files])
        labels = np.array([val.class_names.index(pathlib.Path(f).parent.name) for f in files])
        predicted = loaded.predict(raw, verbose=0).argmax(axis=1)
        accuracy = float((predicted == labels).mean())
    if verbose:
        print(f"classes: {train.class_names}")
        print(f"training time: {seconds:.2f} s for {epochs} epochs")
        print(f"validation accuracy of the saved model on raw files: {accuracy:.4f}")
    return accuracy


if __name__ == "__main__":
    main()
