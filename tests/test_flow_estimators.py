"""flow.estimators: every method against synthetic ground truth, and awkward frames."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import flow
from flow.synthetic import Motion, endpoint_error, make_pair

METHODS = ["deepflow", "dis", "dis_fine", "dis_dense", "tvl1", "farneback", "fused"]
# Mean endpoint error bounds on visible pixels, 2-3x what each method measured on this pair
# (deepflow 0.19, dis 0.26, dis_fine 0.15, dis_dense 0.12, tvl1 0.13, farneback 0.84, fused 0.096 px).
MAX_EPE = {"deepflow": 0.4, "dis": 0.5, "dis_fine": 0.35, "dis_dense": 0.3, "tvl1": 0.4, "farneback": 1.6,
           "fused": 0.25}
# Background: 2 degree rotation plus (4, -2.5) px; a disc moving (-2, 4) px over it.
MOTION = Motion(shift=(4.0, -2.5), rotation_deg=2.0, disc_radius=14.0, disc_shift=(-2.0, 4.0))


@pytest.fixture(scope="module")
def pair():
    return make_pair(96, 128, MOTION, seed=0)


def test_available_methods_default_first() -> None:
    assert flow.available_methods() == METHODS
    assert flow.DEFAULT_METHOD == "deepflow"


@pytest.mark.parametrize("method", METHODS)
def test_flow_matches_ground_truth_and_occlusions_are_unreliable(pair, method: str) -> None:
    estimator = flow.create_estimator(method)
    forward = estimator(pair.a, pair.b)
    backward = estimator(pair.b, pair.a)
    assert forward.shape == (96, 128, 2) and forward.dtype == np.float32
    visible = ~pair.occluded_a
    assert endpoint_error(forward, pair.forward, visible) < MAX_EPE[method]
    assert endpoint_error(backward, pair.backward, ~pair.occluded_b) < MAX_EPE[method]
    # Zero flow would be far off: the test measures the estimate, not a constant.
    assert endpoint_error(np.zeros_like(forward), pair.forward, visible) > 3.0

    reliable = flow.consistency_check(forward, backward)
    assert pair.occluded_a.sum() > 500
    assert (reliable[pair.occluded_a] < 128).mean() >= 0.85
    assert (reliable[visible] >= 128).mean() >= (0.75 if method == "farneback" else 0.9)


@pytest.mark.parametrize("method", METHODS)
def test_textureless_and_tiny_frames_do_not_crash(method: str) -> None:
    black = np.zeros((40, 48, 3), np.uint8)
    grey = np.full((40, 48, 3), 128, np.uint8)
    white = np.full((40, 48, 3), 255, np.uint8)
    fade = (grey * 0.5).astype(np.uint8)
    for a, b in [(black, black), (grey, grey), (black, white), (grey, fade)]:
        flw = flow.estimate_flow(a, b, method)
        assert flw.shape == (40, 48, 2) and np.isfinite(flw).all()
        assert np.abs(flw).max() < 0.5  # nothing to match: no motion is the honest answer
    for shape in [(1, 1, 3), (5, 7, 3), (3, 60)]:
        rng = np.random.default_rng(0)
        a = rng.integers(0, 256, shape, dtype=np.uint8)
        flw = flow.estimate_flow(a, a, method)
        assert flw.shape == (*shape[:2], 2) and np.isfinite(flw).all()


def test_colour_grey_and_float_frames_give_the_same_flow(pair) -> None:
    grey_a = cv2.cvtColor(pair.a, cv2.COLOR_RGB2GRAY)
    grey_b = cv2.cvtColor(pair.b, cv2.COLOR_RGB2GRAY)
    from_colour = flow.estimate_flow(pair.a, pair.b, "dis")
    assert np.array_equal(from_colour, flow.estimate_flow(grey_a, grey_b, "dis"))
    as_float = flow.estimate_flow(pair.a.astype(np.float32), pair.b.astype(np.float64), "dis")
    assert np.array_equal(from_colour, as_float)


@pytest.mark.parametrize("method", ["deepflow", "dis"])
def test_an_estimator_instance_carries_nothing_between_calls(pair, method: str) -> None:
    estimator = flow.create_estimator(method)
    estimator(pair.b, pair.a)  # some other pair first
    assert np.array_equal(estimator(pair.a, pair.b), flow.estimate_flow(pair.a, pair.b, method))


def test_bad_inputs_are_flow_errors(pair) -> None:
    with pytest.raises(flow.FlowError, match="unknown flow method 'raft'"):
        flow.estimate_flow(pair.a, pair.b, "raft")
    with pytest.raises(flow.FlowError, match="differ in size"):
        flow.estimate_flow(pair.a, pair.b[:50], "dis")
    with pytest.raises(flow.FlowError, match="HxWx3"):
        flow.estimate_flow(np.zeros((4, 4, 2), np.uint8), np.zeros((4, 4, 2), np.uint8), "dis")
    with pytest.raises(flow.FlowError, match="empty"):
        flow.estimate_flow(np.zeros((0, 4), np.uint8), np.zeros((0, 4), np.uint8), "dis")


SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.mark.skipif(not (SHARED / "photos").is_dir(), reason="../shared/data is absent")
def test_photo_warped_by_a_known_rotation() -> None:
    photo = cv2.cvtColor(cv2.imread(str(SHARED / "photos" / "tubingen.jpg")), cv2.COLOR_BGR2RGB)
    b = cv2.resize(photo, (160, 120), interpolation=cv2.INTER_AREA)
    y, x = np.mgrid[0:120, 0:160].astype(np.float32)
    angle = np.radians(3.0)  # rotation about the centre plus a shift: 3..8 px
    cx, cy = 79.5, 59.5
    truth = np.stack([np.cos(angle) * (x - cx) - np.sin(angle) * (y - cy) + cx + 3.0 - x,
                      np.sin(angle) * (x - cx) + np.cos(angle) * (y - cy) + cy - 2.0 - y], -1)
    a = np.clip(np.rint(flow.warp(b, truth)), 0, 255).astype(np.uint8)  # a(x) = b(x + truth(x))
    inside = ((x + truth[..., 0] >= 0) & (x + truth[..., 0] <= 159)
              & (y + truth[..., 1] >= 0) & (y + truth[..., 1] <= 119))
    inner = np.zeros_like(inside)
    inner[8:-8, 8:-8] = True  # the sky has no texture; judge where there is something to see
    for method, bound in [("deepflow", 0.2), ("dis_fine", 0.25)]:  # measured 0.05, 0.07
        estimate = flow.estimate_flow(a, b, method)
        assert endpoint_error(estimate, truth, inside & inner) < bound, method


@pytest.mark.skipif(not (SHARED / "artistic-videos-example").is_dir(),
                    reason="../shared/data is absent")
def test_deepflow_is_close_to_the_authors_flow_on_their_frames() -> None:
    example = SHARED / "artistic-videos-example"
    frames = [cv2.cvtColor(cv2.imread(str(example / f"marple8_0{i}.ppm")), cv2.COLOR_BGR2RGB)
              for i in (3, 4)]
    ours = flow.estimate_flow(frames[0], frames[1], "deepflow")
    theirs = flow.read_flo(example / "deepflow" / "forward_3_4.flo")
    assert endpoint_error(ours, theirs) < 0.15  # measured 0.06 px mean over the 4 pairs


@pytest.mark.skipif(not (SHARED / "photos").is_dir(), reason="../shared/data is absent")
def test_dis_dense_follows_a_fast_disc_that_dis_fine_loses() -> None:
    # temporal_bench's `pan` clip: a photo panned past, a disc from another sliding 25 px a frame
    from flow.synthetic import CameraPath, camera_clip

    photos = [cv2.cvtColor(cv2.imread(str(SHARED / "photos" / name)), cv2.COLOR_BGR2RGB)
              for name in ("tubingen.jpg", "golden_gate.jpg")]
    path = CameraPath(pan=(0.3, 0.0), disc_speed=(25.0, 0.0), disc_start=(0.02, 0.45))
    clip = camera_clip(photos[0], photos[1], 3, (192, 108), path, seed=3)
    errors = {method: endpoint_error(flow.estimate_flow(clip.frames[2], clip.frames[1], method), clip.backward[2],
                                     clip.visible[2]) for method in ("dis_fine", "dis_dense")}
    assert errors["dis_dense"] < 0.75 * errors["dis_fine"], errors
