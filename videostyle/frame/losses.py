"""Loss terms of the Gatys / Ruder objective, and the normalisation that gives the weights meaning.

Conventions
-----------
* The image ``x`` being optimised is RGB pixels in 0..255, tensor B,3,H,W float32. This is the
  authors' Caffe input space (BGR, 0..255, minus the mean pixel) up to channel order and a constant
  shift, neither of which the pixel losses (TV, temporal) can see; the VGG losses see exactly the
  authors' input because :class:`videostyle.frame.vgg.VGGFeatures` converts pixels to it.
* ``F`` is a VGG activation B,C,h,w with ``N = C·h·w`` elements per image.

Normalisation: two, chosen by the ``normalization`` setting (``[style]`` in TOML,
``--loss-normalization``). Layer weights ``w_l`` come from one place, :func:`layer_shares`
(``style_layer_weights``, scaled to sum 1; equal, Gatys et al.'s 1/|L|, when not given).

``paper`` (the authors' scales, every term a mean, so the weights balance whatever the image size)
-------------------------------------------------------------------------------------------------
=========  ===================================================================================
content    ``w_c · mean_l mean((F_l(x) − F_l(c))²)``: MSE over the N elements of each content
           layer, averaged over the content layers (one, ``relu4_2``, by default)
style      ``w_s · Σ_l w_l mean((G_l(x) − A_l)²)``, ``G = F Fᵀ / N`` (C×C, MSE over the C² entries);
           ``A_l`` is the style image's Gram, or the blend-weighted sum of several styles' Grams
TV         ``w_tv · ½ Σ [(x[i,j+1] − x[i,j])² + (x[i+1,j] − x[i,j])²] · 512²/(H·W)``: the authors'
           squared TV in 0..255 units, summed over pixels and channels, expressed per 512×512 image
temporal   ``w_t · mean(c · (x − ω)²)`` (``mse``) or ``w_t · mean(smoothl1(√c·x − √c·ω))``
           (``smoothl1``), per warped target ω with per-pixel weights c in [0, 1]; the mean runs
           over all B·3·H·W elements, so unreliable pixels dilute the term (the authors' code)
=========  ===================================================================================

Under ``paper`` a style weight's strength follows the painting: ``mean(A_l²)`` at 128 px ranges
from 7.6e4 (seated-nude) to 7.6e5 (woman-with-hat-matisse) over the seven reference paintings,
and within a painting from ~300 (relu1_1, relu5_1) to ~1e6 (relu4_1), so equal layer weights are
in effect relu4_1 alone.

``gram`` (one set of weights for every painting, photo and size)
-----------------------------------------------------------------
Each term above is divided by a scale (``LossTerm.scale``) that makes it dimensionless:

=========  ===================================================================================
content    by ``mean(F_l(c)²)`` of its target: 1 = an image with no features at all
style      each layer by ``mean(A_l²)`` of its own target Gram (a masked region's by its style's),
           so a perfect mismatch scores ``w_s · w_l`` on every painting (the relative squared
           distance ``‖G − A‖²/‖A‖²``, the square of what ``eval``'s style distance averages)
TV         by ``3 · 512² · 255²``: ``½(dx² + dy²)`` per pixel and channel in 0..1 units
temporal   by ``255²``: per pixel and channel in 0..1 units (the same on every clip and painting)
=========  ===================================================================================

The shipped presets other than ``paper`` use ``gram``, with weights converted from the paper's
so that they keep the balance they had where they were tuned (``benchmarks/balance_bench.py``).
The optimiser sees a ``gram`` objective times :data:`OBJECTIVE_SCALE` (torch's L-BFGS is not
scale-invariant); reports show the terms as defined here.

How it was chosen (by looking at outputs: tubingen.jpg with starry_night.jpg and the_scream.jpg,
256 px, L-BFGS from the authors' noise init). Two departures from the authors' code
(neural-style / artistic-videos), whose terms are the ones above except that they *sum* the style
layers and *sum* TV over the image:

* (``paper``) Summed style layers with the paper's style weight 100 wipe the content out: after 100 iterations
  the scene was unrecognisable swirls (content distance 1.15, i.e. the relu4_2 features farther
  from the photo's than the photo's own norm); after 500 the tower and a few façades had emerged
  (0.99). Averaging the five layers (= summing at weight 20) gives, with the same 5 / 100, Van
  Gogh's strokes and palette all over with the houses, tower and river recognisable at 100
  iterations (content distance 0.86, style loss 43x below the photo's own) and clearer at 500
  (0.80, 38x); The Scream's orange-blue swirls over a recognisable town at 100 (0.66, 12x).
* The authors' TV is a sum while content and style are means, so the per-pixel pull of TV relative
  to the others grows with the pixel count: at 256 px their 1e-3 is 4x weaker than at the 512 px
  they worked at, and small results show fine colour grain. Scaling TV to a 512×512 image keeps
  the paper's 1e-3 at the strength it had for the authors, at every size.

Temporal weights keep the authors' meaning against content (both per-pixel means); against the
style term they are 5x stronger than in the authors' code because of the layer averaging.

Gradient normalisation (``normalize_gradients``, the authors' option): each term's gradient with
respect to its own input (the layer's features, or the image) is divided by its L1 norm before it
is scaled by the term's weight, so each term's total pull is its weight, whatever its scale.

Numerics: Gram matrices and criteria are evaluated in float32 (float64 stays float64) even when
the network ran in bfloat16/float16, with autocast disabled around them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as nnf
from torch import nn

from videostyle.config import LOSS_NORMALIZATIONS as NORMALIZATIONS
from videostyle.config import TEMPORAL_CRITERIA as CRITERIA

PIXELS = "pixels"  # source name of terms computed on the image itself
# TV is expressed per image of this many pixels (the authors' usual working size, 512x512).
TV_REFERENCE_PIXELS = 512 * 512
PIXEL_RANGE = 255.0  # pixels are 0..255; ``gram`` measures pixel terms in 0..1 units
# What the optimiser multiplies the objective by (videostyle.frame.optimize): ``gram`` terms are of order
# 1-100 where ``paper``'s are 1e6-1e7, and torch's L-BFGS is not scale-invariant (from the
# authors' noise start a gram objective did not move in 30 iterations). 1e6 puts the presets'
# gram objective where the paper's was, so L-BFGS takes the same path for the same balance.
OBJECTIVE_SCALE = {"paper": 1.0, "gram": 1e6}


def _accurate(x: torch.Tensor) -> torch.Tensor:
    """``x`` in at least float32 (float64 stays float64, for gradcheck)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


