"""Image files: loading with clear errors (sizes checked from the header first), atomic PNG
writes, resizing.

Images in memory are HxWx3 RGB numpy arrays (HxW for grey ones: masks): uint8, or float32 in 0..255.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import PIL.Image

from flow.atomic import atomic_write_bytes
from videostyle.errors import UserError


# 16384 x 8192: above any frame or painting this tool works with (a 16K panorama), and what a
# decoded image of that size takes (384 MiB as RGB) fits a small machine. A file claiming more is
# refused from its header, before a byte of pixels is decoded (a tiny PNG can claim 65535 x 65535).
# Below Pillow's own decompression-bomb limit, so that limit never speaks first.
MAX_IMAGE_PIXELS = 1 << 27


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from an image file's header, without decoding it (Pillow reads headers
    lazily); None when Pillow does not know the format. Raises UserError for a header claiming
    more than ``MAX_IMAGE_PIXELS``."""
    try:
        with warnings.catch_warnings():  # our own limit speaks, below
            warnings.simplefilter("ignore", PIL.Image.DecompressionBombWarning)
            with PIL.Image.open(path) as image:
                size = image.size
    except PIL.Image.DecompressionBombError:
        size = None  # past Pillow's own limit, which lies above ours
    except (PIL.UnidentifiedImageError, OSError, ValueError):
        return None
    if size is None or size[0] * size[1] > MAX_IMAGE_PIXELS:
        claimed = f" is {size[0]}x{size[1]}," if size else ""
        raise UserError(f"image {path}{claimed} claims more than the {MAX_IMAGE_PIXELS:,} pixels videostyle "
                        "reads; scale it down first")
    return size


def load_image(path: str | Path, *, grey: bool = False, what: str = "image") -> np.ndarray:
    """Read an image file as HxWx3 uint8 RGB, or with ``grey`` as HxW uint8 (a colour image by its
    grey level); a missing or unreadable file, or one whose header claims more than
    ``MAX_IMAGE_PIXELS``, is a UserError naming it as ``what``."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} not found: {path}")
    image_size(path)
    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise UserError(f"cannot read {what} {path}: not an image file or corrupt")
    return image if grey else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_image_or_none(path: str | Path) -> np.ndarray | None:
    """Like load_image, but a missing or corrupt file reads as None (cache semantics)."""
    try:
        return load_image(path)
    except UserError:
        return None


def to_uint8(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return image
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def save_image(path: str | Path, image: np.ndarray) -> None:
    """Write ``image`` (HxWx3 RGB or HxW grey, uint8 or float 0..255) as PNG atomically: temp
    file, then rename."""
    path = Path(path)
    pixels = to_uint8(image)
    ok, encoded = cv2.imencode(".png", pixels if pixels.ndim == 2 else cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))
    if not ok:
        raise UserError(f"cannot encode image for {path}")
    atomic_write_bytes(path, encoded.tobytes())


def long_side_size(shape: tuple[int, ...], long_side: int) -> tuple[int, int]:
    """(width, height) of an image of ``shape`` (H, W, ...) scaled so its longer side is ``long_side``."""
    h, w = shape[:2]
    scale = long_side / max(h, w)
    return max(1, round(w * scale)), max(1, round(h * scale))


def resize_long_side(image: np.ndarray, long_side: int) -> np.ndarray:
    """Scale so the longer side is ``long_side`` pixels, keeping the aspect ratio."""
    return resize(image, long_side_size(image.shape, long_side))


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to ``size`` = (width, height); area filter when shrinking, cubic when growing."""
    w, h = size
    if (w, h) == (image.shape[1], image.shape[0]):
        return image
    shrinking = w * h < image.shape[0] * image.shape[1]
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    out = cv2.resize(image, (w, h), interpolation=interp)
    return out if image.dtype != np.uint8 else np.clip(out, 0, 255).astype(np.uint8)
