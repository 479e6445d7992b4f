"""What one frame's optimisation minimises, in its three kinds: the whole frame, the frame with
style masks, and the frame in tiles.

Every kind is a list of terms over one loss base, :class:`~videostyle.frame.losses.TargetLoss`
(pystiche's habit: a term owns its target, its mask and its weight), summed by kind (content,
style, TV, temporal). The kinds differ only in which terms there are and how they read the VGG
features: whole and masked frames read one forward pass of the whole image; a tiled frame keeps
the pixel terms (TV, temporal) on the whole image and sums content and style over tiles
(:class:`~videostyle.frame.tiles.TiledFeatureLoss`). The targets come in computed (the
:class:`~videostyle.frame.stylize.Stylizer` owns the networks and caches them per frame size).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence

import torch

from videostyle.config import StyleSettings
from videostyle.frame.losses import PIXELS, LossTerm, feature_weights, gatys_terms, masked_style_terms
from videostyle.frame.tiles import Features, Tile, TiledFeatureLoss

# Loss kinds reported, in this order.
KINDS = ("content", "style", "tv", "temporal")


def sum_terms(terms: Sequence[LossTerm], feats: Mapping[str, torch.Tensor],
              pixels: torch.Tensor) -> dict[str, torch.Tensor]:
    """Weighted terms summed by kind, every kind present (zero when it has no term)."""
    sums = {kind: pixels.new_zeros(()) for kind in KINDS}
    for term in terms:
        sums[term.kind] = sums[term.kind] + term(pixels if term.source == PIXELS else feats[term.source])
    return sums


class Objective(ABC):
    """A frame's terms over the features of one network: called on pixels (1,3,H,W), the sums by
    kind as differentiable scalars."""

    def __init__(self, terms: Sequence[LossTerm], features: Features) -> None:
        self.terms = list(terms)
        self.features = features

    @abstractmethod
    def __call__(self, pixels: torch.Tensor) -> dict[str, torch.Tensor]: ...

    @abstractmethod
    def in_network(self, features: Features) -> Objective:
        """The same terms over another network's features (the float32 one: reports, and the
        optimiser's fallback where float16 overflows)."""


class WholeObjective(Objective):
    """Every term on the features of one forward pass of the whole frame."""

    def __call__(self, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        return sum_terms(self.terms, self.features(pixels), pixels)

    def in_network(self, features: Features) -> WholeObjective:
        return WholeObjective(self.terms, features)


class TiledObjective(Objective):
    """The pixel terms on the whole image, content and style summed over ``tiled``'s tiles (only
    one tile's activations are held at a time)."""

    def __init__(self, terms: Sequence[LossTerm], tiled: TiledFeatureLoss) -> None:
        super().__init__(terms, tiled.features)
        self.tiled = tiled

    def __call__(self, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        sums = sum_terms(self.terms, {}, pixels)
        content, style = self.tiled(pixels)
        sums["content"], sums["style"] = sums["content"] + content, sums["style"] + style
        return sums

    def in_network(self, features: Features) -> TiledObjective:
        return TiledObjective(self.terms, self.tiled.with_features(features))


class BatchObjective:
    """Several frames of one size, each with its own whole-frame objective, over one forward pass of
    their stacked pixels (N,3,H,W): each frame's terms read only its own slice of the features and
    of the pixels, so its value and gradient are those it has alone (VGG-19 treats the images of a
    batch independently) and N frames cost one network call. Called with the frames' pixels and
    which frames they are; returns each one's sums by kind."""

    def __init__(self, frames: Sequence[WholeObjective]) -> None:
        self.frames = list(frames)

    def __call__(self, pixels: torch.Tensor, which: Sequence[int]) -> list[dict[str, torch.Tensor]]:
        feats = self.frames[which[0]].features(pixels)
        return [sum_terms(self.frames[k].terms, {name: f[j:j + 1] for name, f in feats.items()}, pixels[j:j + 1])
                for j, k in enumerate(which)]

    def in_network(self, features: Features) -> BatchObjective:
        return BatchObjective([frame.in_network(features) for frame in self.frames])


def together(objectives: Sequence[Objective]) -> Callable[[torch.Tensor, Sequence[int]], list[dict[str, torch.Tensor]]]:
    """``objectives`` as the optimiser's several-frame objective (see
    :func:`videostyle.frame.optimize.optimize_frames`): one frame's as it is (any kind), several
    whole frames' in one network call (:class:`BatchObjective`)."""
    if len(objectives) == 1:
        one = objectives[0]
        return lambda pixels, which: [one(pixels)]
    if not all(isinstance(o, WholeObjective) for o in objectives):
        raise ValueError("frames in tiles are optimised one at a time")
    return BatchObjective([o for o in objectives if isinstance(o, WholeObjective)])


def whole_objective(features: Features, settings: StyleSettings, content_targets: dict[str, torch.Tensor],
                    style_targets: dict[str, torch.Tensor], layer_weights: Mapping[str, float] | None,
                    temporal: Sequence[LossTerm]) -> WholeObjective:
    """Gatys et al.'s content, style and TV terms, plus the ``temporal`` ones: content features
    and the (blended) style Gram per layer as targets."""
    s = settings
    terms = gatys_terms(content_targets, style_targets, content_weight=s.content_weight,
                        style_weight=s.style_weight, tv_weight=s.tv_weight,
                        normalize_gradients=s.normalize_gradients, normalization=s.normalization,
                        style_layer_weights=layer_weights)
    return WholeObjective([*terms, *temporal], features)


def masked_objective(features: Features, settings: StyleSettings, content_targets: dict[str, torch.Tensor],
                     style_grams: list[dict[str, torch.Tensor]], masks: list[torch.Tensor],
                     layer_weights: Mapping[str, float] | None, temporal: Sequence[LossTerm]) -> WholeObjective:
    """As :func:`whole_objective`, with each style image's Grams pulling only its region (masks
    1,1,H,W in [0, 1], one per style) instead of one blended style."""
    s = settings
    terms = gatys_terms(content_targets, {}, content_weight=s.content_weight, style_weight=s.style_weight,
                        tv_weight=s.tv_weight, normalize_gradients=s.normalize_gradients,
                        normalization=s.normalization, style_layer_weights=layer_weights)
    terms += masked_style_terms(style_grams, masks, style_weight=s.style_weight,
                                normalize_gradients=s.normalize_gradients, normalization=s.normalization,
                                style_layer_weights=layer_weights)
    return WholeObjective([*terms, *temporal], features)


def tiled_objective(features: Features, settings: StyleSettings, tiles: Sequence[Tile],
                    content_targets: dict[str, torch.Tensor], style_targets: dict[str, torch.Tensor],
                    layer_weights: Mapping[str, float] | None, temporal: Sequence[LossTerm]) -> TiledObjective:
    """:func:`whole_objective`'s terms (without gradient normalisation, which needs the whole
    frame's gradient) with content and style evaluated in ``tiles``; ``content_targets`` are the
    whole frame's features assembled from the tiles."""
    s = settings
    content_weights = feature_weights(content_targets, s.content_weight, s.normalization) \
        if s.content_weight > 0 else {}
    style_weights = feature_weights(style_targets, s.style_weight, s.normalization, layer_weights)
    tiled = TiledFeatureLoss(features, tiles, content_targets, style_targets, content_weights, style_weights)
    pixel_terms = gatys_terms({}, {}, content_weight=0.0, style_weight=0.0, tv_weight=s.tv_weight,
                              normalization=s.normalization)
    return TiledObjective([*pixel_terms, *temporal], tiled)
