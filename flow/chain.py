"""Flow between frames further apart, from the flows between the frames along the way.

An estimator asked for the flow between frames k apart sees k times the motion and everything
that changed in between; the flows between neighbours are already there, and each is good. Their
composition ``f(t -> t-k)(x) = f1(x) + f2(x + f1(x)) + ...`` (``f1 = f(t -> t-1)``, ``f2 =
f(t-1 -> t-2)``, ...) follows every pixel that every frame between shows, but is wrong where a
frame between hides it: a background pixel behind a passing object, exactly where the long-term
terms of the temporal loss matter. There a direct estimate of the pair may find it. So the pair's
flow takes, per pixel, whichever of the two explains the frames better (``flow.fusion``).

Where a frame between hides a pixel and the direct estimate misses too (the motion across k
frames is too large for it), neither candidate is right. With ``camera`` (``--long-term-camera``)
a third candidate there is the composition's global motion: the homography most of its vectors
follow (RANSAC), right at every pixel of a still scene filmed by a moving camera, hidden or not.
It is offered only where the composition breaks (its two directions do not bring a pixel back
within 0.5 px, or a pixel lies within 2 px of one that does not) and the homography matches the
frames (within 6 of 255 levels); elsewhere the third candidate is the composition itself.

Measured on the benchmark's synthetic clips at 128 px, 12 frames, pairs 2, 3 and 5 apart, against
the exact flow (``benchmarks/flow_classes_bench.py --gaps 2,3,5 --methods dis_dense+chain``, fused
flow between neighbours), endpoint error over pixels hidden in between and shown again, without
and with the camera's motion: pan 0.90 -> 0.25 px, zoom 1.33 -> 0.24, handheld 3.20 -> 0.23, slow
2.65 -> 0.18, rotation 2.87 -> 0.52, fast 0.14 -> 0.05, static 2.32 -> 1.65, crossing 9.66 ->
8.18 (pixels more than 1 px off: 7-67% -> 0-7% on the first six); over pixels every frame between
shows 0.02-0.24 px -> 0.01-0.21, none worse (fast 1.6 px either way, where the neighbours' flows
miss the disc). What is left on ``crossing`` is a disc hidden behind the other one for the whole
gap: its own motion is in none of the candidates. Those clips film a flat photo, where one
homography is exact. On real footage parallax and moving objects bend the motion away from any
homography, and there it did harm: ``default`` on the bikes footage (6 frames at 128 px,
benchmarks/heldout_bench.py) came out less steady in all eight runs, four paintings by two seeds
(warping error 1-7% higher, 3.6% on average; from one seed to the other the error itself moves by
3-18%), so it is off by default. Without the
chain, dense DIS across the frames is off by 2.5-2.7 px even where every frame between shows the
pixel.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from flow.errors import FlowError
from flow.estimators import fuse_candidates
from flow.fusion import photometric_error
from flow.io import check_flow
from flow.warp import warp

GRID_SPACING = 2  # px between the vectors a global motion is fitted to
RANSAC_TOLERANCE = 0.5  # px: a vector this close to the homography's agrees with it
# Below this share of agreeing vectors there is no dominant motion to offer. On real footage at
# 128 px the composed flows 2-10 frames apart agree 47-64% (bikes) and 88-93% (bigbuckbunny).
MIN_INLIER_SHARE = 0.25
CHAIN_BREAK = 0.5  # px of round trip: past this the composition lost the pixel along the way
MATCH_LEVELS = 6.0  # 0..255: a global motion is offered only where it matches the frames this well
BREAK_REACH = 5  # px: the square around such a pixel where the global motion is offered too


def compose_flows(steps: Sequence[np.ndarray]) -> np.ndarray:
    """The flow from the first frame to the last of a chain, from the flows between consecutive
    frames: ``steps[0]`` from frame 0 to frame 1, ``steps[1]`` from frame 1 to frame 2, ...
    (each HxWx2 on its own first frame's grid, all of one size)."""
    if not steps:
        raise FlowError("a chain of flows needs at least one flow")
    total = check_flow(steps[0], "first flow of the chain").copy()
    for k, step in enumerate(steps[1:], start=2):
        step = check_flow(step, f"flow {k} of the chain")
        if step.shape != total.shape:
            raise FlowError(f"flow {k} of the chain is {step.shape[1]}x{step.shape[0]}, "
                            f"the first {total.shape[1]}x{total.shape[0]}")
        total += warp(step, total)
    return total


def global_motion(flw: np.ndarray, spacing: int = GRID_SPACING, tolerance: float = RANSAC_TOLERANCE,
                  min_share: float = MIN_INLIER_SHARE) -> np.ndarray | None:
    """The homography that most of ``flw``'s vectors agree with (RANSAC over every ``spacing``-th
    pixel, within ``tolerance`` px) as a flow field; None where fewer than ``min_share`` of them do."""
    height, width = flw.shape[:2]
    ys, xs = np.mgrid[0:height:spacing, 0:width:spacing]
    sources = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)
    if len(sources) < 8:
        return None
    targets = sources + flw[ys.ravel(), xs.ravel()]
    homography, inliers = cv2.findHomography(sources, targets, cv2.RANSAC, tolerance)
    if homography is None or inliers is None or inliers.mean() < min_share:
        return None
    grid = np.stack(np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)), axis=-1)
    moved = cv2.perspectiveTransform(grid.reshape(-1, 1, 2), homography).reshape(height, width, 2)
    return np.ascontiguousarray(moved - grid, dtype=np.float32)


def fuse_with_chain(a: np.ndarray, b: np.ndarray, direct: tuple[np.ndarray, np.ndarray],
                    chained: tuple[np.ndarray, np.ndarray], camera: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Flows a -> b and b -> a, per pixel the direct estimate or the composed one (with ``camera``
    also the composed one's global motion where the composition loses a pixel), whichever fits the
    frames better; ``direct`` and ``chained`` are each (a -> b, b -> a)."""
    forwards, backwards = [direct[0], chained[0]], [direct[1], chained[1]]
    for candidates, opposite, (first, second) in ((forwards, chained[1], (a, b)), (backwards, chained[0], (b, a))):
        motion = global_motion(candidates[1]) if camera else None
        if motion is not None:
            offered = _where_chain_breaks(candidates[1], opposite) & _explains(first, second, motion)
            candidates.append(np.where(offered[..., None], motion, candidates[1]).astype(np.float32))
    return fuse_candidates(a, b, forwards, backwards), fuse_candidates(b, a, backwards, forwards)


def _explains(a: np.ndarray, b: np.ndarray, flw: np.ndarray) -> np.ndarray:
    """HxW bool: pixels of ``a`` that ``b`` sampled along ``flw`` matches within MATCH_LEVELS, by
    the fusion's own photometric cost."""
    return photometric_error(a, b, flw) < MATCH_LEVELS


def _where_chain_breaks(composed: np.ndarray, opposite: np.ndarray) -> np.ndarray:
    """HxW bool: pixels that ``composed`` then ``opposite`` (sampled where the first lands) do not
    bring back within CHAIN_BREAK px, and their neighbours within BREAK_REACH // 2 px."""
    round_trip = np.hypot(*(composed + warp(opposite, composed)).transpose(2, 0, 1))
    kernel = np.ones((BREAK_REACH, BREAK_REACH), np.uint8)
    return cv2.dilate((round_trip > CHAIN_BREAK).astype(np.uint8), kernel) > 0
