"""flow.warp / flow.warp_torch: one convention, out(x) = image(x + flow(x)), in numpy and torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import flow
from flow.synthetic import Motion, make_pair, textured_image


def _to_torch(image: np.ndarray, flw: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    img = torch.from_numpy(np.ascontiguousarray(image, np.float32))
    img = img.permute(2, 0, 1)[None] if img.dim() == 3 else img[None, None]
    return img, torch.from_numpy(flw).permute(2, 0, 1)[None].contiguous()


def _from_torch(out: torch.Tensor) -> np.ndarray:
    return out[0].permute(1, 2, 0).squeeze(-1).detach().numpy()


def test_zero_flow_is_the_identity() -> None:
    image = textured_image(20, 28, seed=1)
    zero = np.zeros((20, 28, 2), np.float32)
    assert np.array_equal(flow.warp(image, zero), image.astype(np.float32))
    assert np.allclose(_from_torch(flow.warp_torch(*_to_torch(image, zero))), image, atol=1e-3)


def test_integer_shift_moves_pixels_where_it_should() -> None:
    image = textured_image(20, 28, seed=2)
    shift = np.zeros((20, 28, 2), np.float32)
    shift[..., 0], shift[..., 1] = 3.0, -2.0
    expected = image[:-2, 3:]  # out[y, x] = image[y - 2, x + 3]
    for out in (flow.warp(image, shift), _from_torch(flow.warp_torch(*_to_torch(image, shift)))):
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


def test_numpy_and_torch_agree_on_a_random_flow() -> None:
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 255, (17, 23, 3)).astype(np.float32)
    flw = rng.normal(0, 4, (17, 23, 2)).astype(np.float32)  # many samples leave the image
    ours = flow.warp(image, flw)
    theirs = _from_torch(flow.warp_torch(*_to_torch(image, flw)))
    assert ours.shape == theirs.shape == (17, 23, 3)
    assert np.abs(ours - theirs).max() < 2e-3


def test_warping_frame_b_by_the_true_flow_gives_frame_a() -> None:
    pair = make_pair(48, 64, Motion(shift=(2.5, -1.5), rotation_deg=2.0, disc_radius=8.0,
                                    disc_shift=(2.0, 2.0)), seed=3)
    warped = flow.warp(pair.b, pair.forward)
    visible = ~pair.occluded_a
    error = np.abs(warped - pair.a).mean(-1)
    assert error[visible].mean() < 3.0  # bilinear interpolation of a textured frame
    assert error[pair.occluded_a].mean() > 3 * error[visible].mean()


def test_torch_warp_is_differentiable_and_batched() -> None:
    image = torch.rand(2, 4, 9, 11, requires_grad=True)
    flw = torch.zeros(2, 2, 9, 11)
    flw[1, 0] = 1.0
    out = flow.warp_torch(image, flw)
    assert out.shape == (2, 4, 9, 11)
    torch.testing.assert_close(out[0], image[0])
    torch.testing.assert_close(out[1, :, :, :-1], image[1, :, :, 1:])
    out.sum().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0


def test_grey_images_and_one_pixel_images() -> None:
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert flow.warp(grey, np.zeros((3, 4, 2), np.float32)).shape == (3, 4)
    single = flow.warp(np.full((1, 1, 3), 7, np.uint8), np.full((1, 1, 2), 3.0, np.float32))
    assert single.tolist() == [[[7.0, 7.0, 7.0]]]
    single_t = flow.warp_torch(torch.full((1, 1, 1, 1), 7.0), torch.full((1, 2, 1, 1), 3.0))
    assert single_t.item() == pytest.approx(7.0)


def test_size_mismatches_are_flow_errors() -> None:
    with pytest.raises(flow.FlowError):
        flow.warp(np.zeros((4, 5, 3)), np.zeros((5, 4, 2), np.float32))
    with pytest.raises(flow.FlowError):
        flow.warp_torch(torch.zeros(1, 3, 4, 5), torch.zeros(1, 2, 4, 6))
    with pytest.raises(flow.FlowError):
        flow.warp_torch(torch.zeros(3, 4, 5), torch.zeros(2, 4, 5))
