"""Warping images and feature maps by a flow field, in numpy and in torch, one convention.

``warp(image, w)(x) = image(x + w(x))``: the output at pixel x samples ``image`` at x + w(x),
bilinearly. So to bring frame a's content into frame b's pixel grid, warp a by the flow
b -> a: ``warp(stylized[t-1], flow(t -> t-1))`` lines the previous stylized frame up with frame
t. Pixel centres are at integer coordinates (0..W-1, 0..H-1). Samples outside the image take the
nearest border pixel (clamped coordinates); the checker gives such pixels weight 0 anyway.

Both paths compute the same bilinear formula in float32, so they agree to float rounding. The
numpy path is cv2.remap's convention (INTER_LINEAR, BORDER_REPLICATE) computed in numpy, because
OpenCV 4 quantises remap coordinates to 1/32 pixel and rounds uint8 results (about 20 ms per
450x350 RGB frame; exact).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from flow.errors import FlowError
from flow.io import check_flow

if TYPE_CHECKING:  # torch is imported on first use, so `import flow` stays light for the CLI
    import torch


def warp(image: np.ndarray, flw: np.ndarray) -> np.ndarray:
    """Sample ``image`` (HxW or HxWxC, any numeric dtype) at x + flw(x); float32, same shape.

    ``flw`` is HxWx2 float32 (u, v) on the output's grid, which must have the image's size.
    """
    flw = check_flow(flw, "flow to warp with")
    image = np.asarray(image)
    if image.ndim not in (2, 3) or image.shape[:2] != flw.shape[:2]:
        raise FlowError(f"image of shape {image.shape} does not fit a flow of size "
                        f"{flw.shape[1]}x{flw.shape[0]}")
    height, width = flw.shape[:2]
    x = np.arange(width, dtype=np.float32)[None, :] + flw[..., 0]
    y = np.arange(height, dtype=np.float32)[:, None] + flw[..., 1]
    # Non-finite vectors sample the nearest corner rather than producing NaN indices.
    x = np.clip(np.nan_to_num(x, nan=0.0), 0, width - 1)
    y = np.clip(np.nan_to_num(y, nan=0.0), 0, height - 1)
    x0 = np.minimum(np.floor(x), width - 2 if width > 1 else 0).astype(np.intp)
    y0 = np.minimum(np.floor(y), height - 2 if height > 1 else 0).astype(np.intp)
    x1 = np.minimum(x0 + 1, width - 1)
    y1 = np.minimum(y0 + 1, height - 1)
    wx = x - x0.astype(np.float32)
    wy = y - y0.astype(np.float32)
    src = image.astype(np.float32, copy=False)
    if src.ndim == 3:
        wx, wy = wx[..., None], wy[..., None]
    top = src[y0, x0] * (1 - wx) + src[y0, x1] * wx
    bottom = src[y1, x0] * (1 - wx) + src[y1, x1] * wx
    return (top * (1 - wy) + bottom * wy).astype(np.float32, copy=False)


def warp_torch(image: torch.Tensor, flw: torch.Tensor) -> torch.Tensor:
    """The torch twin of :func:`warp`, differentiable in ``image`` (and ``flw``).

    ``image`` is B,C,H,W (float), ``flw`` is B,2,H,W (channel 0 = u, 1 = v) in pixels. Returns
    B,C,H,W with ``out[..., y, x] = image(x + u, y + v)``, bilinear, border-clamped.
    """
    if image.dim() != 4 or flw.dim() != 4 or flw.shape[1] != 2:
        raise FlowError(f"warp_torch wants image B,C,H,W and flow B,2,H,W; got "
                        f"{tuple(image.shape)} and {tuple(flw.shape)}")
    if image.shape[0] != flw.shape[0] or image.shape[2:] != flw.shape[2:]:
        raise FlowError(f"image {tuple(image.shape)} and flow {tuple(flw.shape)} differ in "
                        "batch or size")
    import torch.nn.functional as F

    return F.grid_sample(image, sampling_grid(flw).to(image.dtype), mode="bilinear",
                         padding_mode="border", align_corners=True)


def sampling_grid(flw: torch.Tensor) -> torch.Tensor:
    """grid_sample's B,H,W,2 grid in [-1, 1] (align_corners=True) for the pixel flow ``flw``."""
    import torch

    _, _, height, width = flw.shape
    ys = torch.arange(height, dtype=flw.dtype, device=flw.device).view(1, height, 1)
    xs = torch.arange(width, dtype=flw.dtype, device=flw.device).view(1, 1, width)
    # Clamped as in warp() (NaN samples pixel 0), which is what padding_mode="border" does
    # anyway; clamping first keeps huge or infinite vectors finite after normalising.
    x = torch.nan_to_num(xs + flw[:, 0], nan=0.0).clamp(0, width - 1)
    y = torch.nan_to_num(ys + flw[:, 1], nan=0.0).clamp(0, height - 1)
    return torch.stack((_normalise(x, width), _normalise(y, height)), dim=-1)


def _normalise(coord: torch.Tensor, size: int) -> torch.Tensor:
    # align_corners=True maps -1 to pixel 0 and +1 to pixel size-1; a single pixel is all 0.
    if size == 1:
        return coord * 0.0
    return coord * (2.0 / (size - 1)) - 1.0
