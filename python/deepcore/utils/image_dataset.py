"""A dataset of image files in class folders, as `keras.utils.image_dataset_from_directory`:
the files are listed (and shuffled) when the dataset is made, and each batch is decoded with
Pillow when it is asked for, so that memory holds a batch or a few, whatever the number of
files. `fit`, `evaluate` and `predict` take the dataset as `x` (it is a `PyDataset`)."""

from __future__ import annotations

import os
from typing import Any, Callable, Iterator, NamedTuple, Sequence

import numpy as np

from .._registry import check_bool, check_int, check_positive_int
from . import image_resize
from .image_utils import check_color_mode, check_data_format, check_size, convert_mode, pil_image
from .py_dataset import PyDataset

__all__ = ["ALLOWLIST_FORMATS", "ImageDataset", "ImageDecoder", "image_dataset_from_directory"]

#: The file extensions read (case-insensitive); other files are left out.
ALLOWLIST_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")

_KERAS_ONLY = ("area", "gaussian", "mitchellcubic")  # (Keras' TensorFlow resizes)


class ImageDecoder(NamedTuple):
    """How a file becomes an image of the dataset: decoded by Pillow, converted to
    `color_mode`, and resized (`image_resize.resize`, which also crops or pads)."""

    color_mode: str
    image_size: tuple[int, int]
    interpolation: str
    crop_to_aspect_ratio: bool = False
    pad_to_aspect_ratio: bool = False

    def __call__(self, paths: Sequence[str]) -> np.ndarray:
        """The image files at `paths` as float32 (n, height, width, channels) in [0, 255]:
        the images of one size resized together (one engine call per size, not per file)."""
        images = [self.read(p) for p in paths]
        out = np.empty((len(images), *self.image_size, images[0].shape[2]), np.float32)
        by_shape: dict[tuple, list[int]] = {}
        for k, x in enumerate(images):
            by_shape.setdefault(x.shape, []).append(k)
        for same in by_shape.values():
            out[same] = image_resize.resize(
                np.stack([images[k] for k in same]),
                self.image_size,
                self.interpolation,
                self.crop_to_aspect_ratio,
                self.pad_to_aspect_ratio,
            )
        return out

    def read(self, path: str) -> np.ndarray:
        """The image file at `path` as float32 (height, width, channels), not resized."""
        Image = pil_image()
        try:
            with Image.open(path) as img:
                img.load()
                x = np.asarray(convert_mode(img, self.color_mode), dtype=np.float32)
        except FileNotFoundError:
            raise
        except (OSError, ValueError, SyntaxError) as e:  # (Pillow's unreadable files)
            raise ValueError(
                f"Cannot decode the image file {path!r}: {type(e).__name__}: {e}"
            ) from e
        return x[:, :, None] if x.ndim == 2 else x


class _Batches(PyDataset):
    """What the datasets of this module share, with tf.data's names where Keras users
    call them: one pass by iteration, `take(n)`, `map(fn)`, and `prefetch` / `cache`."""

    def __len__(self) -> int:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Any]:
        for i in range(len(self)):
            yield self[i]

    def take(self, count: int) -> _Taken:
        """The first `count` batches (all of them when `count` is -1 or more than there
        are): an iterable, as `for images, labels in ds.take(1):`."""
        if not isinstance(count, (int, np.integer)) or isinstance(count, bool) or count < -1:
            raise ValueError(f"`count` must be an integer >= -1. Received: count={count!r}")
        return _Taken(self, len(self) if count == -1 else min(int(count), len(self)))

    def map(self, fn: Callable[..., Any], num_parallel_calls: Any = None) -> _Mapped:
        """The batches passed through `fn` (called with a batch's parts: `fn(images,
        labels)`), computed when a batch is asked for. `num_parallel_calls` is accepted and
        ignored (batches are decoded when fit asks for them)."""
        if not callable(fn):
            raise ValueError(f"`map` takes a function. Received: {fn!r}")
        return _Mapped(self, fn)

    def shuffle(
        self, buffer_size: Any = None, seed: int | None = None, reshuffle_each_iteration: Any = None
    ) -> _Shuffled:
        """The batches in a random order, drawn again each epoch (tf.data's `shuffle` on a
        batched dataset, with the whole dataset as its buffer)."""
        return _Shuffled(self, seed)

    def prefetch(self, buffer_size: Any = None) -> _Batches:
        """The same dataset (fit already reads a batch ahead of the engine)."""
        return self

    def on_epoch_begin(self) -> None:
        pass


