"""Reliability of a flow field: the authors' ``consistencyChecker``, and long-term weights.

Reliability maps are HxW float32 in 0..255 (255 = reliable), as in the authors' ``.pgm`` files;
the optimizer's weights are ``map / 255``.

:func:`consistency_check` reimplements Ruder et al.'s checker (artistic-videos,
``consistencyChecker.cpp``) operation by operation, including where the C++ rounds to float32
and where it computes in double, so that ``write_pgm(consistency_check(w, w_hat))`` reproduces
their ``.pgm`` files byte for byte. For each pixel x of the checked flow w (flow a -> b) and the
opposite flow ŵ (flow b -> a):

1. x + w(x) must lie inside the image with room for bilinear sampling (floor(x + w) >= 0 and
   floor(x + w) + 1 <= size - 1 on both axes), else the pixel gets 0. So a target in the last
   row or column counts as outside: with zero flow the last row and column are unreliable.
2. ŵ is sampled bilinearly at x + w(x); if |w + ŵ|² >= 0.01 (|w|² + |ŵ|²) + 0.5 the pixel is
   disoccluded and gets -255, so the later smoothing spreads the unreliable region outwards.
3. Otherwise, if |∇u|² + |∇v|² > 0.01 |w|² + 0.002 (3-tap central differences of w,
   mirrored at the border) the pixel is on a motion boundary and gets 0.
4. All other pixels get 255. The map is smoothed by a separable 5-tap Gaussian (sigma 0.8,
   mirrored borders, float32 accumulation) and clipped to 0..255.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from flow.errors import FlowError
from flow.io import check_flow

F32 = np.float32
F64 = np.float64

# The checker's constants (Sundaram et al.'s coefficients, as in the authors' code).
DISOCCLUSION_RELATIVE = 0.01
DISOCCLUSION_ABSOLUTE = F32(0.5)
MOTION_EDGE_RELATIVE = 0.01
MOTION_EDGE_ABSOLUTE = F32(0.002)
SMOOTH_SIGMA = 0.8
SMOOTH_RADIUS_IN_SIGMAS = 2.0
RELIABLE = 255.0
DISOCCLUDED = -255.0
MOTION_BOUNDARY = 0.0
OUTSIDE = 0.0


def consistency_check(flw: np.ndarray, opposite: np.ndarray) -> np.ndarray:
    """Reliability of ``flw`` (flow a -> b) checked against ``opposite`` (flow b -> a).

    Both are HxWx2 float32 (u, v). Returns HxW float32 in 0..255, 255 = reliable, exactly the
    values the authors' checker computes before it truncates them into a ``.pgm``. Non-finite
    flow vectors count as leaving the image (0).
    """
    flw = check_flow(flw, "flow to check")
    opposite = check_flow(opposite, "opposite flow")
    if flw.shape != opposite.shape:
        raise FlowError(f"flow sizes differ: {_size(flw)} vs {_size(opposite)} "
                        "(a flow and its opposite must come from the same pair of frames)")
    raw = _classify(flw, opposite)
    smoothed = smooth_gaussian_like_checker(raw)
    return np.clip(smoothed, F32(0.0), F32(255.0))


def _classify(flw: np.ndarray, opposite: np.ndarray) -> np.ndarray:
    """The unsmoothed map: 255 reliable, -255 disoccluded, 0 motion boundary or outside."""
    height, width = flw.shape[:2]
    u = np.ascontiguousarray(flw[..., 0])
    v = np.ascontiguousarray(flw[..., 1])
    ax = np.arange(width, dtype=F32)[None, :]
    ay = np.arange(height, dtype=F32)[:, None]
    with np.errstate(invalid="ignore", over="ignore"):
        bx = ax + u  # float32, as `float bx = ax + flow1(ax, ay, 0)`
        by = ay + v
        x1 = np.floor(bx)
        y1 = np.floor(by)
        inside = (x1 >= 0) & (x1 + 1 <= width - 1) & (y1 >= 0) & (y1 + 1 <= height - 1)
        inside &= np.isfinite(bx) & np.isfinite(by)
        result = np.full((height, width), F32(RELIABLE), dtype=F32)
        result[~inside] = F32(OUTSIDE)

        rows, cols = np.nonzero(inside)
        px, py = bx[rows, cols], by[rows, cols]
        ix, iy = x1[rows, cols].astype(np.intp), y1[rows, cols].astype(np.intp)
        alpha_x = px - ix.astype(F32)  # exact: float minus its own floor
        alpha_y = py - iy.astype(F32)
        su = _bilinear_like_checker(opposite[..., 0], ix, iy, alpha_x, alpha_y)
        sv = _bilinear_like_checker(opposite[..., 1], ix, iy, alpha_x, alpha_y)

        u2, v2 = u[rows, cols], v[rows, cols]
        cx = px + su  # float32 `cx = bx + u`
        cy = py + sv
        dx = cx - ax[0, cols]
        dy = cy - ay[rows, 0]
        round_trip = dx * dx + dy * dy  # float32
        own_sq = u2 * u2 + v2 * v2  # float32
        both_sq = own_sq + su * su + sv * sv  # float32, summed left to right as in C
        # The C++ compares a float with `0.01 * float + 0.5f`, which is evaluated in double.
        disoccluded = (round_trip.astype(F64)
                       >= DISOCCLUSION_RELATIVE * both_sq.astype(F64) + F64(DISOCCLUSION_ABSOLUTE))
        edge = _motion_edge_like_checker(u, v)[rows, cols]
        edge_limit = MOTION_EDGE_RELATIVE * own_sq.astype(F64) + F64(MOTION_EDGE_ABSOLUTE)
        boundary = ~disoccluded & (edge.astype(F64) > edge_limit)
    values = np.full(rows.shape, F32(RELIABLE), dtype=F32)
    values[disoccluded] = F32(DISOCCLUDED)
    values[boundary] = F32(MOTION_BOUNDARY)
    result[rows, cols] = values
    return result


def _bilinear_like_checker(channel: np.ndarray, ix: np.ndarray, iy: np.ndarray,
                           alpha_x: np.ndarray, alpha_y: np.ndarray) -> np.ndarray:
    """Bilinear sample of one flow channel, rounding like ``(1.0-a)*f0 + a*f1`` in the C++.

    ``1.0 - a`` is double, so the left product is double; ``a * f1`` is float*float (float32),
    the sum is double and is stored into a float.
    """
    f00 = channel[iy, ix]
    f10 = channel[iy, ix + 1]
    f01 = channel[iy + 1, ix]
    f11 = channel[iy + 1, ix + 1]
    top = _lerp_like_checker(f00, f10, alpha_x)
    bottom = _lerp_like_checker(f01, f11, alpha_x)
    return _lerp_like_checker(top, bottom, alpha_y)


def _lerp_like_checker(f0: np.ndarray, f1: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    left = (1.0 - alpha.astype(F64)) * f0.astype(F64)
    right = (alpha * f1).astype(F64)  # float32 product, then promoted
    return (left + right).astype(F32)


def _motion_edge_like_checker(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """|∇u|² + |∇v|² with the checker's 3-tap derivative (-0.5, 0, 0.5), in float32.

    The C++ accumulates ``ux², vx², uy², vy²`` into a float in this order.
    """
    ux, uy = _central_difference(u, axis=1), _central_difference(u, axis=0)
    vx, vy = _central_difference(v, axis=1), _central_difference(v, axis=0)
    with np.errstate(over="ignore", invalid="ignore"):
        return ((ux * ux + vx * vx) + uy * uy) + vy * vy


def _central_difference(channel: np.ndarray, axis: int) -> np.ndarray:
    """0.5 f(x+1) - 0.5 f(x-1) in float32, the border mirrored (f(-1) = f(0), f(n) = f(n-1)).

    The C++ sums ``-0.5*f(x-1) + 0*f(x) + 0.5*f(x+1)`` from 0; the halvings are exact and the
    middle term adds zero, so one float32 subtraction gives identical bits.
    """
    padded = np.pad(channel, [(1, 1) if a == axis else (0, 0) for a in range(2)], mode="symmetric")
    n = channel.shape[axis]
    after = np.take(padded, np.arange(2, n + 2), axis=axis)
    before = np.take(padded, np.arange(0, n), axis=axis)
    with np.errstate(over="ignore", invalid="ignore"):
        return F32(0.5) * after - F32(0.5) * before


def checker_smoothing_kernel(sigma: float = SMOOTH_SIGMA,
                             precision: float = SMOOTH_RADIUS_IN_SIGMAS) -> np.ndarray:
    """The checker's normalised Gaussian taps (its ``CSmooth(0.8, 2.0)``: 5 taps), float32.

    Rounded as the C++ builds them: exp(...) / (sigma sqrt(2 pi)) in double stored as float, the
    sum of the float taps accumulated in float, each tap multiplied by float(1.0 / sum).
    """
    sigma32 = F32(sigma)
    radius = int(math.ceil(F32(precision) * sigma32))
    sigma_sq = F64(sigma32 * sigma32)
    offsets = np.arange(-radius, radius + 1, dtype=F64)
    taps = (np.exp(offsets * offsets / (-2.0 * sigma_sq))
            / (F64(sigma32) * math.sqrt(2.0 * math.pi))).astype(F32)
    total = F32(0.0)
    for tap in taps:
        total = F32(total + abs(tap))
    inverse = F32(1.0 / F64(total))
    return (taps * inverse).astype(F32)


def smooth_gaussian_like_checker(image: np.ndarray) -> np.ndarray:
    """Separable Gaussian smoothing of an HxW float32 map, x then y, as the checker does it.

    Correlation with the checker's taps, mirrored borders (index -1 -> 0, n -> n-1), each output
    accumulated from 0 in float32, tap by tap from the most negative offset.
    """
    taps = checker_smoothing_kernel()
    return _correlate_float32(_correlate_float32(image.astype(F32), taps, axis=1), taps, axis=0)


def _correlate_float32(image: np.ndarray, taps: np.ndarray, axis: int) -> np.ndarray:
    radius = len(taps) // 2
    n = image.shape[axis]
    pad = [(radius, radius) if a == axis else (0, 0) for a in range(image.ndim)]
    # 'symmetric' reflects again when the image is narrower than the kernel radius.
    padded = np.pad(image, pad, mode="symmetric")
    total = np.zeros_like(image, dtype=F32)
    for k, tap in enumerate(taps):
        total = total + tap * np.take(padded, np.arange(k, k + n), axis=axis)
    return total


def long_term_weights(reliable: Mapping[int, np.ndarray]) -> dict[int, np.ndarray]:
    """Long-term weights c_long(i-j, i) = max(c(i-j, i) - sum_{k in J, k < j} c(i-k, i), 0).

    ``reliable`` maps each offset j in J to the weight map c(i-j, i) of frame i (HxW, 0..1, e.g.
    ``consistency_check(...) / 255``). A pixel is thus constrained by the closest earlier frame
    in which it was visible, and not again by frames further back. Returns float32 maps in 0..1
    with the same keys. The sum runs over the unmodified c, as in the paper (the authors' Lua
    subtracts the already-clipped long-term weights instead).
    """
    offsets = sorted(reliable)
    if not offsets:
        return {}
    if any(int(j) != j or j < 1 for j in offsets):
        raise FlowError(f"long-term offsets must be positive integers, got {offsets}")
    maps = {j: np.asarray(reliable[j], dtype=F32) for j in offsets}
    shape = maps[offsets[0]].shape
    for j, weights in maps.items():
        if weights.ndim != 2 or weights.shape != shape:
            raise FlowError(f"reliability maps differ in size: offset {j} has shape "
                            f"{weights.shape}, offset {offsets[0]} has {shape}")
    closer = np.zeros(shape, dtype=F32)
    result: dict[int, np.ndarray] = {}
    for j in offsets:
        result[j] = np.maximum(maps[j] - closer, F32(0.0))
        closer = closer + maps[j]
    return result


def _size(flw: np.ndarray) -> str:
    return f"{flw.shape[1]}x{flw.shape[0]}"
