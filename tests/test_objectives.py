"""The three kinds of a frame's objective, on tiny tensors with a stand-in network (no VGG)."""

from __future__ import annotations

import pytest
import torch

from videostyle.config import StyleSettings
from videostyle.frame.losses import TVLoss, gram_matrix
from videostyle.frame.objectives import KINDS, masked_objective, sum_terms, tiled_objective, whole_objective
from videostyle.frame.tiles import plan_tiles

SETTINGS = StyleSettings(style_layers=("relu1_1",), content_layers=("relu1_1",), content_weight=2.0,
                         style_weight=3.0, tv_weight=0.5, normalization="gram")


def features(pixels: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"relu1_1": pixels}


def doubled(pixels: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"relu1_1": 2 * pixels}


@pytest.fixture
def images() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return torch.rand((1, 3, 8, 8), generator=generator) * 255, torch.rand((1, 3, 8, 8), generator=generator) * 255


def test_sums_have_every_kind_even_without_terms(images) -> None:
    x, _ = images
    sums = sum_terms([], {}, x)
    assert list(sums) == list(KINDS) and all(float(v) == 0.0 for v in sums.values())


def test_the_whole_objective_reads_its_network_and_another_one(images) -> None:
    x, content = images
    style = {"relu1_1": gram_matrix(content.flip(-1) * 0.5)}
    objective = whole_objective(features, SETTINGS, {"relu1_1": content}, style, None, [])
    assert [t.kind for t in objective.terms] == ["content", "style", "tv"]
    sums = objective(x)
    by_hand = sum_terms(objective.terms, features(x), x)
    assert all(torch.equal(sums[k], by_hand[k]) for k in KINDS)
    other = objective.in_network(doubled)(x)
    assert float(other["content"]) != pytest.approx(float(sums["content"]))
    assert torch.equal(other["tv"], sums["tv"])  # a pixel term reads no network


def test_the_masked_objective_pulls_each_region_to_its_own_style(images) -> None:
    x, content = images
    grams = [{"relu1_1": gram_matrix(content)}, {"relu1_1": gram_matrix(content.flip(-1))}]
    left = torch.zeros((1, 1, 8, 8))
    left[..., :4] = 1
    objective = masked_objective(features, SETTINGS, {"relu1_1": content}, grams, [left, 1 - left], None, [])
    style_terms = [t for t in objective.terms if t.kind == "style"]
    assert len(style_terms) == 2  # one per style image and layer, no blended one
    assert [t.weight for t in style_terms] == [pytest.approx(1.5), pytest.approx(1.5)]  # half the frame each
    empty = masked_objective(features, SETTINGS, {}, grams, [torch.ones((1, 1, 8, 8)), torch.zeros((1, 1, 8, 8))],
                             None, [])
    assert len([t for t in empty.terms if t.kind == "style"]) == 1  # an empty region has no term


def test_the_tiled_objective_keeps_pixel_terms_whole_and_matches_the_whole_frame(images) -> None:
    x, content = images
    style = {"relu1_1": gram_matrix(content.flip(-1))}
    whole = whole_objective(features, SETTINGS, {"relu1_1": content}, style, None, [])
    tiled = tiled_objective(features, SETTINGS, plan_tiles(8, 8, 4, 0), {"relu1_1": content}, style, None, [])
    assert [type(t) for t in tiled.terms] == [TVLoss]  # content and style live in the tiles
    expected, got = whole(x), tiled(x)
    for kind in KINDS:
        torch.testing.assert_close(got[kind], expected[kind], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(tiled.in_network(doubled)(x)["content"], whole.in_network(doubled)(x)["content"],
                               rtol=1e-5, atol=1e-6)
