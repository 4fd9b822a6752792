"""The deepcore file: one safetensors file, written atomically, read and checked whole.

The deepcore file format, version 1
===================================

A deepcore file is a safetensors file (the layout of https://github.com/huggingface/safetensors),
written and read with NumPy; nothing in it is ever unpickled or executed::

    bytes [0, 8)          N: length of the header, unsigned 64-bit little-endian
    bytes [8, 8 + N)      header: a JSON object (UTF-8), padded with spaces to a multiple of 8
    bytes [8 + N, end)    data: the raw bytes of every tensor, back to back

The header maps each tensor name to ``{"dtype": "F32", "shape": [...], "data_offsets":
[begin, end]}``: float32 little-endian values in C order, at ``data[begin:end]``. The tensors
are contiguous and cover the data exactly. Tensors:

    ``layers.{i}.kernel``, ``layers.{i}.bias``  weights of the i-th layer of the model (from 0;
                                                 `deepcore.Input` is not a layer), named by
                                                 the layer's `weight_names()`
    ``optimizer.slots``                          the optimizer's state (e.g. Adam's m and v), all
                                                 slots concatenated as the engine holds them
                                                 (full-model files of models compiled with a loss)

The header's ``"__metadata__"`` maps strings to strings; structured values are JSON texts:

    ``format``          ``"deepcore"``
    ``format_version``  ``"1"``; a reader refuses versions newer than its own
    ``contents``        ``"model"`` (`model.save`) or ``"weights"`` (`model.save_weights`)
    ``model``           the architecture: ``{"class_name": "Sequential", "config": {"name",
                        "trainable", "input_shape", "layers": [{"class_name", "config"}, ...]}}``
                        with each layer's `get_config()`: its constructor's arguments, with
                        initializers and regularizers as ``{"class_name", "config"}``
    ``compile``         (model files of compiled models) ``{"optimizer": {"class_name",
                        "config"}, "loss": name | {"class_name", "config"} | null,
                        "metrics": [name | {"class_name", "config"}, ...]}``
    ``training``        (model files) what resuming needs to continue bit-exactly:
                        ``{"iterations", "learning_rate", "seed", "draws"}`` (optimizer steps
                        taken, current learning rate, and the engine's random stream: seed and
                        number of draws made so far, used by shuffling and dropout)
    ``sha256``          integrity check: lowercase hex SHA-256 of the whole file (length,
                        header, padding and data) as written, computed while these 64
                        characters are ``"0" * 64``

Writes are atomic: the file is written to a temporary file in the same directory, flushed to
disk, then renamed onto the target, so an existing file is never left half-written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import reprlib
import stat
import uuid
from typing import Any, cast

import numpy as np

__all__ = ["write_file", "read_file"]

FORMAT = "deepcore"
FORMAT_VERSION = 1
# Limits of what a reader accepts (deepcore writes headers of a few KB).
MAX_HEADER_BYTES = 16 * 2**20  # the JSON header, in bytes
MAX_DIMS = 32  # dimensions of a tensor
MAX_DIM = 2**31  # each dimension is < MAX_DIM
MAX_JSON_DEPTH = 32  # nesting of lists and objects in each JSON text
_MAX_INT_DIGITS = 20  # 2**64 - 1 has 20 digits
_CHECKSUM = b'"sha256":"'
_ZERO = b"0" * 64

_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 60
_repr.maxlong = 40
_repr.maxlist = _repr.maxdict = 6
_repr.maxlevel = 3


def _short(value) -> str:
    """repr(value), shortened: values from a file can be megabytes long."""
    return _repr.repr(value)


def write_file(path, tensors: dict, metadata: dict, overwrite: bool = True) -> None:
    """Atomically writes float32 `tensors` (name -> array) and string `metadata` to `path`."""
    header, chunks, offset = {"__metadata__": {**metadata, "sha256": _ZERO.decode()}}, [], 0
    for name, array in tensors.items():
        chunk = np.ascontiguousarray(array, "<f4").tobytes()
        header[name] = {
            "dtype": "F32",
            "shape": list(np.shape(array)),
            "data_offsets": [offset, offset + len(chunk)],
        }
        chunks.append(chunk)
        offset += len(chunk)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    if len(text) > MAX_HEADER_BYTES:  # no file that readers refuse
        raise ValueError(
            f"Cannot save to {_fspath(path)!r}: the header would take {len(text)} bytes, "
            f"more than the {MAX_HEADER_BYTES} a reader accepts."
        )
    blob = bytearray(len(text).to_bytes(8, "little") + text + b"".join(chunks))
    at = blob.index(_CHECKSUM + _ZERO) + len(_CHECKSUM)
    blob[at : at + 64] = hashlib.sha256(blob).hexdigest().encode()
    _atomic_write(_fspath(path), blob, overwrite)


def read_file(path) -> tuple[dict, dict]:
    """Reads and validates a deepcore file: returns (tensors, metadata); ValueError if invalid.

    The tensors are float32 arrays (little-endian) over one buffer holding the file."""
    path = _fspath(path)
    raw, n = _read_bytes(path)
    try:
        return _parse(raw, n)
    except _ERRORS as e:
        raise ValueError(f"Cannot load {path!r}: {_problem(e)}.") from None


@contextlib.contextmanager
def open_regular(path: str):
    """The file at `path` opened for reading in binary, or None for anything but a regular
    file. O_NONBLOCK: opening a pipe without a writer would wait for one (regular files
    ignore the flag)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    with os.fdopen(os.open(path, flags), "rb") as f:
        yield f if stat.S_ISREG(os.fstat(f.fileno()).st_mode) else None


