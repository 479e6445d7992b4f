"""flow.consistency: the authors' consistency checker, and long-term weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import flow
from flow.io import pgm_bytes, to_mask_uint8
from flow.synthetic import Motion, make_pair

EXAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "artistic-videos-example"
needs_example = pytest.mark.skipif(not EXAMPLE.is_dir(), reason="../shared/data is absent")
# (checked flow, opposite flow, the authors' mask for it), for all 8 reference masks.
REFERENCE_MASKS = [case for i in range(1, 5) for case in (
    (f"forward_{i}_{i + 1}.flo", f"backward_{i + 1}_{i}.flo", f"reliable_{i}_{i + 1}.pgm"),
    (f"backward_{i + 1}_{i}.flo", f"forward_{i}_{i + 1}.flo", f"reliable_{i + 1}_{i}.pgm"),
)]
INTERIOR = 254  # the checker's smoothing of a constant 255 sums to just under 255


@needs_example
@pytest.mark.parametrize("checked, opposite, mask", REFERENCE_MASKS)
def test_reproduces_the_authors_masks(checked: str, opposite: str, mask: str) -> None:
    ours = flow.consistency_check(flow.read_flo(EXAMPLE / "deepflow" / checked),
                                  flow.read_flo(EXAMPLE / "deepflow" / opposite))
    theirs = flow.read_pgm(EXAMPLE / "deepflow" / mask)
    assert ours.dtype == np.float32 and ours.shape == theirs.shape
    assert ours.min() >= 0 and ours.max() <= 255
    diff = np.abs(to_mask_uint8(ours).astype(int) - theirs)
    ours_bad, theirs_bad = ours < 128, theirs < 128
    iou = (ours_bad & theirs_bad).sum() / (ours_bad | theirs_bad).sum()
    assert theirs_bad.sum() > 500  # the comparison is not vacuous
    assert diff.mean() <= 1.0 and iou >= 0.98
    # The aim, and what the float32-faithful reimplementation achieves: the same bytes.
    assert pgm_bytes(ours) == (EXAMPLE / "deepflow" / mask).read_bytes()


def test_true_flows_mark_occlusions_unreliable_and_the_rest_reliable() -> None:
    pair = make_pair(72, 96, Motion(shift=(3.0, -2.0), rotation_deg=1.0, disc_radius=12.0,
                                    disc_shift=(-4.0, 3.0)), seed=5)
    reliable = flow.consistency_check(pair.forward, pair.backward)
    assert pair.occluded_a.sum() > 100
    assert (reliable[pair.occluded_a] < 128).all()
    # Away from occlusions and the disc's edge (smoothing and motion boundary reach 3 px).
    grow = _dilate(pair.occluded_a | _edge(pair.disc_a), 3)
    assert (reliable[~grow] >= INTERIOR).all()


def test_pixels_leaving_the_image_get_zero() -> None:
    height, width = 20, 30
    shift = np.zeros((height, width, 2), np.float32)
    shift[..., 0] = 5.0
    reliable = flow.consistency_check(shift, -shift)
    rows = slice(3, height - 4)  # the checker also rejects targets in the last row (see below)
    # x + 5 needs floor(x + 5) + 1 <= width - 1, i.e. x <= width - 7: columns from width-6 fail.
    assert (reliable[:, width - 4:] == 0).all()  # beyond the 2-px reach of the smoothing
    assert (reliable[rows, : width - 8] >= INTERIOR).all()
    assert (reliable[rows, width - 6: width - 4] < 128).all()


def test_targets_in_the_last_row_or_column_count_as_outside() -> None:
    # The authors' checker needs both bilinear neighbours inside, so even zero flow loses the
    # last row and column; their masks show it wherever the flow does not point back inwards.
    reliable = flow.consistency_check(np.zeros((12, 12, 2), np.float32),
                                      np.zeros((12, 12, 2), np.float32))
    assert (reliable[:, -1] < 128).all() and (reliable[-1, :] < 128).all()
    assert (reliable[:8, :8] >= INTERIOR).all()


def test_shear_is_a_motion_boundary_not_an_occlusion() -> None:
    height, width = 24, 24
    shear = np.zeros((height, width, 2), np.float32)
    shear[:, : width // 2, 1] = 1.0
    shear[:, width // 2:, 1] = -1.0  # columns slide past each other: nothing is hidden
    reliable = flow.consistency_check(shear, -shear)
    rows = slice(4, height - 4)
    boundary = reliable[rows, width // 2 - 1: width // 2 + 1]
    assert (boundary < 128).all()
    assert (reliable[rows, : width // 2 - 4] >= INTERIOR).all()
    assert (reliable[rows, width // 2 + 4: width - 4] >= INTERIOR).all()


def test_disocclusion_spreads_out_through_the_smoothing() -> None:
    # Zero flow checked against an opposite flow that does not bring a block back: the block is
    # disoccluded (-255 before smoothing) and has no motion boundary (the checked flow is flat).
    still = np.zeros((20, 24, 2), np.float32)
    opposite = still.copy()
    opposite[:, 12:, 0] = 5.0
    reliable = flow.consistency_check(still, opposite)
    assert (reliable[4:16, 13:18] == 0).all()
    # Next to a -255 region: 255 (k2 + k1 + k0) - 255 (k1 + k2) = 255 k0 < 128, i.e. unreliable;
    # next to a region of 0 it would be 255 (k2 + k1 + k0) ~ 191.
    assert (reliable[4:16, 11] < 128).all()
    assert (reliable[4:16, :8] >= INTERIOR).all()


def test_size_and_shape_mismatches_are_flow_errors() -> None:
    with pytest.raises(flow.FlowError, match="sizes differ"):
        flow.consistency_check(np.zeros((4, 5, 2), np.float32), np.zeros((5, 4, 2), np.float32))
    with pytest.raises(flow.FlowError, match="HxWx2"):
        flow.consistency_check(np.zeros((4, 5), np.float32), np.zeros((4, 5), np.float32))


def test_non_finite_vectors_count_as_leaving_the_image() -> None:
    flw = np.zeros((16, 16, 2), np.float32)
    flw[1:6, 1:6] = [np.nan, 0.0]
    flw[8:13, 8:13] = [np.inf, 0.0]
    reliable = flow.consistency_check(flw, np.zeros_like(flw))
    assert np.isfinite(reliable).all()
    assert reliable[3, 3] == 0 and reliable[10, 10] == 0  # 5x5 blocks: the smoothing adds nothing


def test_tiny_images_do_not_crash() -> None:
    for shape in [(1, 1, 2), (1, 7, 2), (3, 2, 2)]:
        reliable = flow.consistency_check(np.zeros(shape, np.float32), np.zeros(shape, np.float32))
        assert reliable.shape == shape[:2] and np.isfinite(reliable).all()


def test_long_term_weights_subtract_closer_frames() -> None:
    c = {1: np.array([[1.0, 0.0, 0.5, 0.0]]),
         2: np.array([[1.0, 1.0, 1.0, 0.0]]),
         4: np.array([[1.0, 1.0, 1.0, 0.7]])}
    long = flow.long_term_weights(c)
    assert sorted(long) == [1, 2, 4]
    np.testing.assert_allclose(long[1], [[1.0, 0.0, 0.5, 0.0]])
    np.testing.assert_allclose(long[2], [[0.0, 1.0, 0.5, 0.0]])
    # Offset 4 subtracts the original c of 1 and 2 (the paper's formula), then clips at 0.
    np.testing.assert_allclose(long[4], [[0.0, 0.0, 0.0, 0.7]], atol=1e-7)
    assert all(w.dtype == np.float32 for w in long.values())


def test_long_term_weights_edge_cases() -> None:
    assert flow.long_term_weights({}) == {}
    only = flow.long_term_weights({3: np.full((2, 2), 0.25)})
    np.testing.assert_allclose(only[3], 0.25)
    with pytest.raises(flow.FlowError, match="differ in size"):
        flow.long_term_weights({1: np.ones((2, 2)), 2: np.ones((2, 3))})
    with pytest.raises(flow.FlowError, match="positive"):
        flow.long_term_weights({0: np.ones((2, 2))})


def _edge(mask: np.ndarray) -> np.ndarray:
    return mask ^ _dilate(mask, 1)


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    out = mask.copy()
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            out |= np.roll(np.roll(mask, dy, 0), dx, 1)
    return out
