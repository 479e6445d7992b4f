"""Trust nothing on disk: when a file in a job folder may be used as it is.

A job folder may be resumed after a crash, shared between machines and edited by hand, so every
cached file is checked before it is trusted, and anything that fails is made again:

* a unit's output (stylized frame, flow, mask): the byte size the journal recorded when it was
  written (see :mod:`videostyle.journal`), it reads back whole, and it has the frames' size;
* an extracted frame: the byte size recorded in ``job.json`` and the size in its PNG header. This
  is cheap enough for every worker start; a frame with no recorded size is decoded whole;
* a style image copy: the content hash its name carries;
* a final frame: a copy holding the verified result's bytes;
* the video: the byte size recorded when it was encoded.
"""

from __future__ import annotations

import filecmp
import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import flow
from videostyle.images import read_image_or_none
from videostyle.journal import Ledger

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from a PNG's header; None when the file is not a PNG."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(24)
    except OSError:
        return None
    if len(head) < 24 or head[:8] != PNG_SIGNATURE or head[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def file_size(path: Path) -> int | None:
    """Byte size of a regular file; None for anything else (missing, folder, device)."""
    try:
        return path.stat().st_size if path.is_file() else None
    except OSError:
        return None


def has_shape(path: Path, height: int, width: int) -> bool:
    """The file reads back whole as an image, flow or mask of ``height`` x ``width``."""
    if path.suffix == ".png":
        image = read_image_or_none(path)
        return image is not None and image.shape[:2] == (height, width)
    try:
        if path.suffix == ".flo":
            return flow.read_flo(path).shape[:2] == (height, width)
        if path.suffix == ".pgm":
            return flow.read_pgm(path).shape == (height, width)
    except (flow.FlowError, OSError, ValueError):
        return False
    return False


@dataclass(frozen=True)
class AsRecorded:
    """The job's :data:`~videostyle.units.OutputCheck`: a unit's output may be trusted when the
    journal recorded it with this byte size and it reads back whole, of the frames' size.
    Anything else is recomputed."""

    ledger: Ledger
    height: int
    width: int

    def read_again(self) -> None:
        """Read the journal afresh on the next call (see :func:`videostyle.units.read_again`)."""
        self.ledger.read_again()

    def __call__(self, path: Path) -> bool:
        size = file_size(path)
        return (size is not None and size == self.ledger.recorded_size(path)
                and has_shape(path, self.height, self.width))


def frame_is_intact(path: Path, width: int, height: int, recorded_bytes: int | None) -> bool:
    """An extracted frame: its recorded byte size and header size, or (never recorded) a whole decode."""
    if recorded_bytes is None:
        return has_shape(path, height, width)
    return file_size(path) == recorded_bytes and png_size(path) == (width, height)


_IDENTITY_BYTES = 1 << 20


def file_identity(path: Path) -> str:
    """What a large file is, whatever path names it, without reading it all: its size and a hash
    of its first and last MiB (an input video, VGG-19 weights)."""
    size = path.stat().st_size
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        h.update(fh.read(_IDENTITY_BYTES))
        fh.seek(max(0, size - _IDENTITY_BYTES))
        h.update(fh.read(_IDENTITY_BYTES))
    return f"file:{size}:{h.hexdigest()[:16]}"


def _sha256(path: Path) -> str:
    # read in blocks: a 4K video need not fit in memory
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def file_digest(path: Path) -> str:
    """Short content hash of a file (style images, their copies in the job folder)."""
    return _sha256(path)[:16]


def file_sha256(path: Path) -> str | None:
    """Full SHA-256 of a regular file; None for anything else or a file that cannot be read."""
    try:
        return _sha256(path) if path.is_file() else None
    except OSError:
        return None


def same_content(a: Path, b: Path) -> bool:
    """``a`` is ``b`` (hard link) or holds the same bytes."""
    try:
        return os.path.samefile(a, b) or filecmp.cmp(a, b, shallow=False)
    except OSError:
        return False