def _read_bytes(path: str) -> tuple[bytearray, int]:
    """The file's bytes, read once from one handle, and its header length N (checked against
    the file's size and MAX_HEADER_BYTES before the rest is read)."""

    def fail(problem):
        return ValueError(f"Cannot load {path!r}: {problem}.")

    with open_regular(path) as f:
        if f is None:
            raise fail("not a regular file (deepcore reads files, not devices or pipes)")
        size = os.fstat(f.fileno()).st_size
        head = f.read(8)
        if len(head) < 8:
            raise fail(f"the file is truncated or not a deepcore file (only {len(head)} bytes)")
        n = int.from_bytes(head, "little")
        if n > size - 8:
            raise fail(
                f"the file is truncated or not a safetensors file (header length {n}, "
                f"file size {size})"
            )
        if n > MAX_HEADER_BYTES:
            raise fail(
                f"the header length {n} is over the {MAX_HEADER_BYTES} bytes a deepcore "
                "reader accepts (not a deepcore file)"
            )
        raw = bytearray(size)
        raw[:8] = head
        got = 8
        with memoryview(raw) as view:
            while got < size:
                k = f.readinto(view[got:])
                if not k:
                    break
                got += k
        if got < size or f.read(1):
            raise fail(f"the file changed while it was read (size {size} when opened)")
    return raw, n


def _parse(raw: bytearray, n: int) -> tuple[dict, dict]:
    header = _json(raw[8 : 8 + n].decode("utf-8"), "the header")
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(
            'not a deepcore file (no "format": "deepcore" in its safetensors metadata)'
        )
    version = meta.get("format_version")
    ok = isinstance(version, str) and len(version) <= 9
    if not (ok and version.isascii() and version.isdigit()):  # type: ignore[union-attr]  # (ok: a str)
        raise ValueError(f"invalid format_version {_short(version)}")
    version = cast(str, version)  # (a str of digits: checked above)
    if int(version) > FORMAT_VERSION:
        raise ValueError(
            f"written by a newer deepcore (format_version {int(version)}; "
            f"this version reads {FORMAT_VERSION})"
        )
    at = raw.find(_CHECKSUM, 8, 8 + n)
    if at < 0 or not isinstance(meta.get("sha256"), str):
        raise ValueError("it has no sha256 checksum")
    at += len(_CHECKSUM)
    with memoryview(raw) as view:  # no copy of the file
        digest: Any = hashlib.sha256(view[:at])  # (then its hex digest, a str)
        digest.update(_ZERO)
        digest.update(view[at + 64 :])
    digest = digest.hexdigest()
    if raw[at : at + 64] != digest.encode() or meta["sha256"] != digest:
        raise ValueError("checksum mismatch: the file is corrupted or was modified after saving")
    for key, value in meta.items():
        if not isinstance(value, str):
            raise ValueError(f"metadata entry {_short(key)} is not a string: {_short(value)}")

    size = len(raw) - 8 - n  # of the data
    spans = []
    for name, entry in header.items():
        if name != "__metadata__":
            spans.append((*_tensor_entry(name, entry, size), name))
    tensors, position = {}, 0
    for begin, end, shape, name in sorted(spans, key=lambda s: s[:2]):
        if begin != position:
            raise ValueError(
                f"tensor {_short(name)} starts at byte {begin} of the data, not where the "
                f"previous one ends ({position})"
            )
        count = (end - begin) // 4
        tensors[name] = np.frombuffer(raw, "<f4", count, 8 + n + begin).reshape(shape)
        position = end
    if position != size:
        raise ValueError(f"the data section has {size} bytes, the tensors {position}")
    return tensors, meta


