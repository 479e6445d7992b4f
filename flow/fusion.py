"""Per-pixel fusion of several flow estimates of one frame pair.

No single OpenCV method holds everywhere on hard footage: dense DIS follows fast objects but
wanders on flat regions and at the working sizes of a preview (128 px wide) loses a fast disc,
DIS on frames upsampled 2x keeps the disc but smears the slow clip, DeepFlow is steadiest on flat
regions and loses fast motion. Yet at most pixels one of them is right (``benchmarks/
flow_classes_bench.py``'s first four clip classes at 128 px: the per-pixel best of the four
candidates has a worst-class endpoint error of 0.12 px, the best single method 0.24). So each
pixel takes the candidate that best explains the frames, by a cost that needs no ground truth:

    cost_i(x) = box( |a(x) - b(x + f_i(x))| ) + fb_weight * box( min(fb_i(x), fb_cap) )

where the photometric term is the colour L1 difference after warping b by candidate i (0..255
per channel, averaged) and ``fb_i(x) = min_j |f_i(x) + g_j(x + f_i(x))|`` is the forward-backward
mismatch of candidate i against the best-matching candidate of the opposite direction (a pixel
whose motion any estimator confirms from the other side is believed). ``box`` averages over a
``window`` x ``window`` neighbourhood, so that one noisy pixel cannot pick a wrong vector. A
target outside the frame has no photometric evidence: it gets the median photometric cost, so
the forward-backward term decides. The chosen field is median-filtered (3x3) against isolated
wrong picks and then polished by a few iterations of OpenCV's variational refinement (the
last stage of DIS), which smooths the seams between candidates along image edges.

Measured on the benchmark's four clip classes, 128 px, 5 pairs each (worst-class EPE): a
gradient-constancy term (weight 0.5 or 2) was worse than none (0.178 / 0.208 vs 0.170); a 7x7
window worse than 5x5 and 3x3 (0.174, 0.170, 0.169); the forward-backward weight 0.5-2 changes
little (0.171-0.172).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from flow.errors import FlowError

FB_WEIGHT = 1.0
FB_CAP = 4.0  # px: past this a candidate is simply wrong here; a cap keeps one outlier from dominating
WINDOW = 3
MEDIAN = 3
REFINE_ITERATIONS = 5


def fuse_flows(a: np.ndarray, b: np.ndarray, forwards: Sequence[np.ndarray], backwards: Sequence[np.ndarray],
               fb_weight: float = FB_WEIGHT, window: int = WINDOW) -> tuple[np.ndarray, np.ndarray]:
    """The per-pixel choice among ``forwards`` (candidate flows a -> b) and the index chosen.

    ``backwards`` are candidate flows b -> a (any number, at least one). ``a``, ``b``: HxWx3 or
    HxW frames in 0..255. Returns (HxWx2 float32 flow, HxW int index into ``forwards``), before
    any smoothing.
    """
    if not forwards or not backwards:
        raise FlowError("flow fusion needs at least one candidate each way")
    frame_a = _as_float(a)
    frame_b = _as_float(b)
    height, width = frame_a.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    photometric, mismatch = [], []
    for flw in forwards:
        map_x, map_y = grid_x + flw[..., 0], grid_y + flw[..., 1]
        diff = _colour_difference(frame_a, frame_b, map_x, map_y)
        outside = (map_x < 0) | (map_x > width - 1) | (map_y < 0) | (map_y > height - 1)
        photometric.append(np.where(outside, np.nan, diff))
        round_trip = np.full((height, width), np.inf, dtype=np.float32)
        for opposite in backwards:
            back = cv2.remap(opposite, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            round_trip = np.minimum(round_trip, np.hypot(flw[..., 0] + back[..., 0], flw[..., 1] + back[..., 1]))
        mismatch.append(np.minimum(round_trip, FB_CAP))
    data = np.stack(photometric)
    known = data[~np.isnan(data)]
    data = np.nan_to_num(data, nan=float(np.median(known)) if known.size else 0.0)
    costs = np.stack([cv2.boxFilter(d, -1, (window, window)) + fb_weight * cv2.boxFilter(m, -1, (window, window))
                      for d, m in zip(data, mismatch)])
    choice = np.argmin(costs, axis=0)
    fused = np.take_along_axis(np.stack(forwards), choice[None, ..., None], axis=0)[0]
    return np.ascontiguousarray(fused, dtype=np.float32), choice


def photometric_error(a: np.ndarray, b: np.ndarray, flw: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """HxW: how far ``b`` sampled along ``flw`` (a -> b) is from ``a`` (colour L1, 0..255 per
    channel, averaged), box-averaged over ``window`` x ``window``: the fusion's photometric cost."""
    frame_a, frame_b = _as_float(a), _as_float(b)
    height, width = frame_a.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    diff = _colour_difference(frame_a, frame_b, grid_x + flw[..., 0], grid_y + flw[..., 1])
    return cv2.boxFilter(diff, -1, (window, window))


def _colour_difference(frame_a: np.ndarray, frame_b: np.ndarray, map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    # cv2.remap quantises coordinates to 1/32 px: plenty for a cost, and 5-10x numpy's warp.
    warped = cv2.remap(frame_b, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    diff = np.abs(frame_a - warped)
    return diff.mean(axis=2) if diff.ndim == 3 else diff


def smooth_fused(flw: np.ndarray, grey_a: np.ndarray, grey_b: np.ndarray, median: int = MEDIAN,
                 iterations: int = REFINE_ITERATIONS) -> np.ndarray:
    """A fused field median-filtered per channel, then variationally refined on the grey frames
    (HxW uint8): seams between candidates become smooth along the image's edges."""
    if median > 1:
        flw = np.stack([cv2.medianBlur(np.ascontiguousarray(flw[..., c]), median) for c in range(2)], axis=-1)
    if iterations > 0:
        refine = cv2.VariationalRefinement_create()
        refine.setFixedPointIterations(iterations)
        flw = refine.calc(grey_a, grey_b, np.ascontiguousarray(flw, dtype=np.float32))
    return np.ascontiguousarray(flw, dtype=np.float32)


def _as_float(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame, dtype=np.float32)
    if frame.ndim == 3 and frame.shape[2] == 1:
        return frame[..., 0]
    return frame[..., :3] if frame.ndim == 3 else frame
