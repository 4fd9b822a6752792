"""MNIST handwritten digits (60,000 training and 10,000 test images, 28x28), read from the
four standard IDX files in a local directory.

deepcore does not download anything: put the files (each raw or gzipped) in
`~/.deepcore/datasets/mnist`, or pass the directory holding them as `path`.

The IDX format (http://yann.lecun.com/exdb/mnist/): a big-endian header of two zero
bytes, a type code (0x08 = unsigned byte), the number of dimensions, then each dimension
as a 4-byte big-endian integer, then the values in row-major order.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

__all__ = ["load_data", "read_idx", "FILES", "DEFAULT_DIR"]

DEFAULT_DIR = Path("~/.deepcore/datasets/mnist")

FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}

# IDX type code -> big-endian NumPy dtype
_IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _read_bytes(path: Path) -> bytes:
    if path.suffix == ".gz":
        try:
            with gzip.open(path, "rb") as f:
                return f.read()
        except EOFError:
            raise ValueError(
                f"{path}: the gzip stream is truncated (incomplete download?)"
            ) from None
        except (OSError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
            raise ValueError(f"{path}: not a valid gzip file ({e})") from None
    return path.read_bytes()


def read_idx(path, expected_magic: int | None = None) -> np.ndarray:
    """Reads one IDX file (raw, or gzipped when the name ends in .gz) into a NumPy array.

    Args:
        path: The file.
        expected_magic: When given, the file's magic number must equal it (e.g.
            0x00000803 for 3-D unsigned-byte data such as MNIST images).

    Raises:
        ValueError: wrong magic number, or a file shorter or longer than its header says.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise ValueError(
            f"{path}: truncated IDX file: {len(data)} bytes, shorter than the 4-byte magic number"
        )
    magic = int.from_bytes(data[:4], "big")
    ndim, code = data[3], data[2]
    if data[0] != 0 or data[1] != 0 or code not in _IDX_TYPES or ndim == 0:
        raise ValueError(
            f"{path}: not an IDX file: wrong magic number 0x{magic:08X} (expected 0x0000TTNN "
            "with type code TT in 08, 09, 0B, 0C, 0D, 0E and NN >= 1 dimensions, e.g. "
            "0x00000803 for images, 0x00000801 for labels)"
        )
    if expected_magic is not None and magic != expected_magic:
        raise ValueError(
            f"{path}: wrong magic number 0x{magic:08X}, expected 0x{expected_magic:08X} "
            f"({_describe(expected_magic)}); found {_describe(magic)}"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(
            f"{path}: truncated IDX file: the header of {ndim} dimensions needs {header} "
            f"bytes, the file has {len(data)}"
        )
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_TYPES[code]
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        kind = "truncated" if len(data) < expected else "has trailing bytes"
        raise ValueError(
            f"{path}: IDX file {kind}: dimensions {shape} of {dtype.itemsize}-byte values "
            f"need {expected} bytes, the file has {len(data)}"
        )
    values = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return values.astype(dtype.newbyteorder("="))  # native byte order, writable copy


def _describe(magic: int) -> str:
    dtype = _IDX_TYPES.get((magic >> 8) & 0xFF)
    return f"{dtype.name if dtype is not None else 'unknown'} values in {magic & 0xFF} dimensions"


def _find(directory: Path, name: str) -> Path | None:
    for candidate in (directory / name, directory / (name + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def load_data(
    path: str | os.PathLike[str] | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Loads MNIST from the four IDX files in the directory `path`.

    Args:
        path: Directory holding train-images-idx3-ubyte, train-labels-idx1-ubyte,
            t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (each may end in .gz).
            Default: `~/.deepcore/datasets/mnist`.

    Returns:
        `(x_train, y_train), (x_test, y_test)` as in Keras: uint8 images of shape
        (n, 28, 28) with values 0..255 and uint8 labels 0..9.

    Raises:
        FileNotFoundError: a file is missing (nothing is downloaded).
        ValueError: a file is not a valid IDX file of MNIST images or labels.
    """
    directory = Path(os.path.expanduser(os.fspath(DEFAULT_DIR if path is None else path)))
    found = {key: _find(directory, name) for key, name in FILES.items()}
    missing = [FILES[k] for k, p in found.items() if p is None]
    if missing:
        listed = "\n".join(f"  {name} (or {name}.gz)" for name in FILES.values())
        raise FileNotFoundError(
            f"MNIST: missing {', '.join(missing)} in {directory}. Expected the four IDX files:"
            f"\n{listed}\ndeepcore does not download data sets (there is no internet "
            "download on this machine): copy the files into that directory, or pass the "
            "directory holding them as load_data(path=...)."
        )
    arrays = {
        key: read_idx(p, 0x00000803 if key.startswith("x") else 0x00000801)
        for key, p in found.items()
    }
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        xp, yp = found[f"x_{split}"], found[f"y_{split}"]
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28):
            raise ValueError(
                f"{xp}: expected unsigned-byte images of shape (n, 28, 28) (magic 0x00000803), "
                f"found {x.dtype} values of shape {x.shape}"
            )
        if y.dtype != np.uint8 or y.ndim != 1:
            raise ValueError(
                f"{yp}: expected unsigned-byte labels of shape (n,) (magic 0x00000801), "
                f"found {y.dtype} values of shape {y.shape}"
            )
        if len(x) != len(y):
            raise ValueError(
                f"MNIST {split} set: {len(x)} images in {xp.name} but {len(y)} labels in {yp.name}"  # type: ignore[union-attr]
            )
        if y.size and y.max() > 9:
            raise ValueError(f"{yp}: labels must be 0..9, found {int(y.max())}")
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])