def _tensor_entry(name, entry, size: int) -> tuple[int, int, tuple]:
    """(begin, end, shape) of a tensor's header entry, checked against a data section of
    `size` bytes, in time bounded by MAX_DIMS (no product of huge integers)."""
    what = f"header entry for tensor {_short(name)}"
    if not isinstance(entry, dict) or sorted(entry) != ["data_offsets", "dtype", "shape"]:
        raise ValueError(
            f"invalid {what}: {_short(entry)} (expected the keys dtype, shape, data_offsets)"
        )
    if entry["dtype"] != "F32":
        raise ValueError(f"{what}: dtype {_short(entry['dtype'])}, deepcore files hold F32")
    shape, offsets = entry["shape"], entry["data_offsets"]
    if not isinstance(shape, list) or len(shape) > MAX_DIMS:
        raise ValueError(
            f"{what}: the shape must be a list of at most {MAX_DIMS} dimensions, received "
            + (f"{len(shape)} dimensions" if isinstance(shape, list) else _short(shape))
        )
    if not all(type(d) is int and 0 <= d < MAX_DIM for d in shape):
        raise ValueError(f"{what}: shape {_short(shape)} must hold ints in [0, 2**31)")
    if not (
        isinstance(offsets, list)
        and len(offsets) == 2
        and all(type(o) is int for o in offsets)
        and 0 <= offsets[0] <= offsets[1] <= size
    ):
        raise ValueError(
            f"{what}: data_offsets {_short(offsets)} must be [begin, end] with "
            f"0 <= begin <= end <= {size} (the data's size)"
        )
    begin, end = offsets
    count, limit = (0 if 0 in shape else 1), size // 4
    for d in shape:
        count *= d
        if count > limit:  # more values than the data holds: stop before it grows further
            break
    if end - begin != 4 * count:
        raise ValueError(
            f"{what}: shape {shape} does not match data_offsets {offsets} "
            f"(float32: 4 bytes a value)"
        )
    return begin, end, tuple(shape)


def _json(text: str, what: str):
    """Parses one JSON text of a file, refusing what no deepcore file holds: NaN, Infinity,
    numbers out of the float range, integers of more than 20 digits, a key twice in an
    object, nesting deeper than MAX_JSON_DEPTH. ValueError naming `what`."""

    def number(s):
        value = float(s)
        if not math.isfinite(value):
            raise ValueError(f"{what} holds the number {_short(s)}, out of the float range")
        return value

    def integer(s):
        if len(s.lstrip("-")) > _MAX_INT_DIGITS:
            raise ValueError(
                f"{what} holds an integer of {len(s.lstrip('-'))} digits (at most "
                f"{_MAX_INT_DIGITS} are read)"
            )
        return int(s)

    def constant(s):
        raise ValueError(f"{what} holds {s}: numbers must be finite")

    def unique(pairs):
        obj = dict(pairs)
        if len(obj) != len(pairs):
            seen = set()
            twice = next(k for k, _ in pairs if k in seen or seen.add(k))
            raise ValueError(f"{what} holds the key {_short(twice)} twice in one object")
        return obj

    try:
        value = json.loads(
            text,
            parse_float=number,
            parse_int=integer,
            parse_constant=constant,
            object_pairs_hook=unique,
        )
    except RecursionError:  # deeper than the parser goes
        raise ValueError(f"{what} is nested more than {MAX_JSON_DEPTH} levels deep") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{what} is not valid JSON ({e})") from None
    level = [value] if isinstance(value, (dict, list)) else []
    depth = 1
    while level:  # breadth first, without recursion
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"{what} is nested more than {MAX_JSON_DEPTH} levels deep")
        level = [
            c
            for v in level
            for c in (v.values() if isinstance(v, dict) else v)
            if isinstance(c, (dict, list))
        ]
        depth += 1
    return value


# What checking a file may raise, all turned into ValueError("Cannot load ...").
_ERRORS = (
    KeyError,
    TypeError,
    ValueError,
    AttributeError,
    IndexError,
    OverflowError,
    RecursionError,
)


def _problem(e: BaseException) -> str:
    """The message of an exception raised while reading a file, for "Cannot load ...: "."""
    if isinstance(e, KeyError):
        return f"missing entry {_short(e.args[0]) if e.args else ''}"
    if isinstance(e, RecursionError):
        return "a value in it is nested too deeply"
    message = str(e)
    if "incompatible function arguments" in message:  # pybind11's, with the signatures
        message = f"a value is out of the range of the engine's {message.split('(')[0]}"
    if isinstance(e, OverflowError):
        return f"a number in it is out of range ({message})"
    return message.rstrip(".")


@contextlib.contextmanager
def _refusing(prefix: str):
    """Turns any error of checking a file into ValueError(f"{prefix}: {problem}.")."""
    try:
        yield
    except _ERRORS as e:
        raise ValueError(f"{prefix}: {_problem(e)}.") from None


def _fspath(path) -> str:
    path = os.fspath(path)
    return os.fsdecode(path) if isinstance(path, bytes) else path


def _atomic_write(path: str, blob: bytes | bytearray, overwrite: bool) -> None:
    """Writes `blob` to a temporary file next to `path`, fsyncs it, then renames it onto `path`."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"Cannot save to {path!r}: directory {directory!r} does not exist.")
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"Cannot save to {path!r}: the file exists and overwrite=False.")
    temp = os.path.join(directory, f".{os.path.basename(path)}.{uuid.uuid4().hex[:12]}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        try:
            os.remove(temp)
        except OSError:
            pass
        raise
