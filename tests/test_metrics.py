"""videostyle.metrics on synthetic data whose answers are known by construction."""

from __future__ import annotations

import math

import numpy as np
import pytest

from videostyle import metrics


def texture(h: int = 24, w: int = 32, seed: int = 0) -> np.ndarray:
    """Random RGB texture in 40..200 so brightness offsets of +-40 stay inside 0..255."""
    return np.random.default_rng(seed).uniform(40, 200, (h, w, 3)).astype(np.float32)


def shift_right(image: np.ndarray, dx: int) -> np.ndarray:
    """Frame t(x) = frame t-1(x - dx): content moves right by dx; the left columns are new."""
    out = np.roll(image, dx, axis=1)
    out[:, :dx] = 0  # disoccluded: nothing in frame t-1 corresponds there
    return out


def constant_flow(h: int, w: int, u: float, v: float = 0.0) -> np.ndarray:
    flw = np.zeros((h, w, 2), np.float32)
    flw[..., 0], flw[..., 1] = u, v
    return flw


def test_static_video_has_zero_warping_error():
    frame = texture()
    frames = [frame.copy() for _ in range(4)]
    flows = [np.zeros((24, 32, 2), np.float32)] * 3
    weights = [np.ones((24, 32), np.float32)] * 3
    result = metrics.warping_error(frames, flows, weights)
    assert [p.frame for p in result.pairs] == [2, 3, 4]
    assert result.mean_abs == 0.0 and result.mean_squared == 0.0
    assert all(p.reliable_fraction == 1.0 for p in result.pairs)


def test_shift_with_known_flicker_gives_expected_error():
    # Input moves right by 3 px per frame; the "stylization" follows the motion but brightens the
    # second frame by 12 in red and 6 in green (a flicker the warp cannot explain).
    dx, h, w = 3, 24, 32
    first = texture(h, w)
    second = shift_right(first, dx)
    second[..., 0] += 12
    second[..., 1] += 6
    backward = constant_flow(h, w, -dx)  # frame 2 pixel x came from x - 3 in frame 1
    weights = metrics.flow_weights(backward)  # ground-truth style: all pixels landing inside
    # The first dx columns land outside frame 1 and must not count.
    assert weights[:, :dx].sum() == 0 and weights[:, dx:].min() == 1
    result = metrics.warping_error([first, second], [backward], [weights])
    pair = result.pairs[0]
    assert pair.mean_abs == pytest.approx((12 + 6 + 0) / 3, abs=1e-4)
    assert pair.mean_squared == pytest.approx(((12 / 255) ** 2 + (6 / 255) ** 2) / 3, rel=1e-5)
    assert pair.reliable_fraction == pytest.approx((w - dx) / w)
    assert result.mean_abs == pytest.approx(pair.mean_abs)


def test_subpixel_flow_is_warped_bilinearly():
    # A linear ramp is reproduced exactly by bilinear interpolation, so a half-pixel motion of
    # an unchanged ramp has zero error, and a +5 offset gives exactly 5.
    h, w = 8, 16
    ramp = np.repeat((np.arange(w, dtype=np.float32) * 7 + 20)[None, :, None], h, 0).repeat(3, 2)
    moved = ramp - 3.5  # ramp(x - 0.5)
    backward = constant_flow(h, w, -0.5)
    weights = metrics.flow_weights(backward)
    assert weights[:, 0].sum() == 0  # x - 0.5 < 0 leaves the image
    assert metrics.pair_warping_error(moved, ramp, backward, weights).mean_abs == pytest.approx(0, abs=1e-4)
    assert metrics.pair_warping_error(moved + 5, ramp, backward, weights).mean_abs == pytest.approx(5, abs=1e-4)


def test_unreliable_pixels_are_excluded_and_soft_weights_weight():
    h, w = 10, 10
    prev = np.full((h, w, 3), 100, np.float32)
    cur = prev.copy()
    cur[:, :5] += 30  # left half differs by 30 (say, an occlusion)
    still = np.zeros((h, w, 2), np.float32)
    mask = np.ones((h, w), np.float32)
    mask[:, :5] = 0
    assert metrics.pair_warping_error(cur, prev, still, mask).mean_abs == 0
    mask[:, :5] = 0.5  # half weight on the left: 0.5*30 / (0.5 + 1) per column pair
    assert metrics.pair_warping_error(cur, prev, still, mask).mean_abs == pytest.approx(10)
    full = metrics.pair_warping_error(cur, prev, still, np.ones((h, w), np.float32))
    assert full.mean_abs == pytest.approx(15)


