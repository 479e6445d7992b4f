"""flow.warp: out(x) = image(x + flow(x)), bilinear, border-clamped; flow.lands_inside: where it has a sample."""

from __future__ import annotations

import numpy as np
import pytest

import flow
from flow.synthetic import Motion, make_pair, textured_image


def test_zero_flow_is_the_identity() -> None:
    image = textured_image(20, 28, seed=1)
    zero = np.zeros((20, 28, 2), np.float32)
    assert np.array_equal(flow.warp(image, zero), image.astype(np.float32))


def test_integer_shift_moves_pixels_where_it_should() -> None:
    image = textured_image(20, 28, seed=2)
    shift = np.zeros((20, 28, 2), np.float32)
    shift[..., 0], shift[..., 1] = 3.0, -2.0
    expected = image[:-2, 3:]  # out[y, x] = image[y - 2, x + 3]
    out = flow.warp(image, shift)
    np.testing.assert_allclose(out[2:, :25], expected, atol=1e-3)
    # Outside the image the border pixel is repeated.
    np.testing.assert_allclose(out[0, :25], image[0, 3:], atol=1e-3)
    np.testing.assert_allclose(out[5, 25:], np.repeat(image[3, -1:], 3, axis=0), atol=1e-3)


def test_fractional_shift_is_bilinear() -> None:
    image = np.arange(30, dtype=np.float32).reshape(5, 6)
    shift = np.zeros((5, 6, 2), np.float32)
    shift[..., 0], shift[..., 1] = 0.25, 0.5
    out = flow.warp(image, shift)
    # image[y, x] = 6y + x is linear, so bilinear sampling is exact: 6 (y + 0.5) + x + 0.25.
    np.testing.assert_allclose(out[:4, :5], image[:4, :5] + 3.25, atol=1e-5)


def test_lands_inside_marks_samples_that_leave_the_image_on_either_axis() -> None:
    shift = np.zeros((6, 8, 2), np.float32)
    shift[..., 0], shift[..., 1] = 2.5, -1.0  # x + 2.5 > 7 in the last 3 columns, y - 1 < 0 in row 0
    inside = flow.lands_inside(shift)
    expected = np.ones((6, 8), np.float32)
    expected[:, 5:] = 0
    expected[0] = 0
    assert inside.dtype == np.float32
    np.testing.assert_array_equal(inside, expected)
    assert flow.lands_inside(np.full((2, 3, 2), np.nan, np.float32)).sum() == 0  # no sample from NaN


def test_warping_frame_b_by_the_true_flow_gives_frame_a() -> None:
    pair = make_pair(48, 64, Motion(shift=(2.5, -1.5), rotation_deg=2.0, disc_radius=8.0,
                                    disc_shift=(2.0, 2.0)), seed=3)
    warped = flow.warp(pair.b, pair.forward)
    visible = ~pair.occluded_a
    error = np.abs(warped - pair.a).mean(-1)
    assert error[visible].mean() < 3.0  # bilinear interpolation of a textured frame
    assert error[pair.occluded_a].mean() > 3 * error[visible].mean()


def test_grey_images_and_one_pixel_images() -> None:
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert flow.warp(grey, np.zeros((3, 4, 2), np.float32)).shape == (3, 4)
    single = flow.warp(np.full((1, 1, 3), 7, np.uint8), np.full((1, 1, 2), 3.0, np.float32))
    assert single.tolist() == [[[7.0, 7.0, 7.0]]]


def test_size_mismatches_are_flow_errors() -> None:
    with pytest.raises(flow.FlowError):
        flow.warp(np.zeros((4, 5, 3)), np.zeros((5, 4, 2), np.float32))
    with pytest.raises(flow.FlowError):
        flow.lands_inside(np.zeros((4, 5, 3), np.float32))
