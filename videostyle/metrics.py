"""Quality measures for a stylized video: temporal warping error, style and content distance.

Pure functions: numpy frames, flows and masks in, numbers out. No file or video I/O here
(``videostyle.evaluate`` reads videos, frame folders and job folders).

Conventions
-----------
* Frames are HxWx3 RGB arrays, uint8 or float in 0..255.
* ``frames[k]`` is frame ``k + 1`` in the authors' 1-based numbering.
* ``backward_flows[k]`` is the backward flow of the *input* video from frame ``k + 2`` to frame
  ``k + 1`` (authors' ``backward_{t}_{t-1}.flo``), HxWx2 float32, channel 0 = x. It maps pixel x of
  frame t to x + w(x) in frame t-1, so ``flow.warp(frame[t-1], w)`` aligns frame t-1 with frame t.
* ``weights[k]`` is an HxW float array in 0..1 for the same pair; 1 = reliable. The authors'
  reliability maps (0..255) divided by 255 are such weights; soft values weight pixels partially.

Warping error (Lai et al., "Learning Blind Video Temporal Consistency", ECCV 2018): for each
pair (t-1, t), the mean over reliable pixels of |O_t - warp(O_{t-1})|. We report it in 0..255
units averaged over the RGB channels (``mean_abs``), and, as Lai et al. do, the squared error on
0..1 values averaged over reliable pixels and channels (``mean_squared``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

import flow


@dataclass(frozen=True)
class PairWarpingError:
    """Warping error of one frame t against frame t-1 warped to it.

    ``frame`` is t (1-based); ``mean_abs`` is in 0..255 units (NaN when no pixel is reliable);
    ``mean_squared`` is on 0..1 values (Lai et al.); ``reliable_fraction`` is the mean weight.
    """

    frame: int
    mean_abs: float
    mean_squared: float
    reliable_fraction: float


@dataclass(frozen=True)
class WarpingError:
    """Per-pair warping errors and their means over the pairs that had reliable pixels."""

    pairs: tuple[PairWarpingError, ...]
    mean_abs: float
    mean_squared: float


def pair_warping_error(current: np.ndarray, previous: np.ndarray, backward_flow: np.ndarray,
                       weights: np.ndarray, frame: int = 2) -> PairWarpingError:
    """Warping error of ``current`` (frame t) against ``previous`` (t-1) warped by the backward flow.

    ``weights`` (HxW, 0..1) select the reliable pixels; pixels whose flow leaves the image never
    count, whatever the weights say, because the warp has no sample there.
    """
    _check_pair_shapes(current, previous, backward_flow, weights)
    warped = flow.warp(previous.astype(np.float32), backward_flow.astype(np.float32))
    diff = np.abs(current.astype(np.float32) - warped.reshape(current.shape))
    w = np.clip(weights.astype(np.float32), 0.0, 1.0) * flow.lands_inside(backward_flow)
    total = float(w.sum())
    if total <= 0.0:
        return PairWarpingError(frame, math.nan, math.nan, 0.0)
    channels = diff.shape[2] if diff.ndim == 3 else 1
    diff = diff.reshape(*diff.shape[:2], channels)
    abs_per_pixel = diff.mean(axis=2)
    squared_per_pixel = ((diff / 255.0) ** 2).mean(axis=2)
    abs_err = float((abs_per_pixel * w).sum() / total)
    sq_err = float((squared_per_pixel * w).sum() / total)
    return PairWarpingError(frame, abs_err, sq_err, total / w.size)


def warping_error(frames: Sequence[np.ndarray], backward_flows: Sequence[np.ndarray],
                  weights: Sequence[np.ndarray]) -> WarpingError:
    """Warping error of a frame sequence (see module doc for the indexing of flows and weights).

    The means skip pairs without any reliable pixel (their per-pair values are NaN).
    """
    if len(frames) < 2:
        raise ValueError("warping error needs at least two frames")
    if len(backward_flows) != len(frames) - 1 or len(weights) != len(frames) - 1:
        raise ValueError(f"need {len(frames) - 1} flows and weights for {len(frames)} frames, "
                         f"got {len(backward_flows)} flows and {len(weights)} weights")
    pairs = [pair_warping_error(frames[k + 1], frames[k], backward_flows[k], weights[k], frame=k + 2)
             for k in range(len(frames) - 1)]
    return summarize_pairs(pairs)


def summarize_pairs(pairs: Sequence[PairWarpingError]) -> WarpingError:
    """Collect per-pair errors (e.g. computed while streaming a video) into a WarpingError."""
    return WarpingError(tuple(pairs), nanmean([p.mean_abs for p in pairs]),
                        nanmean([p.mean_squared for p in pairs]))


@dataclass(frozen=True)
class LongRangeError:
    """Warping error between frames t and t-``offset``, pooled over every t (each pixel counts
    once, so a pair that shows few of them counts little), 0..255 (NaN without pixels).

    ``revealed``: over frame t's pixels that frame t-k shows and some frame between hides (an
    occluder passed, or the camera looked away): what long-term consistency keeps. ``steady``:
    over the pixels every frame from t-k to t shows (at ``offset`` 1, the usual warping error).
    """

    offset: int
    revealed: float
    revealed_pixels: int
    steady: float
    steady_pixels: int


# The exact flow from frame t to frame s (0-based) and which of t's pixels s shows, as
# ``flow.synthetic.SyntheticClip.flow_between`` gives them.
FlowBetween = Callable[[int, int], tuple[np.ndarray, np.ndarray]]


def long_range_errors(frames: Sequence[np.ndarray], flow_between: FlowBetween,
                      max_offset: int = 10) -> list[LongRangeError]:
    """The warping error at every offset 1..``max_offset`` of a sequence with exact flow."""
    sums = np.zeros((max_offset + 1, 2))
    counts = np.zeros((max_offset + 1, 2), dtype=np.int64)
    for t in range(1, len(frames)):
        reach = range(max(0, t - max_offset), t)
        pairs = {s: flow_between(t, s) for s in reach}
        hidden = np.zeros(frames[t].shape[:2], dtype=bool)  # by a frame after s and before t
        for s in reversed(reach):
            flw, visible = pairs[s]
            for column, mask in enumerate((visible & hidden, visible & ~hidden)):
                pair = pair_warping_error(frames[t], frames[s], flw, mask.astype(np.float32))
                pixels = round(pair.reliable_fraction * mask.size)
                if pixels:
                    sums[t - s, column] += pair.mean_abs * pixels
                    counts[t - s, column] += pixels
            hidden |= ~visible
    means = np.divide(sums, counts, out=np.full_like(sums, math.nan), where=counts > 0)
    return [LongRangeError(k, float(means[k, 0]), int(counts[k, 0]), float(means[k, 1]), int(counts[k, 1]))
            for k in range(1, max_offset + 1)]


def flow_weights(backward_flow: np.ndarray, reliable: np.ndarray | None = None) -> np.ndarray:
    """Weights (HxW, 0..1) for a pair: the authors' reliability map / 255 if given, else all ones.

    Either way pixels whose flow leaves the image get 0 (used for ground-truth flows, where every
    pixel the flow lands inside the frame counts unless a reliability map says otherwise).
    """
    inside = flow.lands_inside(backward_flow)
    if reliable is None:
        return inside
    if reliable.shape[:2] != backward_flow.shape[:2]:
        raise ValueError(f"reliability map {reliable.shape[1]}x{reliable.shape[0]} does not match "
                         f"flow {backward_flow.shape[1]}x{backward_flow.shape[0]}")
    return inside * np.clip(reliable.astype(np.float32) / 255.0, 0.0, 1.0)


def style_distances(frames: Sequence[np.ndarray], stylizer) -> list[float]:
    """Per-frame style distance (relative Gram difference to the style targets, mean over the
    style layers), as defined by ``Stylizer.style_distance``; the stylizer holds the style."""
    return [float(stylizer.style_distance(np.asarray(f, dtype=np.float32))) for f in frames]


def content_distances(frames: Sequence[np.ndarray], contents: Sequence[np.ndarray],
                      stylizer) -> list[float]:
    """Per-frame content distance (relative relu4_2 difference of ``frames[k]`` to
    ``contents[k]``), as defined by ``Stylizer.content_distance``."""
    if len(frames) != len(contents):
        raise ValueError(f"{len(frames)} frames but {len(contents)} content frames")
    return [float(stylizer.content_distance(np.asarray(f, dtype=np.float32),
                                            np.asarray(c, dtype=np.float32)))
            for f, c in zip(frames, contents)]


def nanmean(values: Sequence[float]) -> float:
    """Mean of the non-NaN values; NaN if there are none."""
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def _check_pair_shapes(current: np.ndarray, previous: np.ndarray, backward_flow: np.ndarray,
                       weights: np.ndarray) -> None:
    size = current.shape[:2]
    for name, arr in (("previous frame", previous), ("backward flow", backward_flow),
                      ("weights", weights)):
        if arr.shape[:2] != size:
            raise ValueError(f"{name} is {arr.shape[1]}x{arr.shape[0]}, frame is {size[1]}x{size[0]}")
    if previous.shape != current.shape:
        raise ValueError(f"frames differ in shape: {previous.shape} vs {current.shape}")
    if backward_flow.ndim != 3 or backward_flow.shape[2] != 2:
        raise ValueError(f"a flow is HxWx2, got shape {backward_flow.shape}")
