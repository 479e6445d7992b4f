"""The benchmarks' clips with exact flow: several occluders, and the flow between any two frames."""

from __future__ import annotations

import numpy as np
import pytest

from flow.synthetic import CameraPath, Disc, camera_clip, textured_image
from flow.warp import warp

SIZE = (96, 54)
CROSSING = CameraPath(pan=(0.05, 0.0), disc_radius=0.25, disc_speed=(10.0, 0.0), disc_start=(0.2, 0.5),
                      more_discs=(Disc((0.8, 0.5), (-10.0, 0.0), 0.25),))


def crossing_clip(n_frames: int = 6):
    return camera_clip(textured_image(300, 400, seed=1), [textured_image(120, 120, seed=2),
                                                          textured_image(120, 120, seed=3)],
                       n_frames, SIZE, CROSSING, seed=0)


def residual(clip, t: int, s: int) -> tuple[float, float]:
    """Mean |frame t - frame s warped to t| over the pixels s shows, and over the others."""
    flw, seen = clip.flow_between(t, s)
    diff = np.abs(clip.frames[t].astype(float) - warp(clip.frames[s].astype(np.float32), flw)).mean(-1)
    return float(diff[seen].mean()), float(diff[~seen].mean())


def test_the_flow_between_neighbours_is_the_clips_own() -> None:
    clip = crossing_clip(4)
    for k in range(1, 4):
        flw, seen = clip.flow_between(k, k - 1)
        np.testing.assert_array_equal(flw, clip.backward[k])
        np.testing.assert_array_equal(seen, clip.visible[k])
        flw, seen = clip.flow_between(k - 1, k)
        np.testing.assert_array_equal(flw, clip.forward[k])
        np.testing.assert_array_equal(seen, clip.visible_forward[k])


@pytest.mark.parametrize("gap", [1, 3, 5])
def test_frames_far_apart_match_along_the_flow_where_both_show_the_point(gap: int) -> None:
    clip = crossing_clip(6)
    shown, hidden = residual(clip, 5, 5 - gap)
    # the input's own interpolation error is about 1-2 levels; the hidden pixels show something else
    assert shown < 3.0, shown
    assert hidden > 4 * shown, (shown, hidden)


def test_the_upper_disc_hides_the_lower_one_where_they_overlap() -> None:
    clip = crossing_clip(6)
    # frame 3: the discs (centres 19+30 and 77-30 px, radius 13.5 px) overlap around x = 48
    layers = clip.layers[3]
    ys, xs = np.mgrid[0:SIZE[1], 0:SIZE[0]].astype(float)
    top = layers.top(xs, ys)
    assert (top == 2).sum() > (top == 1).sum() > 0
    # a pixel of the lower disc in frame 0 that the upper disc covers in frame 3 is not shown there
    flw, seen = clip.flow_between(0, 3)
    lower = clip.layers[0].top(xs, ys) == 1
    lands_under_upper = layers.top(xs + flw[..., 0], ys + flw[..., 1]) == 2
    assert (lower & lands_under_upper).any()
    assert not seen[lower & lands_under_upper].any()


def test_a_clip_without_geometry_says_so() -> None:
    clip = crossing_clip(2)
    bare = type(clip)(clip.frames, clip.backward, clip.forward, clip.visible, clip.visible_forward)
    with pytest.raises(ValueError, match="geometry"):
        bare.flow_between(1, 0)
