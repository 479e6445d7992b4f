"""Loss terms against plain reference computations, and their gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from videostyle.frame.losses import (TV_REFERENCE_PIXELS, ContentLoss, StyleLoss, TemporalLoss, TVLoss, gatys_terms,
                               gram_matrix, layer_shares, masked_style_terms, total_variation)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _rand(*shape, seed=0, dtype=torch.float64):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _gram_reference(f: np.ndarray) -> np.ndarray:
    b, c, h, w = f.shape
    out = np.zeros((b, c, c))
    for n in range(b):
        for i in range(c):
            for j in range(c):
                out[n, i, j] = np.sum(f[n, i] * f[n, j]) / (c * h * w)
    return out


def test_gram_matrix_matches_loops_in_both_memory_layouts():
    f = _rand(2, 3, 4, 5)
    expected = _gram_reference(f.numpy())
    np.testing.assert_allclose(gram_matrix(f).numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(gram_matrix(f.contiguous(memory_format=torch.channels_last)).numpy(), expected,
                               rtol=1e-12)


def test_gram_matrix_gradient():
    f = _rand(1, 3, 3, 4).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: (gram_matrix(t) * _rand(1, 3, 3, seed=5)).sum(), (f,))
    cl = _rand(1, 3, 3, 4, seed=1).contiguous(memory_format=torch.channels_last).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: (gram_matrix(t) ** 2).sum(), (cl,))


def test_gram_of_bfloat16_features_is_float32_of_the_same_values():
    f = _rand(1, 8, 6, 6, dtype=torch.float32).to(torch.bfloat16)
    g = gram_matrix(f)
    assert g.dtype == torch.float32
    torch.testing.assert_close(g, gram_matrix(f.float()))


def test_gram_gradient_of_bfloat16_features_matches_float32():
    f32 = _rand(1, 8, 6, 5, dtype=torch.float32).contiguous(memory_format=torch.channels_last)
    weight = _rand(1, 8, 8, seed=3, dtype=torch.float32)
    grads = []
    for f in (f32.clone(), f32.to(torch.bfloat16)):
        f.requires_grad_()
        (gram_matrix(f) * weight).sum().backward()
        assert f.grad.dtype == f.dtype and f.grad.is_contiguous(memory_format=torch.channels_last)
        grads.append(f.grad.float())
    torch.testing.assert_close(grads[1], grads[0], rtol=2e-2, atol=1e-3)


def test_content_loss_is_weighted_mean_squared_difference(device):
    x, target = _rand(1, 4, 3, 3), _rand(1, 4, 3, 3, seed=1)
    loss = ContentLoss("relu4_2", target.to(device), weight=5.0)
    assert loss.kind == "content" and loss.source == "relu4_2"
    expected = 5.0 * np.mean((x.numpy() - target.numpy()) ** 2)
    assert float(loss(x.to(device))) == pytest.approx(expected, rel=1e-12)
    assert torch.autograd.gradcheck(loss, (x.to(device).requires_grad_(),))


def test_style_loss_is_weighted_mean_squared_gram_difference(device):
    x, style = _rand(1, 3, 4, 4), _rand(1, 3, 5, 6, seed=2)
    target = torch.from_numpy(_gram_reference(style.numpy()))
    loss = StyleLoss("relu1_1", target.to(device), weight=100.0)
    expected = 100.0 * np.mean((_gram_reference(x.numpy()) - target.numpy()) ** 2)
    assert float(loss(x.to(device))) == pytest.approx(expected, rel=1e-10)
    assert torch.autograd.gradcheck(loss, (x.to(device).requires_grad_(),))


def test_a_float64_target_is_compared_in_the_features_precision(device):
    # the network's features are float32 (or narrower); a target built in float64 must not make
    # the loss float64 (CUDA's backward refuses the mix)
    features = _rand(1, 3, 4, 4, dtype=torch.float32).to(device).requires_grad_()
    target = gram_matrix(_rand(1, 3, 5, 6, seed=2)).to(device)
    for term in (StyleLoss("relu1_1", target, 100.0), TemporalLoss(_rand(1, 3, 4, 4).to(device),
                                                                   _rand(4, 4).to(device), 1.0)):
        loss = term(features)
        assert loss.dtype == torch.float32
        loss.backward()
        assert features.grad.dtype == torch.float32 and torch.isfinite(features.grad).all()
        features.grad = None


def test_tv_loss_is_half_sum_of_squared_neighbour_differences_per_reference_image():
    x = _rand(1, 3, 4, 5) * 255
    a = x.numpy()[0]
    total = 0.0
    for c in range(3):
        for i in range(4):
            for j in range(5):
                if j + 1 < 5:
                    total += (a[c, i, j + 1] - a[c, i, j]) ** 2
                if i + 1 < 4:
                    total += (a[c, i + 1, j] - a[c, i, j]) ** 2
    assert float(total_variation(x)) == pytest.approx(0.5 * total, rel=1e-12)
    loss = TVLoss(1e-3)
    assert float(loss(x)) == pytest.approx(1e-3 * 0.5 * total * TV_REFERENCE_PIXELS / 20, rel=1e-12)
    assert torch.autograd.gradcheck(loss, (x.clone().requires_grad_(),))


def test_temporal_mse_is_per_pixel_weighted(device):
    x, target = _rand(1, 3, 4, 5) * 255, _rand(1, 3, 4, 5, seed=3) * 255
    weights = _rand(4, 5, seed=4)
    weights[0, 0] = 0.0
    loss = TemporalLoss(target.to(device), weights.to(device), weight=500.0, criterion="mse")
    expected = 500.0 * np.mean(weights.numpy()[None] * (x.numpy()[0] - target.numpy()[0]) ** 2)
    x = x.to(device)
    assert float(loss(x)) == pytest.approx(expected, rel=1e-12)
    assert torch.autograd.gradcheck(loss, (x.clone().requires_grad_(),))
    # a pixel with weight 0 gets no gradient
    xg = x.clone().requires_grad_()
    loss(xg).backward()
    assert torch.all(xg.grad[0, :, 0, 0] == 0) and torch.all(xg.grad[0, :, 1, 1] != 0)


def test_temporal_smoothl1_follows_the_authors_formulation():
    x, target = _rand(1, 3, 3, 3) * 4, _rand(1, 3, 3, 3, seed=6) * 4
    weights = _rand(3, 3, seed=7)
    loss = TemporalLoss(target, weights, weight=2.0, criterion="smoothl1")
    d = np.sqrt(weights.numpy())[None] * (x.numpy()[0] - target.numpy()[0])
    huber = np.where(np.abs(d) < 1, 0.5 * d ** 2, np.abs(d) - 0.5)
    assert float(loss(x)) == pytest.approx(2.0 * huber.mean(), rel=1e-12)
    assert torch.autograd.gradcheck(loss, (x.clone().requires_grad_(),))


def test_unknown_criterion_is_rejected():
    with pytest.raises(ValueError, match="criterion"):
        TemporalLoss(_rand(1, 3, 2, 2), _rand(2, 2), 1.0, criterion="l3")


def test_normalized_gradient_has_l1_norm_equal_to_weight():
    x, target = _rand(1, 4, 3, 3), _rand(1, 4, 3, 3, seed=1)
    for loss in (ContentLoss("relu4_2", target, 5.0, normalize_gradients=True),
                 StyleLoss("relu1_1", gram_matrix(target), 7.0, normalize_gradients=True)):
        xg = x.clone().requires_grad_()
        loss(xg).backward()
        assert float(xg.grad.abs().sum()) == pytest.approx(loss.weight, rel=1e-6)
        # same direction as the plain gradient
        plain = type(loss)(loss.source, loss.target, loss.weight)
        xp = x.clone().requires_grad_()
        plain(xp).backward()
        cos = float((xg.grad * xp.grad).sum() / (xg.grad.norm() * xp.grad.norm()))
        assert cos == pytest.approx(1.0, abs=1e-9)


def test_gatys_terms_split_weights_evenly_over_layers():
    feats = {"relu4_2": _rand(1, 2, 2, 2)}
    grams = {name: gram_matrix(_rand(1, 2, 2, 2, seed=i)) for i, name in enumerate(["relu1_1", "relu2_1", "relu3_1",
                                                                                   "relu4_1"])}
    terms = gatys_terms(feats, grams, content_weight=5.0, style_weight=100.0, tv_weight=1e-3)
    by_kind = {}
    for term in terms:
        by_kind.setdefault(term.kind, []).append(term.weight)
    assert by_kind == {"content": [5.0], "style": [25.0] * 4, "tv": [1e-3]}
    assert [t.kind for t in gatys_terms(feats, grams, content_weight=0, style_weight=1, tv_weight=0)] == ["style"] * 4
    # exactly the paper's weight / |L| (not weight · (1/|L|), which differs in the last bit for 3 layers)
    three = dict(list(grams.items())[:3])
    weights = [t.weight for t in gatys_terms({}, three, content_weight=0, style_weight=100.0, tv_weight=0)]
    assert weights == [100.0 / 3] * 3


def _style_and_content(terms, features):
    return {kind: float(sum(t(features[t.source]) for t in terms if t.kind == kind)) for kind in ("style", "content")}


def test_gram_normalisation_makes_the_weights_independent_of_the_paintings_scale():
    # A painting whose features are k times larger has Grams k² larger: under `paper` its style
    # term (and its pull) is k⁴ stronger at the same weight; under `gram` nothing changes.
    feats, style, x = _rand(1, 4, 3, 3), _rand(1, 4, 5, 5, seed=1), _rand(1, 4, 3, 3, seed=2)
    for k in (0.1, 7.0):
        terms = {norm: [gatys_terms({"relu4_2": c * feats}, {"relu1_1": gram_matrix(c * style)}, content_weight=5.0,
                                    style_weight=100.0, tv_weight=0.0, normalization=norm) for c in (1.0, k)]
                 for norm in ("paper", "gram")}
        gram = [_style_and_content(t, {"relu4_2": c * x, "relu1_1": c * x}) for t, c in zip(terms["gram"], (1.0, k))]
        paper = [_style_and_content(t, {"relu4_2": c * x, "relu1_1": c * x}) for t, c in zip(terms["paper"], (1.0, k))]
        assert gram[1]["style"] == pytest.approx(gram[0]["style"], rel=1e-9)
        assert gram[1]["content"] == pytest.approx(gram[0]["content"], rel=1e-9)
        assert paper[1]["style"] == pytest.approx(k**4 * paper[0]["style"], rel=1e-9)
        assert paper[1]["content"] == pytest.approx(k**2 * paper[0]["content"], rel=1e-9)


def test_gram_normalised_terms_score_their_weight_for_an_image_with_no_features():
    grams = {"relu1_1": gram_matrix(_rand(1, 3, 4, 4, seed=1)), "relu2_1": gram_matrix(_rand(1, 5, 2, 2, seed=2) * 40)}
    feats = {"relu4_2": _rand(1, 2, 2, 2) * 300}
    terms = gatys_terms(feats, grams, content_weight=2.0, style_weight=10.0, tv_weight=0.0, normalization="gram",
                        style_layer_weights={"relu1_1": 1.0, "relu2_1": 3.0})
    zeros = {name: torch.zeros(shape, dtype=torch.float64)
             for name, shape in (("relu1_1", (1, 3, 4, 4)), ("relu2_1", (1, 5, 2, 2)), ("relu4_2", (1, 2, 2, 2)))}
    per_layer = {t.source: float(t(zeros[t.source])) for t in terms}
    assert per_layer == pytest.approx({"relu1_1": 2.5, "relu2_1": 7.5, "relu4_2": 2.0}, rel=1e-9)
    # masked terms: each region by its own style's Gram, times the region's share
    half = torch.zeros(1, 1, 4, 4)
    half[..., :2] = 1
    masked = masked_style_terms([grams], [half], style_weight=10.0, normalization="gram",
                                style_layer_weights={"relu1_1": 1.0, "relu2_1": 3.0})
    assert {t.source: t.weight / t.scale * float(grams[t.source].square().mean()) for t in masked} == pytest.approx(
        {"relu1_1": 1.25, "relu2_1": 3.75}, rel=1e-6)


def test_gram_normalised_pixel_terms_are_per_pixel_in_unit_range():
    x, target = _rand(1, 3, 4, 5) * 255, _rand(1, 3, 4, 5, seed=3) * 255
    weights = _rand(4, 5, seed=4)
    paper, gram = (TemporalLoss(target, weights, weight=7.0, normalization=n) for n in ("paper", "gram"))
    assert float(gram(x)) == pytest.approx(7.0 * np.mean(weights.numpy()[None] * ((x - target).numpy()[0] / 255) ** 2),
                                           rel=1e-12)
    assert float(paper(x)) == pytest.approx(float(gram(x)) * 255**2, rel=1e-12)
    tv = TVLoss(2.0, "gram")
    d = (x / 255).numpy()[0]
    mean_half_squares = 0.5 * (np.sum(np.diff(d, axis=2) ** 2) + np.sum(np.diff(d, axis=1) ** 2)) / d.size
    assert float(tv(x)) == pytest.approx(2.0 * mean_half_squares, rel=1e-12)
    with pytest.raises(ValueError, match="normalization"):
        TVLoss(1.0, "unit")


def test_layer_shares_are_the_one_layer_weighting():
    assert layer_shares(["a", "b", "c", "d"]) == {"a": 0.25, "b": 0.25, "c": 0.25, "d": 0.25}
    assert layer_shares(["a", "b"], {"a": 1.0, "b": 3.0, "z": 5.0}) == {"a": 0.25, "b": 0.75}  # z: not used
    with pytest.raises(ValueError, match="no layer weight for c"):
        layer_shares(["a", "b", "c"], {"a": 1.0, "b": 3.0})
    # gatys_terms splits the style weight by those shares; a layer weighted 0 has no term
    grams = {n: gram_matrix(_rand(1, 2, 2, 2, seed=i)) for i, n in enumerate(["relu1_1", "relu2_1", "relu3_1"])}
    terms = gatys_terms({}, grams, content_weight=0.0, style_weight=8.0, tv_weight=0.0,
                         style_layer_weights={"relu1_1": 1, "relu2_1": 0, "relu3_1": 3})
    assert {t.source: t.weight for t in terms} == {"relu1_1": 2.0, "relu3_1": 6.0}


class _TinyEncoder(nn.Module):
    """A stand-in for VGG: two random conv layers with named ReLU outputs."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1, stride=2)

    def forward(self, x):
        a = torch.relu(self.conv1(x))
        return {"relu1_1": a, "relu2_1": torch.relu(self.conv2(a))}


def test_full_objective_gradient_through_a_stand_in_encoder():
    encoder = _TinyEncoder().double()
    content, style = _rand(1, 3, 6, 6, seed=8), _rand(1, 3, 6, 6, seed=9)
    with torch.no_grad():
        grams = {k: gram_matrix(v) for k, v in encoder(style).items()}
        feats = {"relu2_1": encoder(content)["relu2_1"]}
    terms = gatys_terms(feats, grams, content_weight=5.0, style_weight=100.0, tv_weight=1e-3)

    def objective(x):
        out = encoder(x)
        return sum(t(x if t.source == "pixels" else out[t.source]) for t in terms)

    x = _rand(1, 3, 6, 6, seed=10).requires_grad_()
    assert torch.autograd.gradcheck(objective, (x,), fast_mode=True)
