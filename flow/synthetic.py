"""Frame pairs with exactly known flow, for tests and benchmarks.

A textured background moves by a rotation plus a translation, and a textured disc moves over it
by its own translation, hiding background in one frame that is visible in the other. Textures
are analytic (sums of random sinusoids and soft-edged blobs), so every frame is sampled exactly
at its pixel centres and the ground truth has no interpolation error.

Conventions as in the rest of ``flow``: ``forward`` is flow(a -> b) with a(x) = b(x + forward(x))
for pixels visible in both frames; ``backward`` is flow(b -> a).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SyntheticPair:
    """Two RGB uint8 frames, both flows, and where each frame's pixels have no match."""

    a: np.ndarray  # HxWx3 uint8
    b: np.ndarray  # HxWx3 uint8
    forward: np.ndarray  # HxWx2 float32, flow a -> b
    backward: np.ndarray  # HxWx2 float32, flow b -> a
    occluded_a: np.ndarray  # HxW bool: a's pixel is hidden in b or leaves the image
    occluded_b: np.ndarray  # HxW bool: b's pixel is hidden in a or comes from outside
    disc_a: np.ndarray  # HxW bool: a's pixel is on the moving disc


@dataclass(frozen=True)
class Motion:
    """Background: rotate by ``rotation_deg`` about the image centre, then translate by
    ``shift`` (pixels, x then y). Disc: radius ``disc_radius`` centred at ``disc_centre`` (as a
    fraction of width, height) in frame a, translated by ``disc_shift`` in frame b."""

    shift: tuple[float, float] = (5.0, -3.0)
    rotation_deg: float = 2.0
    disc_radius: float = 16.0
    disc_centre: tuple[float, float] = (0.45, 0.5)
    disc_shift: tuple[float, float] = (-4.0, 5.0)


class Texture:
    """An analytic RGB texture: T(x, y) in 0..255 for any float coordinates."""

    def __init__(self, seed: int, scale: float, waves: int = 96, blobs: int = 40) -> None:
        rng = np.random.default_rng(seed)
        freq = np.exp(rng.uniform(math.log(0.04), math.log(0.9), waves))  # radians per pixel
        angle = rng.uniform(0, math.pi, waves)
        self._kx, self._ky = freq * np.cos(angle), freq * np.sin(angle)
        self._phase = rng.uniform(0, 2 * math.pi, waves)
        # Mostly grey texture with some colour, amplitudes falling with frequency.
        colour = rng.normal(size=(waves, 1)) + 0.4 * rng.normal(size=(waves, 3))
        self._amp = colour / freq[:, None] ** 0.5
        # Flat blobs with soft (3 px) edges add strong edges at many orientations.
        self._blob_xy = rng.uniform(0, scale, (blobs, 2))
        self._blob_r = rng.uniform(0.02, 0.1, blobs) * scale
        self._std = np.sqrt((self._amp ** 2).sum(0) / 2)
        blob_colour = rng.normal(size=(blobs, 1)) + 0.5 * rng.normal(size=(blobs, 3))
        self._blob_rgb = blob_colour * self._std

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """x, y: HxW float coordinates -> HxWx3 float in 0..255."""
        arg = x[..., None] * self._kx + y[..., None] * self._ky + self._phase
        value = np.sin(arg) @ self._amp
        for (bx, by), radius, rgb in zip(self._blob_xy, self._blob_r, self._blob_rgb):
            dist = np.hypot(x - bx, y - by)
            value += rgb * (0.5 - 0.5 * np.tanh((dist - radius) / 3.0))[..., None]
        return 127.5 + 120.0 * np.tanh(value / (1.5 * self._std))


def textured_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """An HxWx3 uint8 image with texture at many scales and some sharp-ish edges."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    return _to_uint8(Texture(seed, max(height, width))(x, y))


def make_pair(height: int, width: int, motion: Motion = Motion(), seed: int = 0) -> SyntheticPair:
    """Frames a and b of a rotating, shifting background with a disc moving over it."""
    background = Texture(seed, max(height, width))
    disc = Texture(seed + 1, 4 * motion.disc_radius)
    rot = math.radians(motion.rotation_deg)
    cos, sin = math.cos(rot), math.sin(rot)
    cx, cy = (width - 1) / 2, (height - 1) / 2
    tx, ty = motion.shift
    dx, dy = motion.disc_shift
    ox_a, oy_a = motion.disc_centre[0] * width, motion.disc_centre[1] * height
    ox_b, oy_b = ox_a + dx, oy_a + dy
    radius = motion.disc_radius
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)

    # Background: a's pixel x shows T_bg(M(x)), b's pixel y shows T_bg(y).
    mx = cos * (x - cx) - sin * (y - cy) + cx + tx
    my = sin * (x - cx) + cos * (y - cy) + cy + ty
    # Inverse: b's pixel y came from M^-1(y) in a.
    ix = cos * (x - cx - tx) + sin * (y - cy - ty) + cx
    iy = -sin * (x - cx - tx) + cos * (y - cy - ty) + cy

    in_disc_a = np.hypot(x - ox_a, y - oy_a) <= radius
    in_disc_b = np.hypot(x - ox_b, y - oy_b) <= radius
    disc_centre = 2 * radius  # the disc texture is sampled around (2r, 2r)
    a = np.where(in_disc_a[..., None],
                 disc(x - ox_a + disc_centre, y - oy_a + disc_centre), background(mx, my))
    b = np.where(in_disc_b[..., None],
                 disc(x - ox_b + disc_centre, y - oy_b + disc_centre), background(x, y))

    forward = np.stack([np.where(in_disc_a, dx, mx - x), np.where(in_disc_a, dy, my - y)], -1)
    backward = np.stack([np.where(in_disc_b, -dx, ix - x), np.where(in_disc_b, -dy, iy - y)], -1)
    hidden_in_b = ~in_disc_a & (np.hypot(mx - ox_b, my - oy_b) <= radius)
    hidden_in_a = ~in_disc_b & (np.hypot(ix - ox_a, iy - oy_a) <= radius)
    return SyntheticPair(
        a=_to_uint8(a), b=_to_uint8(b),
        forward=forward.astype(np.float32), backward=backward.astype(np.float32),
        occluded_a=hidden_in_b | _leaves_image(forward, height, width),
        occluded_b=hidden_in_a | _leaves_image(backward, height, width),
        disc_a=in_disc_a,
    )


def endpoint_error(flw: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean Euclidean distance between two HxWx2 flows, over ``mask`` (bool HxW) if given."""
    err = np.hypot(flw[..., 0] - truth[..., 0], flw[..., 1] - truth[..., 1])
    return float(err[mask].mean() if mask is not None else err.mean())


def _leaves_image(flw: np.ndarray, height: int, width: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    tx, ty = x + flw[..., 0], y + flw[..., 1]
    return (tx < 0) | (tx > width - 1) | (ty < 0) | (ty > height - 1)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)
