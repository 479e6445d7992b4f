"""The whole frame's content and style losses, computed tile by tile, so that VGG-19's activations
are bounded by a tile rather than by the frame.

Geometry (:func:`plan_tiles`): the frame is cut into non-overlapping *cores* of ``core`` pixels, and
each tile is read with a *halo* around its core (clipped at the frame's edge). Core and halo are
multiples of the network's total pooling factor, so every tile's pooling grid is the frame's.
The halo is at least as deep as zero padding at a tile's edge can reach into the deepest layer
(:func:`halo_for`; 85 px for relu5_1), so the features of a core are the frame's own features
there, not an approximation: a tiled evaluation gives the untiled loss and gradient up to
floating-point rounding, and no seam can form because nothing is blended.

Losses: a layer's Gram matrix is the sum over cores of ``F_core F_coreᵀ`` divided by the frame's
``C·h·w``; the content loss is the sum over cores of squared differences divided by the frame's
element count. Style loss is not linear in the features, so each evaluation takes two sweeps over
the tiles (:class:`TiledFeatureLoss`): the first, without gradients, adds up the Gram matrices and
content errors (the loss) and gives ``∂L/∂G`` per layer; the second, in backward, runs each tile
forward and backward again on the surrogate ``Σ_l <∂L/∂G_l, G_l(core)> + content(core)``, whose
gradient is the true one, and adds the tile's gradient into the frame's. About 1.3x an untiled
iteration's work plus the halos'.

Conventions: pixels are 1,3,H,W float32 RGB in 0..255 (as in :mod:`videostyle.frame.losses`); features
come from a function mapping such pixels to ``{layer: 1,C,h,w}``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as nnf

from videostyle.frame.vgg import LAYER_NAMES

Features = Callable[[torch.Tensor], dict[str, torch.Tensor]]


def pooling_factor(layer: str) -> int:
    """How many frame pixels one feature of ``layer`` spans per side (2 per pooling before it)."""
    return 2 ** sum(1 for name in LAYER_NAMES[: LAYER_NAMES.index(layer)] if name.startswith("pool"))


def alignment(last_layer: str) -> int:
    """Core and halo sizes must be multiples of this for every tile to pool like the frame."""
    return 2 ** sum(1 for name in LAYER_NAMES[: LAYER_NAMES.index(last_layer) + 1] if name.startswith("pool"))


def halo_for(last_layer: str) -> int:
    """Pixels of context a core needs for exact features up to ``last_layer``: each 3x3 convolution
    lets zero padding reach one feature (``factor`` pixels) further in, each 2x2 pooling at most one
    more; rounded up to :func:`alignment`. relu5_1: 85 -> 96; relu3_1: 13 -> 16."""
    depth = 0
    for name in LAYER_NAMES[: LAYER_NAMES.index(last_layer) + 1]:
        if name.startswith(("conv", "pool")):
            depth += pooling_factor(name)
    align = alignment(last_layer)
    return math.ceil(depth / align) * align


@dataclass(frozen=True)
class Tile:
    """A core (rows, cols of the frame, non-overlapping with other cores) and the region read for it."""

    core: tuple[slice, slice]
    region: tuple[slice, slice]

    def core_features(self, features: torch.Tensor, factor: int) -> torch.Tensor:
        """The core's part of ``features`` (1,C,h,w) computed over the region, at ``factor``."""
        rows, cols = (_feature_slice(c, r, factor) for c, r in zip(self.core, self.region))
        return features[..., rows, cols]


