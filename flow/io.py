"""Files: Middlebury ``.flo`` flow fields and binary PGM masks, written atomically.

``.flo`` (Middlebury): little-endian float32 tag 202021.25 (the bytes ``PIEH``), int32 width,
int32 height, then ``height`` rows of ``width`` interleaved (u, v) float32 pairs. In memory a
flow is an HxWx2 float32 array, channel 0 = u (x), channel 1 = v (y).

PGM: binary ``P5`` greymaps with maxval <= 255, read as HxW uint8. :func:`write_pgm` writes the
header exactly as the authors' ``consistencyChecker`` does (``P5\\n<w> <h>\\n255\\n``) and converts
floats like their C++ ``(char)value``: clipped to 0..255, then truncated toward zero.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, TypeVar

import numpy as np

from flow.atomic import atomic_write_bytes
from flow.errors import FlowError

FLO_TAG = b"PIEH"  # the float32 202021.25, little-endian
_FLO_HEADER = 12
# Far above any video frame; rejects garbage headers before allocating memory for them.
_MAX_SIDE = 1 << 16


def read_flo(path: str | Path) -> np.ndarray:
    """Read a Middlebury ``.flo`` file as HxWx2 float32 (u, v); FlowError if missing/malformed."""
    path = Path(path)
    head, size = _read_head(path, "flow file")
    if len(head) < _FLO_HEADER or head[:4] != FLO_TAG:
        raise FlowError(f"{path} is not a Middlebury .flo file (no PIEH tag)")
    width, height = (int(v) for v in np.frombuffer(head, dtype="<i4", count=2, offset=4))
    if not (0 < width <= _MAX_SIDE and 0 < height <= _MAX_SIDE):
        raise FlowError(f"{path}: implausible flow size {width}x{height}")
    expected = _FLO_HEADER + 8 * width * height
    if size != expected:  # checked before the file is read: a header is no reason to allocate
        what = "truncated" if size < expected else "has trailing data"
        raise FlowError(f"{path} is {what}: {size} bytes, expected {expected} for "
                        f"a {width}x{height} flow")
    data = _read_bytes(path, "flow file")
    if len(data) != expected:
        raise FlowError(f"{path} changed while it was read")
    values = np.frombuffer(data, dtype="<f4", offset=_FLO_HEADER)
    return values.reshape(height, width, 2).astype(np.float32)


def write_flo(path: str | Path, flw: np.ndarray) -> None:
    """Write an HxWx2 flow as a Middlebury ``.flo`` file, atomically."""
    flw = check_flow(flw, "flow to write")
    height, width = flw.shape[:2]
    header = FLO_TAG + np.array([width, height], dtype="<i4").tobytes()
    atomic_write_bytes(path, header + np.ascontiguousarray(flw, dtype="<f4").tobytes())


def read_pgm(path: str | Path) -> np.ndarray:
    """Read a binary (P5) or plain (P2) PGM with maxval <= 255 as HxW uint8.

    Values are returned as stored, not rescaled by maxval (the authors' reader ignores it too).
    """
    path = Path(path)
    head, size = _read_head(path, "PGM file")
    magic = head[:2]
    if magic not in (b"P5", b"P2"):
        raise FlowError(f"{path} is not a PGM file (no P5/P2 tag)")
    (width, height, maxval), pos = _pgm_header_fields(head, path)
    if not (0 < width <= _MAX_SIDE and 0 < height <= _MAX_SIDE and 0 < maxval <= 255):
        raise FlowError(f"{path}: unsupported PGM size {width}x{height} or maxval {maxval}")
    count = width * height
    # at most 3 digits and a separator a pixel (plain), plus room for comments: anything longer
    # is not this picture, and is refused before it is read
    largest = pos + 1 + (count if magic == b"P5" else 4 * count + 4096)
    if magic == b"P5" and size < pos + 1 + count:
        raise FlowError(f"{path} is truncated: {max(0, size - pos - 1)} of {count} pixels")
    if size > largest:
        raise FlowError(f"{path} is {size} bytes, not a {width}x{height} PGM")
    data = _read_bytes(path, "PGM file")
    if magic == b"P2":
        try:
            values = np.array([int(token) for token in data[pos:].split()[:count]], dtype=np.int64)
        except ValueError:
            raise FlowError(f"{path}: a plain PGM pixel is not a number") from None
        if values.size != count:
            raise FlowError(f"{path} is truncated: {values.size} of {count} pixels")
        return np.clip(values, 0, 255).astype(np.uint8).reshape(height, width)
    pixels = data[pos + 1: pos + 1 + count]  # one whitespace byte separates header and pixels
    if len(pixels) != count:
        raise FlowError(f"{path} is truncated: {len(pixels)} of {count} pixels")
    return np.frombuffer(pixels, dtype=np.uint8).reshape(height, width).copy()


_PGM_FIELD = re.compile(rb"(?:\s|#[^\n]*(?:\n|$))*(\d+)")


def _pgm_header_fields(data: bytes, path: Path) -> tuple[list[int], int]:
    """Width, height and maxval after the magic, and the offset just past maxval's digits."""
    fields: list[int] = []
    pos = 2
    for _ in range(3):
        match = _PGM_FIELD.match(data, pos)
        if match is None:
            raise FlowError(f"{path} is not a PGM file (bad header)")
        fields.append(int(match.group(1)))
        pos = match.end()
    return fields, pos


def write_pgm(path: str | Path, arr: np.ndarray) -> None:
    """Write an HxW greymap as binary PGM, atomically.

    Floats are clipped to 0..255 and truncated toward zero (not rounded), like the authors'
    checker; NaN is written as 0.
    """
    arr = np.asarray(arr)
    if arr.ndim != 2 or arr.size == 0:
        raise FlowError(f"a PGM mask must be a non-empty HxW array, got shape {arr.shape}")
    atomic_write_bytes(path, pgm_bytes(arr))


def pgm_bytes(arr: np.ndarray) -> bytes:
    """The bytes of :func:`write_pgm` (header ``P5\\n<w> <h>\\n255\\n`` then rows of uint8)."""
    height, width = arr.shape
    header = f"P5\n{width} {height}\n255\n".encode("ascii")
    return header + to_mask_uint8(arr).tobytes()


def to_mask_uint8(arr: np.ndarray) -> np.ndarray:
    """Convert a 0..255 mask to uint8 the way the authors' C++ does: clip, then truncate."""
    arr = np.asarray(arr)
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    values = np.nan_to_num(arr.astype(np.float64), nan=0.0)
    return np.trunc(np.clip(values, 0.0, 255.0)).astype(np.uint8)


def check_flow(flw: np.ndarray, what: str = "flow") -> np.ndarray:
    """Return ``flw`` as HxWx2 float32; FlowError if it has another shape."""
    flw = np.asarray(flw)
    if flw.ndim != 3 or flw.shape[2] != 2 or flw.shape[0] == 0 or flw.shape[1] == 0:
        raise FlowError(f"{what} must be an HxWx2 array, got shape {flw.shape}")
    return flw.astype(np.float32, copy=False)


def flow_file_name(t: int, s: int) -> str:
    """The one name of the flow from frame t to frame s (frames from 1), as the authors'
    ``makeOptFlow.sh`` names it: ``forward_t_s.flo`` when t < s, else ``backward_t_s.flo``."""
    if t == s:
        raise FlowError(f"no flow from frame {t} to itself")
    return f"{'forward' if t < s else 'backward'}_{t}_{s}.flo"


def flow_file_frames(name: str) -> tuple[int, int] | None:
    """(t, s) of a flow file named by :func:`flow_file_name`; None for any other name."""
    match = re.fullmatch(r"(forward|backward)_(\d+)_(\d+)\.flo", name)
    if match is None:
        return None
    t, s = int(match[2]), int(match[3])
    return (t, s) if t != s and (match[1] == "forward") == (t < s) else None


def reliable_file_name(t: int, s: int) -> str:
    """The name of the reliability mask of the flow t -> s: ``reliable_t_s.pgm``."""
    if t == s:
        raise FlowError(f"no flow from frame {t} to itself")
    return f"reliable_{t}_{s}.pgm"


_HEAD = 4096  # enough for any header we read (a PGM's may hold comments)


def _read_head(path: Path, what: str) -> tuple[bytes, int]:
    """The first bytes of a file and its size, without reading the rest."""
    return _reading(path, what, lambda fh: (fh.read(_HEAD), os.fstat(fh.fileno()).st_size))


def _read_bytes(path: Path, what: str) -> bytes:
    return _reading(path, what, lambda fh: fh.read())


_T = TypeVar("_T")


def _reading(path: Path, what: str, read: Callable[[BinaryIO], _T]) -> _T:
    """``read`` of the open file; a missing, folder or unreadable path is one FlowError."""
    try:
        with open(path, "rb") as fh:
            return read(fh)
    except FileNotFoundError:
        raise FlowError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise FlowError(f"{what} {path} is a directory") from None
    except PermissionError:
        raise FlowError(f"cannot read {what} {path}: permission denied") from None
