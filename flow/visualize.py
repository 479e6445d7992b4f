"""A flow field as a picture: the Middlebury colour wheel (Baker et al. 2011).

Hue is the direction of motion, saturation its length relative to ``max_magnitude``: white is
no motion, fully saturated is ``max_magnitude`` or more (longer vectors are darkened by 25% to
show they are out of range). Unknown vectors (NaN or |component| > 1e9) are black. Colour
directions: right = red, down = yellow, left = cyan, up = blue.
"""

from __future__ import annotations

import numpy as np

from flow.io import check_flow

# Colour wheel segments: hue steps between red, yellow, green, cyan, blue, magenta, red.
_SEGMENTS = (("RY", 15), ("YG", 6), ("GC", 4), ("CB", 11), ("BM", 13), ("MR", 6))
UNKNOWN_FLOW = 1e9


def colour_wheel() -> np.ndarray:
    """The wheel's 55 RGB colours (float 0..1), going round from red."""
    rows = []
    ramps = {  # (channel that ramps, up or down, channel held at full)
        "RY": (1, True, 0), "YG": (0, False, 1), "GC": (2, True, 1),
        "CB": (1, False, 2), "BM": (0, True, 2), "MR": (2, False, 0),
    }
    for name, steps in _SEGMENTS:
        ramp_channel, rising, full_channel = ramps[name]
        t = np.arange(steps) / steps
        block = np.zeros((steps, 3))
        block[:, full_channel] = 1.0
        block[:, ramp_channel] = t if rising else 1.0 - t
        rows.append(block)
    return np.concatenate(rows)


def flow_to_color(flw: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """HxWx3 uint8 RGB picture of an HxWx2 flow; ``max_magnitude`` defaults to the largest
    known vector's length (so the picture is always fully saturated somewhere)."""
    flw = check_flow(flw, "flow to show")
    u, v = flw[..., 0].astype(np.float64), flw[..., 1].astype(np.float64)
    with np.errstate(invalid="ignore"):
        unknown = ~(np.abs(u) <= UNKNOWN_FLOW) | ~(np.abs(v) <= UNKNOWN_FLOW)  # NaN compares False
    u, v = np.where(unknown, 0.0, u), np.where(unknown, 0.0, v)
    radius = np.hypot(u, v)
    if max_magnitude is None:
        max_magnitude = float(radius.max()) if radius.size else 0.0
    scale = max_magnitude if max_magnitude and max_magnitude > 0 else 1.0
    rgb = _wheel_colour(u / scale, v / scale)
    rgb[unknown] = 0.0
    return np.clip(np.floor(255.0 * rgb), 0, 255).astype(np.uint8)


def _wheel_colour(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    wheel = colour_wheel()
    n = len(wheel)
    radius = np.hypot(u, v)
    angle = np.arctan2(-v, -u) / np.pi  # -1..1, 0 = pointing left
    position = (angle + 1) / 2 * (n - 1)
    k0 = np.floor(position).astype(int)
    k1 = (k0 + 1) % n
    frac = (position - k0)[..., None]
    colour = (1 - frac) * wheel[k0] + frac * wheel[k1]
    inside = (radius <= 1)[..., None]
    # Inside the unit disc: blend towards white with the radius; outside: darken.
    saturated = 1 - radius[..., None] * (1 - colour)
    return np.where(inside, saturated, colour * 0.75)