class _Gram(torch.autograd.Function):
    """``F Fᵀ / N`` for B,C,h,w features, computed in float32 (or wider), with a one-matmul backward.

    Autograd's generic backward of ``F @ Fᵀ`` does two batched matmuls; because both operands are
    the same tensor, ``dF = (dG + dGᵀ) F / N`` needs one. For bfloat16/float16 features that one
    runs in their own precision (accumulating in float32 inside oneDNN/cuBLAS): its result is
    rounded to that precision anyway on its way back through the network. The Gram is ~20% of an
    iteration on CPU.
    """

    @staticmethod
    def forward(ctx, features: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        b, c, h, w = features.shape
        ctx.save_for_backward(features)
        # h·w × c per image: a view for channels_last input, a copy otherwise.
        m = _accurate(features).permute(0, 2, 3, 1).reshape(b, h * w, c)
        return torch.bmm(m.transpose(1, 2), m) / (c * h * w)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (features,) = ctx.saved_tensors
        b, c, h, w = features.shape
        m = features.permute(0, 2, 3, 1).reshape(b, h * w, c)
        sym = (grad + grad.transpose(1, 2)) / (c * h * w)
        dm = torch.bmm(m, sym.to(m.dtype))  # b, h·w, c
        out = dm.reshape(b, h, w, c).permute(0, 3, 1, 2)
        return out if features.is_contiguous(memory_format=torch.channels_last) else out.contiguous()


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """Gram matrix ``G = F Fᵀ / (C·h·w)`` of B,C,h,w features -> B,C,C, in float32 or wider."""
    if features.dim() != 4:
        raise ValueError(f"gram_matrix expects B,C,H,W features, got shape {tuple(features.shape)}")
    with torch.autocast(features.device.type, enabled=False):
        return _Gram.apply(features)


def total_variation(pixels: torch.Tensor) -> torch.Tensor:
    """``½ Σ (horizontal differences² + vertical differences²)`` over B,C,H,W, in float32 or wider."""
    x = _accurate(pixels)
    dx = x[..., :, 1:] - x[..., :, :-1]
    dy = x[..., 1:, :] - x[..., :-1, :]
    return 0.5 * (dx.square().sum() + dy.square().sum())


def criterion(name: str, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean elementwise criterion: ``mse`` or ``smoothl1`` (Huber with beta 1, as Torch7's)."""
    if name == "mse":
        return nnf.mse_loss(prediction, target)
    if name == "smoothl1":
        return nnf.smooth_l1_loss(prediction, target, beta=1.0)
    raise ValueError(f"unknown criterion {name!r}; choose one of {', '.join(CRITERIA)}")


class _NormalizeGradient(torch.autograd.Function):
    """Identity forward; backward divides the gradient by its L1 norm and scales it by ``weight``.

    The incoming gradient already carries the term's weight, so after the L1 division it is put
    back: the result is ``weight · g / |g|₁`` as in the authors' modules.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: float) -> torch.Tensor:  # type: ignore[override]
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        norm = grad.abs().sum(dtype=torch.float32)
        return grad / (norm + 1e-8) * ctx.weight, None


class LossTerm(nn.Module, ABC):
    """One weighted term of the objective, reading one named input.

    ``source`` is the VGG layer it reads (``relu4_2`` ...) or ``"pixels"`` for the image; ``kind``
    groups terms for reporting (``content``, ``style``, ``tv``, ``temporal``).
    """

    kind = "term"

    def __init__(self, source: str, weight: float, normalize_gradients: bool = False, scale: float = 1.0) -> None:
        super().__init__()
        self.source = source
        self.weight = float(weight)
        self.normalize_gradients = normalize_gradients
        self.scale = float(scale)  # the value's divisor under the normalisation (see normalizing_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalize_gradients and x.requires_grad:
            x = _NormalizeGradient.apply(x, self.weight)
        return self.weight * self.value(x) / self.scale

    @abstractmethod
    def value(self, x: torch.Tensor) -> torch.Tensor:
        """The unweighted term."""


class TargetLoss(LossTerm):
    """``weight · criterion(√m ⊙ transform(x), √m ⊙ target)``: the base of content, style, temporal.

    It owns the target (in ``transform``'s output space, float32) and the optional per-element
    weights ``mask`` in [0, 1], broadcastable to the target. The square root makes the mse case
    exactly ``mean(m · (transform(x) − target)²)`` (the authors' WeightedContentLoss).
    """

    def __init__(self, source: str, target: torch.Tensor, weight: float, *, mask: torch.Tensor | None = None,
                 criterion: str = "mse", normalize_gradients: bool = False, scale: float = 1.0) -> None:
        super().__init__(source, weight, normalize_gradients, scale)
        if criterion not in CRITERIA:
            raise ValueError(f"unknown criterion {criterion!r}; choose one of {', '.join(CRITERIA)}")
        self.criterion = criterion
        target = _accurate(target.detach())
        if mask is None:
            self.root_mask = None
        else:
            root = _accurate(mask.detach()).clamp(0.0, 1.0).sqrt()
            self.register_buffer("root_mask", root)
            target = target * root
        self.register_buffer("target", target)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return _accurate(x)

    def value(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            y = self.transform(x)
            # In y's dtype: a float64 target or mask would make the loss float64 (and CUDA's
            # backward refuses the mix).
            if self.root_mask is not None:
                y = y * self.root_mask.to(y.dtype)
            return criterion(self.criterion, y, self.target.to(y.dtype).expand_as(y))


class ContentLoss(TargetLoss):
    """Mean squared difference of a layer's features to the content image's."""

    kind = "content"

    def __init__(self, layer: str, target: torch.Tensor, weight: float, normalize_gradients: bool = False,
                 scale: float = 1.0) -> None:
        super().__init__(layer, target, weight, normalize_gradients=normalize_gradients, scale=scale)


class StyleLoss(TargetLoss):
    """Mean squared difference of a layer's Gram matrix to the target Gram (B or 1,C,C)."""

    kind = "style"

    def __init__(self, layer: str, target_gram: torch.Tensor, weight: float,
                 normalize_gradients: bool = False, scale: float = 1.0) -> None:
        super().__init__(layer, target_gram, weight, normalize_gradients=normalize_gradients, scale=scale)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return gram_matrix(x)


def masked_gram(features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Gram matrix of the features inside a region (Gatys et al. 2017): each position counts by its
    mask value m in [0, 1], ``G = Σ_p m_p f_p f_pᵀ / (C · Σ_p m_p)``, so a mask of ones gives
    :func:`gram_matrix` and soft edges share a position between the regions on both sides.
    ``mask`` is B or 1,1,H,W at any size: it is area-resized to the features' h×w."""
    h, w = features.shape[-2:]
    with torch.autocast(features.device.type, enabled=False):
        m = _accurate(mask)
        if m.shape[-2:] != (h, w):
            m = nnf.interpolate(m, size=(h, w), mode="area")
        area = m.sum(dim=(-2, -1)).clamp_min(1e-8)  # B,1
        weighted = _accurate(features) * m.sqrt()
        return _Gram.apply(weighted) * (h * w) / area[..., None]


class MaskedStyleLoss(StyleLoss):
    """A style term over one region: the masked Gram (see :func:`masked_gram`) against that
    region's style. Weight it by the region's share of the frame, so each of its pixels is pulled
    towards its style as strongly as an unmasked term pulls every pixel."""

    def __init__(self, layer: str, target_gram: torch.Tensor, weight: float, mask: torch.Tensor,
                 normalize_gradients: bool = False, scale: float = 1.0) -> None:
        super().__init__(layer, target_gram, weight, normalize_gradients, scale)
        self.register_buffer("region", mask.detach())

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return masked_gram(x, self.region)


class TemporalLoss(TargetLoss):
    """Per-pixel weighted difference of the image to a warped earlier result (Ruder et al.).

    ``target`` is the warped image B or 1,3,H,W in 0..255; ``weights`` 1,1,H,W (or H,W) in [0, 1],
    1 = reliable.
    """

    kind = "temporal"

    def __init__(self, target: torch.Tensor, weights: torch.Tensor, weight: float, criterion: str = "mse",
                 normalize_gradients: bool = False, normalization: str = "paper") -> None:
        if weights.dim() == 2:
            weights = weights[None, None]
        super().__init__(PIXELS, target, weight, mask=weights, criterion=criterion,
                         normalize_gradients=normalize_gradients, scale=pixel_scale(normalization, "temporal"))


class TVLoss(LossTerm):
    """Total variation of the image per 512×512 pixels; smooths grain and checkerboards."""

    kind = "tv"

    def __init__(self, weight: float, normalization: str = "paper") -> None:
        super().__init__(PIXELS, weight, scale=pixel_scale(normalization, "tv"))

    def value(self, x: torch.Tensor) -> torch.Tensor:
        return total_variation(x) * (TV_REFERENCE_PIXELS / (x.shape[-2] * x.shape[-1]))


def check_normalization(name: str) -> None:
    if name not in NORMALIZATIONS:
        raise ValueError(f"unknown loss normalization {name!r}; choose one of {', '.join(NORMALIZATIONS)}")


def normalizing_scale(normalization: str, target: torch.Tensor) -> float:
    """What a feature term (content features, or a style Gram) is divided by: 1 under ``paper``,
    the target's mean square under ``gram`` (so a result with no features at all scores 1)."""
    check_normalization(normalization)
    if normalization == "paper":
        return 1.0
    return max(float(_accurate(target.detach()).square().mean()), 1e-12)


def pixel_scale(normalization: str, kind: str) -> float:
    """What a pixel term (``tv``, ``temporal``) is divided by: 1 under ``paper``; under ``gram``
    what makes it a mean per pixel and channel in 0..1 image units (TV: of ½(dx² + dy²))."""
    check_normalization(normalization)
    if normalization == "paper":
        return 1.0
    if kind == "tv":
        return 3 * TV_REFERENCE_PIXELS * PIXEL_RANGE**2
    return PIXEL_RANGE**2


def layer_shares(layers: Sequence[str], weights: Mapping[str, float] | None = None) -> dict[str, float]:
    """Each layer's share of its term's weight: ``weights`` (by layer name; others ignored) of
    ``layers`` scaled to sum 1, or equal shares when there are none (Gatys et al.'s w_l = 1/|L|).
    The one place layers are weighted."""
    raw, total = _layer_parts(layers, weights)
    return {layer: w / total for layer, w in raw.items()}


def _layer_parts(layers: Sequence[str], weights: Mapping[str, float] | None) -> tuple[dict[str, float], float]:
    layers = list(dict.fromkeys(layers))
    if not weights:
        return {layer: 1.0 for layer in layers}, float(len(layers))
    missing = [layer for layer in layers if layer not in weights]
    if missing:
        raise ValueError(f"no layer weight for {', '.join(missing)}")
    total = float(sum(weights[layer] for layer in layers))
    if total <= 0:
        raise ValueError(f"the weights of {', '.join(layers)} are all zero")
    return {layer: float(weights[layer]) for layer in layers}, total


def feature_weights(targets: Mapping[str, torch.Tensor], weight: float, normalization: str,
                    layer_weights: Mapping[str, float] | None = None) -> dict[str, tuple[float, float]]:
    """(weight, scale) of each target layer's term: the term's weight times the layer's share (see
    :func:`layer_shares`; computed as ``weight · w_l / Σw``, so equal shares give exactly the
    paper's ``weight / |L|``), and the normalisation's divisor for that layer's target. Layers
    weighted 0 are left out."""
    raw, total = _layer_parts(list(targets), layer_weights)
    return {layer: (weight * raw[layer] / total, normalizing_scale(normalization, targets[layer]))
            for layer in targets if raw[layer] > 0}


def gatys_terms(content_features: dict[str, torch.Tensor], style_grams: dict[str, torch.Tensor], *,
                content_weight: float, style_weight: float, tv_weight: float,
                normalize_gradients: bool = False, normalization: str = "paper",
                style_layer_weights: Mapping[str, float] | None = None) -> list[LossTerm]:
    """Content, style and TV terms with the chosen normalisation (see the module doc).

    ``content_features``: target features per content layer (weighted equally); ``style_grams``:
    target Gram per style layer, weighted by ``style_layer_weights`` (see :func:`layer_shares`).
    Terms with weight 0 are left out.
    """
    terms: list[LossTerm] = []
    if content_weight > 0 and content_features:
        terms += [ContentLoss(layer, content_features[layer], w, normalize_gradients, scale)
                  for layer, (w, scale) in feature_weights(content_features, content_weight, normalization).items()]
    if style_weight > 0 and style_grams:
        terms += [StyleLoss(layer, style_grams[layer], w, normalize_gradients, scale)
                  for layer, (w, scale) in feature_weights(style_grams, style_weight, normalization,
                                                           style_layer_weights).items()]
    if tv_weight > 0:
        terms.append(TVLoss(tv_weight, normalization))
    return terms


def masked_style_terms(style_grams: list[dict[str, torch.Tensor]], masks: list[torch.Tensor], *,
                       style_weight: float, normalize_gradients: bool = False, normalization: str = "paper",
                       style_layer_weights: Mapping[str, float] | None = None) -> list[LossTerm]:
    """One style term per style image and layer, each over its own region (masks 1,1,H,W in
    [0, 1]), weighted by the region's share of the frame (and normalised by that style's own
    Gram under ``gram``); a style whose region is empty here has no term."""
    terms: list[LossTerm] = []
    for grams, mask in zip(style_grams, masks):
        share = float(mask.mean())
        if style_weight <= 0 or share <= 0 or not grams:
            continue
        terms += [MaskedStyleLoss(layer, grams[layer], w, mask, normalize_gradients, scale)
                  for layer, (w, scale) in feature_weights(grams, style_weight * share, normalization,
                                                           style_layer_weights).items()]
    return terms
