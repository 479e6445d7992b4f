"""Colour transfers: keep the content's colours under the stylized luminance (``original_colors``).

As neural-style's ``-original_colors 1`` (Torch7 ``image.rgb2yuv``/``yuv2rgb``, BT.601 YUV): the
result takes the stylized image's luminance Y and the content image's chrominance U, V, so only the
brush strokes and light/dark structure of the painting are transferred, not its palette.
Images are HxWx3 RGB arrays, uint8 or float in 0..255; results are float32 in 0..255.
"""

from __future__ import annotations

import numpy as np

# Rows: Y, U, V from R, G, B (BT.601 analogue YUV, the matrix of Torch7's image.rgb2yuv).
RGB_TO_YUV = np.array([[0.299, 0.587, 0.114],
                       [-0.14713, -0.28886, 0.436],
                       [0.615, -0.51499, -0.10001]], dtype=np.float64)
YUV_TO_RGB = np.linalg.inv(RGB_TO_YUV)


def rgb_to_yuv(image: np.ndarray) -> np.ndarray:
    """HxWx3 RGB (0..255) -> HxWx3 float64 Y (0..255), U, V (signed)."""
    return np.asarray(image, dtype=np.float64) @ RGB_TO_YUV.T


def yuv_to_rgb(yuv: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_yuv` (float64, not clipped)."""
    return np.asarray(yuv, dtype=np.float64) @ YUV_TO_RGB.T


def original_colors(content: np.ndarray, stylized: np.ndarray) -> np.ndarray:
    """The stylized image's luminance with the content's chrominance, float32 RGB clipped to 0..255."""
    if content.shape != stylized.shape or content.ndim != 3 or content.shape[2] != 3:
        raise ValueError(f"original_colors needs two HxWx3 images of one size, got {content.shape} "
                         f"and {stylized.shape}")
    yuv = rgb_to_yuv(content)
    yuv[..., 0] = rgb_to_yuv(stylized)[..., 0]
    return np.clip(yuv_to_rgb(yuv), 0.0, 255.0).astype(np.float32)
