"""TensorBoard's event files, written without TensorFlow: records of `Event` protocol
buffers (scalars as `simple_value`, weights as histograms) in TFRecord framing (length,
masked CRC-32C of the length, data, masked CRC-32C of the data), as TensorBoard reads them.
"""

from __future__ import annotations

import os
import socket
import struct
import time

import numpy as np

__all__ = ["SummaryWriter"]


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1  # CRC-32C (Castagnoli), reflected
        table.append(c)
    return table


_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# --- protocol buffer encoding (the few fields an Event needs)
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _bytes(number: int, data: bytes) -> bytes:
    return _field(number, 2) + _varint(len(data)) + data


def _double(number: int, value: float) -> bytes:
    return _field(number, 1) + struct.pack("<d", value)


def _packed_doubles(number: int, values) -> bytes:
    return _bytes(number, np.asarray(values, "<f8").tobytes())


def _event(step: int, summary: bytes = b"", version: str = "") -> bytes:
    """An Event: wall_time (1), step (2), file_version (3) or summary (5)."""
    data = _double(1, time.time()) + _field(2, 0) + _varint(max(0, int(step)))
    if version:
        data += _bytes(3, version.encode())
    if summary:
        data += _bytes(5, summary)
    return data


def _value(tag: str, body: bytes) -> bytes:
    """A Summary holding one Value: tag (1) and its content."""
    return _bytes(1, _bytes(1, tag.encode()) + body)


def _histogram(values) -> bytes:
    """A HistogramProto (min, max, num, sum, sum_squares, bucket_limit, bucket) of 30
    buckets over the values' range."""
    v = np.asarray(values, np.float64).ravel()
    if v.size == 0 or not np.isfinite(v).all():
        v = v[np.isfinite(v)] if v.size else v
    lo, hi = (float(v.min()), float(v.max())) if v.size else (0.0, 0.0)
    counts, edges = np.histogram(v, bins=30, range=(lo, hi if hi > lo else lo + 1e-12))
    return (
        _double(1, lo)
        + _double(2, hi)
        + _double(3, float(v.size))
        + _double(4, float(v.sum()))
        + _double(5, float((v * v).sum()))
        + _packed_doubles(6, edges[1:])
        + _packed_doubles(7, counts)
    )


class SummaryWriter:
    """Appends events to a new event file in `log_dir` (made if needed)."""

    def __init__(self, log_dir: str):
        os.makedirs(log_dir, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}"
        name += f".{id(self) % 100000}.v2"
        self.path = os.path.join(log_dir, name)
        self._file = open(self.path, "ab")
        self._record(_event(0, version="brain.Event:2"))

    def _record(self, data: bytes) -> None:
        length = struct.pack("<Q", len(data))
        self._file.write(length + struct.pack("<I", _masked(crc32c(length))))
        self._file.write(data + struct.pack("<I", _masked(crc32c(data))))

    def scalar(self, tag: str, value: float, step: int) -> None:
        simple = _field(2, 5) + struct.pack("<f", float(value))  # Value.simple_value (2)
        self._record(_event(step, _value(tag, simple)))

    def histogram(self, tag: str, values, step: int) -> None:
        self._record(_event(step, _value(tag, _bytes(5, _histogram(values)))))  # Value.histo

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