def _feature_slice(core: slice, region: slice, factor: int) -> slice:
    # Region starts are multiples of every factor, so feature indices are exact divisions; floor
    # at the frame's far edge matches the frame's own pooling (which drops a last odd row).
    return slice((core.start - region.start) // factor, (core.stop - region.start) // factor)


def plan_tiles(height: int, width: int, core: int, halo: int) -> list[Tile]:
    """Tiles covering a ``height`` x ``width`` frame with cores of ``core`` px and ``halo`` px around."""
    if core <= 0 or halo < 0:
        raise ValueError(f"core must be positive and halo non-negative (got {core}, {halo})")

    def spans(length: int) -> list[tuple[slice, slice]]:
        starts = range(0, length, core)
        return [(slice(s, min(s + core, length)), slice(max(0, s - halo), min(length, s + core + halo)))
                for s in starts]

    return [Tile((rc, cc), (rr, cr)) for rc, rr in spans(height) for cc, cr in spans(width)]


def _sweep(features: Features, pixels: torch.Tensor, tiles: Sequence[Tile], layers: Sequence[str]
           ) -> Iterator[tuple[Tile, dict[str, torch.Tensor]]]:
    """Each tile with its cores' features per layer (float32 or wider)."""
    for tile in tiles:
        feats = features(pixels[(..., *tile.region)])
        yield tile, {layer: tile.core_features(feats[layer], pooling_factor(layer)).float() for layer in layers}


def frame_shape(height: int, width: int, layer: str) -> tuple[int, int]:
    """(h, w) of ``layer``'s features for a frame (max pooling drops an odd last row/column)."""
    factor = pooling_factor(layer)
    return height // factor, width // factor


@torch.no_grad()
def tiled_grams(features: Features, pixels: torch.Tensor, tiles: Sequence[Tile], layers: Sequence[str]
                ) -> dict[str, torch.Tensor]:
    """Gram matrices ``F Fᵀ / (C·h·w)`` (1,C,C float32) of the whole frame, tile by tile."""
    sums: dict[str, torch.Tensor] = {}
    for _, cores in _sweep(features, pixels, tiles, layers):
        for layer, f in cores.items():
            m = f.flatten(2)
            sums[layer] = sums.get(layer, 0) + m @ m.transpose(1, 2)
    height, width = pixels.shape[-2:]
    return {layer: g / (g.shape[-1] * math.prod(frame_shape(height, width, layer))) for layer, g in sums.items()}


def _frame_slices(tile: Tile, factor: int) -> tuple[slice, slice]:
    """Where the tile's core lies in the frame's features at ``factor`` (cores start at multiples
    of every factor, so this is the frame's own floor division)."""
    rows, cols = (slice(s.start // factor, s.stop // factor) for s in tile.core)
    return rows, cols


@torch.no_grad()
def tiled_features(features: Features, pixels: torch.Tensor, tiles: Sequence[Tile], layers: Sequence[str]
                   ) -> dict[str, torch.Tensor]:
    """The whole frame's features (1,C,h,w float32) of ``layers``, assembled from the cores
    (for content targets: small layers such as relu4_2, 1/64 of the frame's pixels)."""
    height, width = pixels.shape[-2:]
    out: dict[str, torch.Tensor] = {}
    for tile, cores in _sweep(features, pixels, tiles, layers):
        for layer, f in cores.items():
            if layer not in out:
                out[layer] = f.new_zeros((1, f.shape[1], *frame_shape(height, width, layer)))
            out[layer][(..., *_frame_slices(tile, pooling_factor(layer)))] = f
    return out


class TiledFeatureLoss:
    """The content and style terms of :func:`videostyle.frame.losses.gatys_terms` (same weights, same
    normalisation; no gradient normalisation) over a frame evaluated in ``tiles``.

    ``features``: pixels -> features in the optimisation's precision, differentiable.
    ``content_targets``: whole-frame features per content layer (see :func:`tiled_features`);
    ``style_targets``: Gram per style layer (1,C,C). ``content_weights`` / ``style_weights``:
    (weight, scale) per layer, as :func:`videostyle.frame.losses.feature_weights` gives them; a layer
    without one has no term. Calling it returns the weighted (content, style) terms as
    differentiable scalars of ``pixels``.
    """

    def __init__(self, features: Features, tiles: Sequence[Tile], content_targets: dict[str, torch.Tensor],
                 style_targets: dict[str, torch.Tensor], content_weights: dict[str, tuple[float, float]],
                 style_weights: dict[str, tuple[float, float]]) -> None:
        self.features = features
        self.tiles = list(tiles)
        self.content_targets = {k: v for k, v in content_targets.items() if k in content_weights}
        self.style_targets = {k: v for k, v in style_targets.items() if k in style_weights}
        self.content_weights, self.style_weights = content_weights, style_weights
        self.layers = tuple(dict.fromkeys((*self.content_targets, *self.style_targets)))

    def with_features(self, features: Features) -> TiledFeatureLoss:
        """The same loss over features from another network (e.g. the float32 one, for reports)."""
        return TiledFeatureLoss(features, self.tiles, self.content_targets, self.style_targets,
                                self.content_weights, self.style_weights)

    def _factor(self, weights: dict[str, tuple[float, float]], layer: str) -> float:
        weight, scale = weights[layer]
        return weight / scale

    def __call__(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        content, style = _TiledLoss.apply(pixels, self)
        return content, style

    def values(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """First sweep, no gradients: the weighted content and style terms, and ``∂style/∂G`` per
        style layer (what the second sweep needs)."""
        with torch.no_grad():
            content, gram_sums = self._content_and_gram_sums(pixels)
        style = pixels.new_zeros((), dtype=torch.float32)
        gram_grads: dict[str, torch.Tensor] = {}
        for layer, target in self.style_targets.items():
            gram = (gram_sums[layer] / self._elements(pixels, layer, target.shape[-1])).requires_grad_(True)
            with torch.enable_grad():
                term = self._factor(self.style_weights, layer) * nnf.mse_loss(gram, target.expand_as(gram))
                (gram_grads[layer],) = torch.autograd.grad(term, gram)
            style = style + term.detach()
        return content, style, gram_grads

    def _content_and_gram_sums(self, pixels: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        content = pixels.new_zeros((), dtype=torch.float32)
        gram_sums: dict[str, torch.Tensor] = {}
        for tile, cores in _sweep(self.features, pixels, self.tiles, self.layers):
            content = content + self._content_of_core(tile, cores, pixels)
            for layer in self.style_targets:
                m = cores[layer].flatten(2)
                gram_sums[layer] = gram_sums.get(layer, 0) + m @ m.transpose(1, 2)
        return content, gram_sums

    def _content_of_core(self, tile: Tile, cores: dict[str, torch.Tensor], pixels: torch.Tensor) -> torch.Tensor:
        """This core's share of the weighted content term (its squared errors over the frame's count)."""
        total = pixels.new_zeros((), dtype=torch.float32)
        for layer, target in self.content_targets.items():
            core_target = target[(..., *_frame_slices(tile, pooling_factor(layer)))]
            squares = (cores[layer] - core_target).square().sum() / self._elements(pixels, layer, target.shape[1])
            total = total + self._factor(self.content_weights, layer) * squares
        return total

    def _style_of_core(self, cores: dict[str, torch.Tensor], gram_grads: dict[str, torch.Tensor],
                       pixels: torch.Tensor) -> torch.Tensor:
        """``Σ_l <∂style/∂G_l, G_l(core)>``: linear in each core's Gram, so its gradient with
        respect to the core's features is the style term's."""
        total = pixels.new_zeros((), dtype=torch.float32)
        for layer, grad in gram_grads.items():
            m = cores[layer].flatten(2)
            total = total + (grad * (m @ m.transpose(1, 2))).sum() / self._elements(pixels, layer, m.shape[1])
        return total

    def backward(self, pixels: torch.Tensor, gram_grads: dict[str, torch.Tensor], content_scale: torch.Tensor,
                 style_scale: torch.Tensor) -> torch.Tensor:
        """Second sweep: the gradient of ``content_scale·content + style_scale·style`` w.r.t. ``pixels``,
        one tile's forward and backward at a time."""
        grad = torch.zeros_like(pixels)
        for tile in self.tiles:
            region = pixels[(..., *tile.region)].detach().requires_grad_(True)
            with torch.enable_grad():
                feats = self.features(region)
                cores = {layer: tile.core_features(feats[layer], pooling_factor(layer)).float()
                         for layer in self.layers}
                del feats  # the cores hold what backward needs
                surrogate = (content_scale * self._content_of_core(tile, cores, pixels)
                             + style_scale * self._style_of_core(cores, gram_grads, pixels))
                (region_grad,) = torch.autograd.grad(surrogate, region)
            grad[(..., *tile.region)] += region_grad
        return grad

    @staticmethod
    def _elements(pixels: torch.Tensor, layer: str, channels: int) -> int:
        """``C·h·w`` of ``layer`` over the whole frame (the normalisation of Gram and content)."""
        return channels * math.prod(frame_shape(*pixels.shape[-2:], layer))


class _TiledLoss(torch.autograd.Function):
    """(content, style) of a frame from :class:`TiledFeatureLoss`: forward is the first sweep,
    backward the second (gradients of the tiles, nothing of the frame's activations kept)."""

    @staticmethod
    def forward(ctx, pixels: torch.Tensor, loss: TiledFeatureLoss):  # type: ignore[override]
        content, style, gram_grads = loss.values(pixels)
        ctx.loss, ctx.gram_grads = loss, gram_grads
        ctx.save_for_backward(pixels)
        return content, style

    @staticmethod
    def backward(ctx, content_grad: torch.Tensor, style_grad: torch.Tensor):  # type: ignore[override]
        (pixels,) = ctx.saved_tensors
        return ctx.loss.backward(pixels, ctx.gram_grads, content_grad, style_grad), None