def test_pair_without_reliable_pixels_is_nan_and_skipped_in_mean():
    frame = texture(8, 8)
    zero = np.zeros((8, 8, 2), np.float32)
    none = np.zeros((8, 8), np.float32)
    ones = np.ones((8, 8), np.float32)
    result = metrics.warping_error([frame, frame + 9, frame + 9], [zero, zero], [ones, none])
    assert math.isnan(result.pairs[1].mean_abs) and result.pairs[1].reliable_fraction == 0
    assert result.mean_abs == pytest.approx(9)


def test_flow_weights_use_reliability_map_over_255():
    backward = constant_flow(4, 6, 1.0)
    reliable = np.full((4, 6), 255, np.uint8)
    reliable[0] = 0
    reliable[1] = 51
    weights = metrics.flow_weights(backward, reliable)
    assert weights[0].max() == 0
    assert weights[1, :5] == pytest.approx(0.2)
    assert weights[:, 5].max() == 0  # x + 1 leaves the 6-px-wide frame
    assert weights[2:, :5].min() == 1


def test_shape_mismatches_are_reported():
    frame = texture(8, 8)
    with pytest.raises(ValueError, match="flow"):
        metrics.pair_warping_error(frame, frame, np.zeros((8, 9, 2), np.float32), np.ones((8, 8)))
    with pytest.raises(ValueError, match="need 1 flows"):
        metrics.warping_error([frame, frame], [], [])


def test_distance_wrappers_pass_frames_and_contents_in_order():
    class Recorder:
        def style_distance(self, image):
            return float(image.mean())

        def content_distance(self, image, content):
            return float(image.mean() - content.mean())

    frames = [np.full((4, 4, 3), v, np.uint8) for v in (10, 20)]
    contents = [np.full((4, 4, 3), v, np.uint8) for v in (1, 2)]
    assert metrics.style_distances(frames, Recorder()) == [10.0, 20.0]
    assert metrics.content_distances(frames, contents, Recorder()) == [9.0, 18.0]
    with pytest.raises(ValueError):
        metrics.content_distances(frames, contents[:1], Recorder())


def test_long_range_errors_split_revealed_from_steady_pixels():
    # Three frames of two pixel columns, nothing moving: the left column is always shown; the
    # right one is covered in frame 1 (0-based) only, so between frames 2 and 0 it is revealed.
    frames = [np.stack([np.full((3, 3), a), np.full((3, 3), b)], axis=1).astype(np.float32)  # 3 rows, 2 columns, RGB
              for a, b in ((10, 20), (12, 99), (13, 50))]

    def flow_between(t: int, s: int) -> tuple[np.ndarray, np.ndarray]:
        visible = np.ones((3, 2), bool)
        visible[:, 1] = 1 not in (t, s)  # frame 1 shows the cover there, and what it covers is not in it
        return np.zeros((3, 2, 2), np.float32), visible

    short, two = metrics.long_range_errors(frames, flow_between, max_offset=2)
    assert (short.offset, two.offset) == (1, 2)
    assert short.steady == pytest.approx(1.5) and short.steady_pixels == 6  # |12-10| and |13-12|, left column
    assert math.isnan(short.revealed) and short.revealed_pixels == 0  # nothing lies between neighbours
    assert two.revealed == pytest.approx(30.0) and two.revealed_pixels == 3  # |50-20|, right column
    assert two.steady == pytest.approx(3.0) and two.steady_pixels == 3  # |13-10|, left column


def test_real_vgg_distances_zero_for_identical_images_and_positive_otherwise(vgg_weights):
    from videostyle.config import StyleSettings
    from videostyle.frame.stylize import Stylizer

    style = texture(32, 32, seed=1).round()  # exactly what the uint8 style image holds
    content = texture(32, 32, seed=2)
    stylizer = Stylizer([style.astype(np.uint8)], StyleSettings(), (32, 32), device="cpu", vgg_weights=vgg_weights)
    assert metrics.style_distances([style], stylizer)[0] == pytest.approx(0, abs=1e-4)
    assert metrics.content_distances([content], [content], stylizer)[0] == pytest.approx(0, abs=1e-4)
    assert metrics.style_distances([content[::-1] * 0.3], stylizer)[0] > 0.01
    assert metrics.content_distances([style], [content], stylizer)[0] > 0.01
