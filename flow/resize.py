"""Resizing flow fields and reliability masks to another frame size.

A flow made at one size (say 450x350) serves frames worked at another (a 128-pixel-wide job):
the field is resampled to the new grid, and each vector is scaled by the size ratio on its axis,
since a displacement of u pixels at the old width is u * new_width / old_width pixels at the new.
"""

from __future__ import annotations

import cv2
import numpy as np

from flow.io import check_flow


def resize_flow(flw: np.ndarray, height: int, width: int) -> np.ndarray:
    """An HxWx2 flow (u = x, v = y, in pixels) resampled to ``height`` x ``width``, vectors rescaled."""
    flw = check_flow(flw)
    old_height, old_width = flw.shape[:2]
    if (old_height, old_width) == (height, width):
        return flw
    # Area averaging when shrinking (no aliasing of fine motion), linear when growing.
    shrinking = height * width < old_height * old_width
    resized = cv2.resize(flw, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    resized[..., 0] *= width / old_width
    resized[..., 1] *= height / old_height
    return resized.astype(np.float32, copy=False)


def resize_mask(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """An HxW reliability mask at ``height`` x ``width``, nearest neighbour (values keep their meaning)."""
    if mask.shape[:2] == (height, width):
        return mask
    return cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)
