"""flow.visualize: the colour-wheel picture of a flow."""

from __future__ import annotations

import numpy as np

import flow


def _colour_of(u: float, v: float, max_magnitude: float = 1.0) -> np.ndarray:
    return flow.flow_to_color(np.array([[[u, v]]], np.float32), max_magnitude)[0, 0]


def test_zero_flow_is_white_and_directions_have_distinct_hues() -> None:
    assert _colour_of(0, 0).tolist() == [255, 255, 255]
    right, down, left, up = (_colour_of(*d) for d in [(1, 0), (0, 1), (-1, 0), (0, -1)])
    assert right.tolist() == [255, 0, 0]
    assert down[0] > 200 and down[1] > 200 and down[2] < 50  # yellow
    assert left[0] < 50 and left[2] > 200  # cyan-blue side
    assert up[2] > 200 and up[1] < 50  # blue
    assert len({tuple(c) for c in (right, down, left, up)}) == 4


def test_saturation_grows_with_length_and_out_of_range_is_darker() -> None:
    half, full, beyond = (_colour_of(s, 0, 2.0) for s in (1.0, 2.0, 4.0))
    assert half[1] > full[1] == 0  # less saturated: more green and blue mixed in
    assert beyond.max() < full.max()


def test_default_scale_is_the_longest_vector_and_unknown_is_black() -> None:
    flw = np.zeros((2, 3, 2), np.float32)
    flw[0, 0] = [3.0, 0.0]
    flw[1, 2] = [np.nan, 0.0]
    flw[1, 1] = [2e9, 0.0]
    picture = flow.flow_to_color(flw)
    assert picture.shape == (2, 3, 3) and picture.dtype == np.uint8
    assert picture[0, 0].tolist() == [255, 0, 0]
    assert picture[1, 2].tolist() == [0, 0, 0] and picture[1, 1].tolist() == [0, 0, 0]
    assert picture[0, 1].tolist() == [255, 255, 255]


def test_all_zero_flow_does_not_divide_by_zero() -> None:
    assert (flow.flow_to_color(np.zeros((4, 4, 2), np.float32)) == 255).all()