class ImageDataset(_Batches):
    """The batches of `image_dataset_from_directory`: `len(ds)` batches, `ds[i]` (decoded
    when asked for), `for images, labels in ds:` (one pass), `ds.take(n)`.

    A batch is `(images, labels)`, or `images` alone without labels: float32 images of
    shape (batch, height, width, channels) with values in [0, 255], and labels as
    `label_mode` says. With `shuffle=True` the first pass reads the files in the order of
    `file_paths` as listed, and each further epoch of fit, evaluate or predict (each
    `on_epoch_begin` after the first) in a fresh order drawn from the seed.

    Attributes:
        class_names: The class names, the index of each its label (None without labels).
        file_paths: The files' paths, in the order of the current pass.
        batch_size: Images per batch (the last batch may hold fewer).
        label_mode: "int", "categorical", "binary" or None.
        decode: The `ImageDecoder` of the files.
    """

    def __init__(
        self,
        file_paths: Sequence[str],
        labels: np.ndarray | None,
        label_mode: str | None,
        class_names: list[str] | None,
        batch_size: int,
        decode: ImageDecoder,
        shuffle: bool = False,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self._paths = list(file_paths)
        self._labels = labels
        self.label_mode = label_mode if labels is not None else None
        self.class_names = class_names
        self.batch_size = batch_size
        self.decode = decode
        self._reshuffle = shuffle
        self._order = np.arange(len(self._paths))
        self._rng = np.random.default_rng(seed)
        self._epochs = 0
        self._cache: dict[int, np.ndarray] | None = None

    @property
    def file_paths(self) -> list[str]:
        """The files' paths in the order of the current pass."""
        return [self._paths[i] for i in self._order]

    def __len__(self) -> int:
        return -(-len(self._paths) // self.batch_size)

    def on_epoch_begin(self) -> None:
        """A fresh order of the files for every epoch after the first (with shuffle)."""
        if self._reshuffle and self._epochs > 0:
            self._order = self._rng.permutation(len(self._paths))
        self._epochs += 1

    def __getitem__(self, index: int) -> Any:
        n = len(self)
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
            raise TypeError(f"An ImageDataset is indexed by an int. Received: {index!r}")
        i = int(index) + n if index < 0 else int(index)
        if not 0 <= i < n:
            raise IndexError(f"batch index {index} out of range for {n} batches")
        rows = self._order[i * self.batch_size : (i + 1) * self.batch_size]
        images = self._images(rows)
        if self._labels is None:
            return images
        labels = self._labels[rows]
        if self.label_mode == "binary":
            return images, labels.astype(np.float32)[:, None]
        if self.label_mode == "categorical":
            onehot = np.zeros((len(rows), len(self.class_names or ())), np.float32)
            onehot[np.arange(len(rows)), labels] = 1.0
            return images, onehot
        return images, labels.astype(np.int32)

    def _images(self, rows: np.ndarray) -> np.ndarray:
        """The images of files `rows`, decoded (those not in the cache, when caching)."""
        if self._cache is None:
            return self.decode([self._paths[j] for j in rows])
        missing = [int(j) for j in rows if j not in self._cache]
        if missing:
            decoded = self.decode([self._paths[j] for j in missing])
            self._cache.update(zip(missing, decoded))
        return np.stack([self._cache[j] for j in rows])

    def cache(self, filename: str = "") -> ImageDataset:
        """Keeps each image once decoded, in memory (tf.data's `cache()`; a file name is
        not supported): later epochs read no file."""
        if filename:
            raise ValueError("deepcore caches in memory only: call cache() without a file name")
        if self._cache is None:
            self._cache = {}
        return self

    def __repr__(self) -> str:
        return (
            f"ImageDataset({len(self._paths)} files, {len(self)} batches of "
            f"{self.batch_size}, label_mode={self.label_mode!r}, {self.decode})"
        )


class _Taken:
    """The first `count` batches of a dataset; iterable as often as wanted."""

    def __init__(self, dataset: _Batches, count: int) -> None:
        self.dataset, self.count = dataset, count

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[Any]:
        for i in range(self.count):
            yield self.dataset[i]


class _Mapped(_Batches):
    """A dataset's batches passed through a function (`ds.map(fn)`)."""

    def __init__(self, dataset: _Batches, fn: Callable[..., Any]) -> None:
        super().__init__()
        self.dataset, self.fn = dataset, fn
        self.class_names = getattr(dataset, "class_names", None)

    def __len__(self) -> int:
        return len(self.dataset)

    def on_epoch_begin(self) -> None:
        self.dataset.on_epoch_begin()

    def __getitem__(self, index: int) -> Any:
        batch = self.dataset[index]
        return self.fn(*batch) if isinstance(batch, tuple) else self.fn(batch)


class _Shuffled(_Batches):
    """A dataset's batches in an order drawn from `seed` at each epoch (`ds.shuffle()`)."""

    def __init__(self, dataset: _Batches, seed: int | None) -> None:
        super().__init__()
        self.dataset = dataset
        self.class_names = getattr(dataset, "class_names", None)
        self._rng = np.random.default_rng(seed)
        self._order = self._rng.permutation(len(dataset))

    def __len__(self) -> int:
        return len(self.dataset)

    def on_epoch_begin(self) -> None:
        self.dataset.on_epoch_begin()
        self._order = self._rng.permutation(len(self.dataset))

    def __getitem__(self, index: int) -> Any:
        return self.dataset[int(self._order[index])]


def _walk(directory: str, follow_links: bool) -> list[str]:
    """The image files under `directory` (all depths), relative to it: by folder, then by
    name, as Keras lists them."""
    found = []
    for root, _, files in sorted(os.walk(directory, followlinks=follow_links), key=lambda t: t[0]):
        for name in sorted(files):
            if name.lower().endswith(ALLOWLIST_FORMATS):
                found.append(os.path.relpath(os.path.join(root, name), directory))
    return found


def _index(
    directory: str, labels: Any, class_names: list[str] | None, follow_links: bool
) -> tuple[list[str], np.ndarray | None, list[str] | None]:
    """(file paths, labels, class names) of the files in `directory`, in Keras' order."""
    if isinstance(labels, str):  # ("inferred")
        subdirs = sorted(
            d
            for d in os.listdir(directory)
            if os.path.isdir(os.path.join(directory, d)) and not d.startswith(".")
        )
        if not subdirs:
            raise ValueError(
                f"No class subfolders in directory {directory!r}: with labels='inferred', the "
                "images are expected in one subfolder per class (directory/class_a/*.png, "
                "directory/class_b/*.png, ...). Pass labels=None to read the images without "
                "labels."
            )
        if class_names is not None:
            if not set(class_names) <= set(subdirs):
                raise ValueError(
                    "`class_names` must name subfolders of the directory: expected names "
                    f"among {subdirs}. Received: class_names={class_names!r}"
                )
            subdirs = list(class_names)
        paths, found = [], []
        for k, sub in enumerate(subdirs):
            files = _walk(os.path.join(directory, sub), follow_links)
            paths += [os.path.join(directory, sub, f) for f in files]
            found += [k] * len(files)
        return paths, np.array(found, np.int64), list(subdirs)
    paths = [os.path.join(directory, f) for f in _walk(directory, follow_links)]
    if labels is None:
        return paths, None, None
    if len(labels) != len(paths):
        raise ValueError(
            f"`labels` must hold one label per image file: len(labels) is {len(labels)} "
            f"while directory {directory!r} holds {len(paths)} image files."
        )
    return paths, labels, [str(v) for v in sorted(set(labels.tolist()))]


def _check_labels(labels: Any) -> Any:
    if labels is None or (isinstance(labels, str) and labels == "inferred"):
        return labels
    arr = np.asarray(labels) if isinstance(labels, (list, tuple, np.ndarray)) else None
    if arr is None or arr.ndim != 1 or not (arr.dtype.kind in "iu" or arr.size == 0):
        raise ValueError(
            '`labels` must be "inferred" (from the subfolders), None (no labels), or a list '
            "of integer labels, one per image file in the sorted order of their paths. "
            f"Received: labels={labels!r}"
        )
    if arr.size and arr.min() < 0:
        raise ValueError(f"`labels` must be integers >= 0. Received: min label {arr.min()}")
    return arr.astype(np.int64)


def _check_split(validation_split: Any, subset: Any, shuffle: bool, seed: Any) -> None:
    """Keras' rules for validation_split, subset and seed."""
    number = (
        isinstance(validation_split, (int, float, np.integer, np.floating))
        and validation_split is not True
    )
    if validation_split is not None and not (number and 0 <= validation_split < 1):
        raise ValueError(
            "`validation_split` must be a number between 0 and 1 (exclusive). Received: "
            f"validation_split={validation_split!r}"
        )
    if subset not in ("training", "validation", "both", None):
        raise ValueError(
            '`subset` must be "training", "validation", "both" or None. Received: '
            f"subset={subset!r}"
        )
    if bool(validation_split) != (subset is not None):
        raise ValueError(
            "`validation_split` and `subset` go together: set both or neither. Received: "
            f"validation_split={validation_split!r}, subset={subset!r}"
        )
    if validation_split and shuffle and seed is None:
        raise ValueError(
            "With `validation_split` and shuffle=True, pass a `seed`: the training and "
            "validation subsets are cut from the same shuffled file list, and only the same "
            "seed keeps them apart."
        )


def image_dataset_from_directory(
    directory: str | os.PathLike,
    labels: Any = "inferred",
    label_mode: str | None = "int",
    class_names: Sequence[str] | None = None,
    color_mode: str = "rgb",
    batch_size: int = 32,
    image_size: tuple[int, int] = (256, 256),
    shuffle: bool = True,
    seed: int | None = None,
    validation_split: float | None = None,
    subset: str | None = None,
    interpolation: str = "bilinear",
    follow_links: bool = False,
    crop_to_aspect_ratio: bool = False,
    pad_to_aspect_ratio: bool = False,
    data_format: str | None = None,
    verbose: bool = True,
) -> ImageDataset | list[ImageDataset]:
    """A dataset of the image files in `directory`, as
    `keras.utils.image_dataset_from_directory`.

    With `labels="inferred"`, `directory` holds one subfolder per class
    (`directory/cats/*.jpg`, `directory/dogs/*.jpg`): the classes are the sorted subfolder
    names, and each image (at any depth of its class folder) is labelled with the index of
    its class. The files read are .bmp, .gif (the first frame), .jpeg, .jpg and .png.

    Args:
        directory: The folder of the images.
        labels: "inferred" (from the subfolders), None (no labels: all images under
            `directory`), or a list of integer labels, one per image file, in the sorted
            order of their paths.
        label_mode: "int" (int32 labels, shape (batch,)), "categorical" (float32 one-hot,
            (batch, num_classes)), "binary" (float32 0 or 1, (batch, 1); two classes), or
            None (no labels).
        class_names: With inferred labels: the subfolders to read (a subset of them), in
            the order of their labels.
        color_mode: "rgb", "rgba" or "grayscale": images of 3, 4 or 1 channels.
        batch_size: Images per batch (the last batch may hold fewer).
        image_size: (height, width) every image is resized to (an int n: (n, n)).
        shuffle: Whether to shuffle the files (else they come in sorted order).
        seed: Seed of the shuffle; drawn when None (required with `validation_split`).
        validation_split: Fraction of the files kept for validation (0 < split < 1).
        subset: With `validation_split`: "training", "validation", or "both" (a list of
            the two datasets).
        interpolation: Resize method: "bilinear", "nearest", "bicubic", "lanczos3" or
            "lanczos5" (computed as Keras' JAX backend does, without antialiasing).
        follow_links: Whether to walk into folders that are symbolic links.
        crop_to_aspect_ratio: Crop the largest centred window of the aspect ratio of
            `image_size` before resizing (no distortion).
        pad_to_aspect_ratio: Pad with zeros, evenly on both sides, to the aspect ratio of
            `image_size` before resizing (no distortion).
        data_format: None or "channels_last" (the only layout supported).
        verbose: Whether to print how many files and classes were found, and how many
            files each subset takes (Keras prints the latter always).

    Returns:
        An `ImageDataset` (a `PyDataset` of batches of float32 images with values in
        [0, 255], with `class_names` and `file_paths`), or with `subset="both"` a list of
        the training and the validation datasets (the validation one not reshuffled).

    Raises:
        FileNotFoundError: `directory` does not exist.
        ValueError: a bad argument (named, with the received value), no class subfolders
            with inferred labels, no image files, or labels not matching the files; when a
            batch is read, a file that does not decode (named).
        ImportError: Pillow is not installed.
    """
    pil_image()
    labels = _check_labels(labels)
    if labels is not None and not isinstance(labels, str) and class_names:
        raise ValueError(
            "`class_names` goes with labels='inferred' only (explicit labels name their "
            f"own classes). Received: class_names={class_names!r}"
        )
    if label_mode not in ("int", "categorical", "binary", None):
        raise ValueError(
            '`label_mode` must be "int", "categorical", "binary" or None. Received: '
            f"label_mode={label_mode!r}"
        )
    if labels is None or label_mode is None:
        labels = label_mode = None
    if class_names is not None and (
        labels is None
        or isinstance(class_names, str)
        or not all(isinstance(c, str) for c in class_names)
    ):
        raise ValueError(
            "`class_names` must be a list of subfolder names, with labels='inferred' and a "
            f"label_mode. Received: class_names={class_names!r}, labels={labels!r}, "
            f"label_mode={label_mode!r}"
        )
    check_color_mode(color_mode)
    image_size = check_size("image_size", image_size)
    if batch_size is None:
        raise ValueError(
            "`batch_size` must be a positive integer: unbatched datasets (batch_size=None) "
            "are not supported. Received: batch_size=None"
        )
    batch_size = check_positive_int("batch_size", batch_size)
    name = interpolation.lower() if isinstance(interpolation, str) else interpolation
    if name not in image_resize.INTERPOLATIONS:
        why = " (Keras resizes that way with TensorFlow only)" if name in _KERAS_ONLY else ""
        raise ValueError(
            f"`interpolation` must be one of {image_resize.INTERPOLATIONS}{why}. Received: "
            f"interpolation={interpolation!r}"
        )
    shuffle = check_bool("shuffle", shuffle)
    crop_to_aspect_ratio = check_bool("crop_to_aspect_ratio", crop_to_aspect_ratio)
    pad_to_aspect_ratio = check_bool("pad_to_aspect_ratio", pad_to_aspect_ratio)
    if crop_to_aspect_ratio and pad_to_aspect_ratio:
        raise ValueError(
            "Only one of `crop_to_aspect_ratio` and `pad_to_aspect_ratio` can be True."
        )
    check_data_format(data_format)
    _check_split(validation_split, subset, shuffle, seed)
    if seed is None:
        from . import rng

        seed = int(rng().integers(1_000_000))
    else:
        seed = check_int("seed", seed, 0, 2**32 - 1)

    path = os.fspath(directory)
    if not os.path.exists(path):
        raise FileNotFoundError(f"`directory` does not exist. Received: directory={path!r}")
    if not os.path.isdir(path):
        raise NotADirectoryError(f"`directory` is not a folder. Received: directory={path!r}")
    paths, found, names = _index(
        path, labels, list(class_names) if class_names is not None else None, follow_links
    )
    if verbose:
        if found is None:
            print(f"Found {len(paths)} files.")
        else:
            print(f"Found {len(paths)} files belonging to {len(names or ())} classes.")
    if not paths:
        raise ValueError(
            f"No images found in directory {path!r}. Allowed formats: {ALLOWLIST_FORMATS}"
        )
    if label_mode == "binary" and len(names or ()) != 2:
        raise ValueError(
            'label_mode="binary" needs exactly 2 classes. Received: class_names='
            f"{names!r} ({len(names or ())} classes)"
        )
    if label_mode == "categorical" and found is not None and found.max() >= len(names or ()):
        raise ValueError(
            f'label_mode="categorical" one-hot encodes {len(names or ())} classes (the '
            f"distinct labels), so the labels must lie in 0..{len(names or ()) - 1}. "
            f"Received: max label {found.max()}"
        )
    decode = ImageDecoder(color_mode, image_size, name, crop_to_aspect_ratio, pad_to_aspect_ratio)
    if shuffle:  # (Keras' seeded shuffle of the listing, before the split)
        order = np.arange(len(paths))
        np.random.RandomState(seed).shuffle(order)
        paths = [paths[i] for i in order]
        found = None if found is None else found[order]

    def make(part: slice, what: str, again: bool) -> ImageDataset:
        if not paths[part]:
            raise ValueError(
                f"No {what} images in directory {path!r} with validation_split="
                f"{validation_split} ({len(paths)} images in all)."
            )
        labels = None if found is None else found[part]
        return ImageDataset(paths[part], labels, label_mode, names, batch_size, decode, again, seed)

    if not validation_split:
        return make(slice(None), "", shuffle)
    n_train = len(paths) - int(validation_split * len(paths))
    parts = {"training": slice(None, n_train), "validation": slice(n_train, None)}
    sets = []
    for what in ("training", "validation") if subset == "both" else (str(subset),):
        if verbose:
            print(f"Using {len(paths[parts[what]])} files for {what}.")
        again = shuffle and (what == "training" or subset != "both")  # (Keras' rule)
        sets.append(make(parts[what], what, again))
    return sets if subset == "both" else sets[0]
