"""Atomic writes: readers see the old file or the whole new one, never a part.

The one place that does temp file + ``os.replace``: the flow files, the job folder's PNGs and
JSON, and ffmpeg's outputs all go through here, so a killed writer leaves nothing half written.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replacing(target: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """A fresh temp file beside ``target`` to write (by any means, e.g. ffmpeg); it replaces
    ``target`` when the block ends without an error, and is removed otherwise.

    ``suffix`` lets tools that pick the format by the file name (ffmpeg) see the right one. The
    name is made with O_EXCL, so a planted file or link under a fixed temp name is never written
    through.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        # mkstemp makes the file private (0600); give it the mode any new file gets here, so
        # the other accounts of a shared job folder (a render farm) can read it.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it; set back at once
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (flushed to disk before it replaces the old file)."""
    with replacing(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
