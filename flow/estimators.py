"""Optical flow estimators behind one small interface, chosen by name.

An estimator is a callable ``estimator(a, b) -> flow`` returning flow(a -> b) as HxWx2 float32
(channel 0 = u/x, 1 = v/y) such that a(x) ~ b(x + flow(x)). Frames are HxWx3 RGB or HxW grey,
uint8 or float in 0..255, of equal size.

Methods (all OpenCV, CPU, no external binaries):

- ``deepflow``: OpenCV contrib's variational DeepFlow (Weinzaepfel et al.) on greyscale, default
  parameters (no DeepMatching). Closest to the authors' DeepMatching+DeepFlow flows (about
  0.07 px mean endpoint difference on their frames); about 0.25-0.5 s per 450x350 field.
- ``dis``: Dense Inverse Search, MEDIUM preset. About 0.01-0.02 s per field; for previews.
- ``dis_fine``: DIS down to full resolution (MEDIUM stops at half resolution).
- ``dis_dense``: ``dis_fine`` with a patch at every pixel and more variational refinement: follows
  fast motion best of these (see its class), about 5x the cost of ``dis_fine``.
- ``tvl1``: Dual TV-L1 with a scale step of 0.5 instead of 0.8, so its 5-level pyramid reaches
  1/16 resolution and catches 10-20 px motion (0.8 only reaches 0.41).
- ``farneback``: Farnebäck polynomial expansion, 5 levels.
- ``fused``: per pixel the best of ``dis_dense``, ``dis_fine``, ``deepflow`` and ``dis_dense`` on
  frames upsampled 2x (``flow.fusion``): the fewest pixels off by more than 1 px on every clip
  class of the benchmark, at the cost of its four members both ways (see :class:`FusedEstimator`).

Every OpenCV method here accepts only single-channel input (DeepFlow and DIS: 8-bit grey; TV-L1
and Farnebäck: 8-bit or float grey), so colour frames are converted to 8-bit grey (ITU-R 601
luma) first. Frames smaller than ``MIN_SIDE`` are edge-padded for the computation and the flow
cropped back (DIS refuses sides below 12 px, TV-L1's pyramid breaks on 1-px images). Flat
frames (black frames, fades between flat frames) give zero flow rather than an error.

Each estimator instance creates its OpenCV object on first use and reuses it, so one instance
per worker amortises set-up; instances share no state. OpenCV's threading is left as configured.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Protocol

import cv2
import numpy as np

from flow.errors import FlowError
from flow.fusion import REFINE_ITERATIONS, fuse_flows, smooth_fused
from flow.resize import resize_flow

DEFAULT_METHOD = "deepflow"
MIN_SIDE = 32


class FlowEstimator(Protocol):
    """Computes flow(a -> b), HxWx2 float32, from two frames of equal size."""

    name: str

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray: ...


class _OpenCVEstimator(ABC):
    """Shared frame preparation; subclasses build the OpenCV object and run it on grey uint8."""

    name = ""

    def __init__(self) -> None:
        self._engine: Any = None

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        grey_a, grey_b = grey_pair(a, b)
        height, width = grey_a.shape
        grey_a, grey_b = _pad_to_min_side(grey_a), _pad_to_min_side(grey_b)
        if self._engine is None:
            self._engine = self._create()
        try:
            flw = self._compute(grey_a, grey_b)
        except cv2.error as exc:  # e.g. "Insufficient memory": one line, not OpenCV's traceback
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else "OpenCV error"
            raise FlowError(f"{self.name} flow failed on {width}x{height} frames: {reason}") from None
        flw = np.ascontiguousarray(flw[:height, :width], dtype=np.float32)
        # Defensive: a NaN from a degenerate solve must not reach the consistency check.
        return np.nan_to_num(flw, nan=0.0, posinf=0.0, neginf=0.0)

    @abstractmethod
    def _create(self) -> Any:
        """The OpenCV engine; made on first use (and so after a worker process has started)."""

    def _compute(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self._engine.calc(a, b, None)


def _optflow(method: str) -> Any:
    """OpenCV's contrib module ``optflow``. A package that depends on plain ``opencv-python``
    (or the headless build) installs a ``cv2`` without it over the contrib one, and the first
    flow would then fail with an AttributeError deep in a worker."""
    module = getattr(cv2, "optflow", None)
    if module is None:
        raise FlowError(f"the {method} flow needs OpenCV's contrib modules (cv2.optflow), which the installed "
                        f"OpenCV {cv2.__version__} lacks: pip install opencv-contrib-python (another package may "
                        f"have installed opencv-python over it), or choose --flow dis_dense")
    return module


class DeepFlowEstimator(_OpenCVEstimator):
    name = "deepflow"

    def _create(self) -> Any:
        return _optflow(self.name).createOptFlow_DeepFlow()


class DISEstimator(_OpenCVEstimator):
    """DIS, MEDIUM preset (patch 8, stride 3, finest scale 1 = half resolution)."""

    name = "dis"

    def _create(self) -> Any:
        return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)


class DISFineEstimator(_OpenCVEstimator):
    """DIS down to full resolution (finest scale 0 instead of 1), patch stride 4 to keep the
    cost near 3x MEDIUM; about 40% lower endpoint error than MEDIUM on textured frames."""

    name = "dis_fine"

    def _create(self) -> Any:
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        dis.setFinestScale(0)
        dis.setPatchStride(4)
        return dis


class DISDenseEstimator(_OpenCVEstimator):
    """DIS down to full resolution with a patch at every pixel (stride 1) and 20 variational
    refinement iterations instead of 5. Endpoint error over the visible pixels of the moving-camera
    clips of ``benchmarks/temporal_bench.py`` (192x108, 5 pairs each; the 25 px/frame disc
    included): pan 0.24 px (dis_fine 1.31), hand-held 0.31 (0.49), zoom 0.39 (0.49), at 0.036 s a
    field against dis_fine's 0.007 (one thread). Stride 2 with 20 iterations: 0.87 / 0.32 / 0.38
    px: the dense patches are what follows the fast disc."""

    name = "dis_dense"

    def _create(self) -> Any:
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        dis.setFinestScale(0)
        dis.setPatchStride(1)
        dis.setVariationalRefinementIterations(20)
        return dis


class TVL1Estimator(_OpenCVEstimator):
    name = "tvl1"

    def _create(self) -> Any:
        tvl1 = _optflow(self.name).createOptFlow_DualTVL1()
        tvl1.setScaleStep(0.5)
        return tvl1


class FarnebackEstimator(_OpenCVEstimator):
    name = "farneback"

    def _create(self) -> Any:
        return cv2.FarnebackOpticalFlow_create(numLevels=5, pyrScale=0.5, fastPyramids=False,
                                               winSize=21, numIters=5, polyN=7, polySigma=1.5,
                                               flags=0)


class UpsampledEstimator:
    """Another estimator run on frames upsampled ``factor`` times (bicubic, on grey), its flow
    brought back to the frames' size. DIS's patches are 8 px whatever the size, so on small
    frames (128 px wide) they span a fast object; upsampled 2x, dense DIS keeps a 17 px/frame
    disc it loses at 1x (benchmarks/flow_classes_bench.py)."""

    def __init__(self, inner: FlowEstimator, factor: int) -> None:
        self._inner, self._factor = inner, factor
        self.name = f"{inner.name}@x{factor}"

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        grey_a, grey_b = to_grey_uint8(a, "first frame"), to_grey_uint8(b, "second frame")
        height, width = grey_a.shape
        size = (width * self._factor, height * self._factor)
        flw = self._inner(cv2.resize(grey_a, size, interpolation=cv2.INTER_CUBIC),
                          cv2.resize(grey_b, size, interpolation=cv2.INTER_CUBIC))
        return resize_flow(flw, height, width)


class FusedEstimator:
    """Per pixel the member flow that best explains the frames (``flow.fusion``), smoothed.

    Each member runs both ways (the fusion's forward-backward term needs the opposite flows);
    the members' flows of the last pair are kept, so the flow stage's second call, b -> a,
    reuses them instead of recomputing: 0.23 s a pair at 128x72 and 0.53 s at 192x108 (one
    thread), against dense DIS's 0.03 and 0.08.

    ``benchmarks/flow_classes_bench.py``, 8 clip classes, 5 pairs each, the flow t -> t-1 over
    visible pixels, against the other methods on the working-size frames: at 128 px wide the
    lowest mean endpoint error on 7 classes (``slow``: 0.062 px, DeepFlow 0.060) and the lowest
    worst class (``fast``, a disc crossing at 27 px a frame: 0.97 px; members 1.22-2.96); at
    192 px the lowest on 6 classes, but its worst class (``fast``, 1.98 px) is above
    ``dis_dense`` upsampled 2x (1.92): every candidate loses that disc (the per-pixel best of
    them is still 1.66), and the mean is the disc's. Pixels off by more than 1 px: the fewest
    on every class, 0.1-4.8% (dense DIS 0.9-8.8%). Dense DIS on the source at twice the
    working size does better still on the rotating and zooming classes (``rotation`` 0.044 px
    against 0.11-0.18): the job keeps no frames that large yet. With ``flow.upsample = 2`` at
    192 px its worst class is 1.77 px, below every member's, for about 4x the time.

    The consistency check catches fewer of its wrong pixels (38-44% on ``handheld``) because
    the choice favours flows both directions agree on, yet it leaves fewer wrong pixels marked
    reliable (0.3% of visible against dense DIS's 0.5%).
    """

    name = "fused"

    def __init__(self) -> None:
        self._members: list[FlowEstimator] = [DISDenseEstimator(), DISFineEstimator(), DeepFlowEstimator(),
                                              UpsampledEstimator(DISDenseEstimator(), 2)]
        self._last: tuple[bytes, bytes, list[np.ndarray], list[np.ndarray]] | None = None

    @property
    def member_names(self) -> list[str]:
        """The estimators it chooses from (an upsampled one by its own name: ``dis_dense@x2``)."""
        return [member.name for member in self._members]

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        # the members refuse frames of different sizes before any of them estimates anything
        return fuse_candidates(a, b, *self._candidates(a, b))

    def _candidates(self, a: np.ndarray, b: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        key_a, key_b = _frame_key(a), _frame_key(b)
        if self._last is not None and (self._last[0], self._last[1]) == (key_b, key_a):
            return self._last[3], self._last[2]
        if self._last is not None and (self._last[0], self._last[1]) == (key_a, key_b):
            return self._last[2], self._last[3]
        forwards = [member(a, b) for member in self._members]
        backwards = [member(b, a) for member in self._members]
        self._last = (key_a, key_b, forwards, backwards)
        return forwards, backwards


def grey_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both frames as 8-bit grey, or FlowError when they differ in size."""
    grey_a, grey_b = to_grey_uint8(a, "first frame"), to_grey_uint8(b, "second frame")
    if grey_a.shape != grey_b.shape:
        raise FlowError(f"frames differ in size: {grey_a.shape[1]}x{grey_a.shape[0]} vs "
                        f"{grey_b.shape[1]}x{grey_b.shape[0]}")
    return grey_a, grey_b


def fuse_candidates(a: np.ndarray, b: np.ndarray, forwards: Sequence[np.ndarray],
                    backwards: Sequence[np.ndarray]) -> np.ndarray:
    """Flow a -> b taking per pixel the candidate of ``forwards`` that best explains the frames
    (``flow.fusion``, against the candidates b -> a ``backwards``), median-filtered and refined."""
    grey_a, grey_b = grey_pair(a, b)
    colour_a, colour_b = np.asarray(a), np.asarray(b)
    if colour_a.ndim != colour_b.ndim:  # grey against colour: compare in grey
        colour_a, colour_b = grey_a, grey_b
    fused, _ = fuse_flows(colour_a, colour_b, forwards, backwards)
    # The refinement shares DIS's limits on tiny frames; below MIN_SIDE only the median runs.
    iterations = REFINE_ITERATIONS if min(grey_a.shape) >= MIN_SIDE else 0
    return smooth_fused(fused, grey_a, grey_b, iterations=iterations)


def _frame_key(frame: np.ndarray) -> bytes:
    digest = hashlib.blake2b(f"{frame.dtype}{frame.shape}".encode(), digest_size=16)
    digest.update(np.ascontiguousarray(frame).tobytes())
    return digest.digest()


_ESTIMATORS: Mapping[str, Callable[[], FlowEstimator]] = MappingProxyType({
    "deepflow": DeepFlowEstimator,
    "dis": DISEstimator,
    "dis_fine": DISFineEstimator,
    "dis_dense": DISDenseEstimator,
    "tvl1": TVL1Estimator,
    "farneback": FarnebackEstimator,
    "fused": FusedEstimator,
})


def available_methods() -> list[str]:
    """Names accepted by :func:`estimate_flow`, the default first."""
    return list(_ESTIMATORS)


def create_estimator(method: str = DEFAULT_METHOD, upsample: int = 1) -> FlowEstimator:
    """A new estimator for ``method``, run on frames ``upsample`` times larger when above 1;
    reuse it for many frame pairs. FlowError if unknown."""
    try:
        factory = _ESTIMATORS[method]
    except KeyError:
        raise FlowError(f"unknown flow method {method!r}; available: "
                        f"{', '.join(available_methods())}") from None
    if int(upsample) != upsample or upsample < 1:
        raise FlowError(f"flow upsampling must be a whole number from 1, got {upsample}")
    return factory() if upsample == 1 else UpsampledEstimator(factory(), int(upsample))


def estimate_flow(a: np.ndarray, b: np.ndarray, method: str = DEFAULT_METHOD, upsample: int = 1) -> np.ndarray:
    """Flow(a -> b) as HxWx2 float32 with a(x) ~ b(x + flow(x)); see the module docstring."""
    return create_estimator(method, upsample)(a, b)


def to_grey_uint8(image: np.ndarray, what: str = "frame") -> np.ndarray:
    """HxW uint8 grey from HxW / HxWx1 / HxWx3 (RGB) / HxWx4 (RGBA), uint8 or float 0..255."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise FlowError(f"{what} must be HxW grey or HxWx3 RGB, got shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise FlowError(f"{what} is empty ({image.shape})")
    if image.dtype != np.uint8:
        if not (np.issubdtype(image.dtype, np.floating) or np.issubdtype(image.dtype, np.integer)):
            raise FlowError(f"{what} has unsupported dtype {image.dtype}")
        image = np.clip(np.rint(np.nan_to_num(image.astype(np.float32))), 0, 255).astype(np.uint8)
    if image.ndim == 3:
        code = cv2.COLOR_RGB2GRAY if image.shape[2] == 3 else cv2.COLOR_RGBA2GRAY
        image = cv2.cvtColor(np.ascontiguousarray(image), code)
    return np.ascontiguousarray(image)


def _pad_to_min_side(grey: np.ndarray) -> np.ndarray:
    height, width = grey.shape
    pad_y, pad_x = max(0, MIN_SIDE - height), max(0, MIN_SIDE - width)
    if pad_x == 0 and pad_y == 0:
        return grey
    return cv2.copyMakeBorder(grey, 0, pad_y, 0, pad_x, cv2.BORDER_REPLICATE)
