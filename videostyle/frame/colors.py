"""Colour transfers (the ``color_transfer`` setting): keep the content's colours, not the painting's.

``luminance`` (:func:`original_colors`), after the stylization: as neural-style's
``-original_colors 1`` (Torch7 ``image.rgb2yuv``/``yuv2rgb``, BT.601 YUV), the result takes the
stylized image's luminance Y and the content image's chrominance U, V, so only the brush strokes
and light/dark structure of the painting are transferred, not its palette.

``histogram`` (:func:`match_colors`), before the stylization: Gatys et al. 2017, "Controlling
Perceptual Factors in Neural Style Transfer", colour histogram matching. The style image's pixels
are mapped linearly, x' = A (x - mu_s) + mu_c with A = Sigma_c^1/2 Sigma_s^-1/2, so that they take
the mean and covariance of the content's (for a video: of the whole clip, :func:`color_stats`
over a fixed sample of its frames, so every frame is held to the same style targets).

Images are HxWx3 RGB arrays, uint8 or float in 0..255; results are float32 in 0..255. Pure numpy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from videostyle.config import COLOR_TRANSFERS
from videostyle.errors import UserError

# Covariance eigenvalues are floored at this (grey levels squared, i.e. a standard deviation of one
# grey level) before Sigma_s^-1/2 is taken: a flat or nearly flat style image would otherwise be
# blown up to noise along the directions it does not vary in.
MIN_VARIANCE = 1.0
# A video's colours are measured on at most this many frames, spread evenly over the clip.
COLOR_SAMPLE_FRAMES = 16

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


@dataclass(frozen=True)
class ColorStats:
    """Mean (3,) and covariance (3x3) of RGB pixel values in 0..255, float64."""

    mean: np.ndarray
    cov: np.ndarray


def color_stats(images: Iterable[np.ndarray]) -> ColorStats:
    """The mean and covariance of the pixels of all ``images`` together (each pixel counts once)."""
    total, outer, count = np.zeros(3), np.zeros((3, 3)), 0
    for image in images:
        pixels = _pixels(image, "color_stats")
        total += pixels.sum(axis=0)
        outer += pixels.T @ pixels
        count += len(pixels)
    if count == 0:
        raise ValueError("color_stats needs at least one pixel")
    mean = total / count
    # E[x x^T] - mu mu^T: one pass over the frames, exact enough in float64 for 0..255 values.
    return ColorStats(mean, outer / count - np.outer(mean, mean))


def sample_frames(n_frames: int, most: int = COLOR_SAMPLE_FRAMES) -> list[int]:
    """Up to ``most`` frame numbers (1-based) spread evenly over ``1..n_frames``, first and last
    included: the same list on every machine, so every worker measures the same colours."""
    if n_frames < 1:
        raise ValueError(f"no frames to sample (n_frames={n_frames})")
    return sorted({int(round(x)) for x in np.linspace(1, n_frames, min(most, n_frames))})


def match_colors(image: np.ndarray, target: ColorStats) -> np.ndarray:
    """``image`` with the mean and covariance of ``target`` (Gatys et al. 2017 colour histogram
    matching, by the linear map in the module doc), float32 RGB clipped to 0..255."""
    pixels = _pixels(image, "match_colors")
    source = color_stats([image])
    a = _sqrtm(target.cov) @ _sqrtm(source.cov, inverse=True)
    matched = (pixels - source.mean) @ a.T + target.mean
    return np.clip(matched, 0.0, 255.0).reshape(np.shape(image)).astype(np.float32)


def styles_in_colors(styles: Sequence[np.ndarray], transfer: str, reference: ColorStats | None) -> list[np.ndarray]:
    """The style images a stylization with ``transfer`` (a ``color_transfer`` value) is held to:
    for ``histogram`` each recoloured to ``reference`` (see :func:`match_colors`), else as given."""
    if transfer not in COLOR_TRANSFERS:
        raise UserError(f"unknown color_transfer {transfer!r}; choose one of: {', '.join(COLOR_TRANSFERS)}")
    if transfer != "histogram":
        return list(styles)
    if reference is None:
        raise UserError("color_transfer histogram needs the content's colours (the Stylizer's color_reference)")
    return [match_colors(style, reference) for style in styles]


def _sqrtm(cov: np.ndarray, inverse: bool = False) -> np.ndarray:
    """Symmetric square root of a covariance, or its inverse with eigenvalues floored at
    :data:`MIN_VARIANCE` (the target's own are kept, only rounding below 0 is cut). Symmetric
    roots via eigendecomposition, as the paper's Image Analogies variant (not Cholesky)."""
    values, vectors = np.linalg.eigh((cov + cov.T) / 2)
    if inverse:
        return (vectors * np.maximum(values, MIN_VARIANCE) ** -0.5) @ vectors.T
    return (vectors * np.sqrt(np.maximum(values, 0.0))) @ vectors.T


def _pixels(image: np.ndarray, what: str) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{what} needs HxWx3 RGB images, got shape {image.shape}")
    return image.reshape(-1, 3).astype(np.float64)
