"""Stylize one image (or video frame) by Gatys optimisation on VGG-19, optionally with Ruder et al.'s
temporal loss against warped earlier results.

A :class:`Stylizer` is built once per style setup (it loads VGG-19 and computes the style Gram
targets once) and then drives any number of frames with :meth:`Stylizer.stylize`.

Conventions: images are HxWx3 RGB numpy arrays, uint8 or float in 0..255; results are float32 in
0..255. Temporal weights are HxW float in [0, 1], 1 = reliable. Loss definitions and their
normalisation are in :mod:`videostyle.frame.losses`; precision choice in :mod:`videostyle.frame.device`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from videostyle.config import StyleSettings, check_blend_count, check_section, layer_weight_map
from videostyle.errors import UserError
from videostyle.frame.colors import ColorStats, original_colors, styles_in_colors
from videostyle.frame.device import Precision, choose_precision, resolve_device, stylization_device
from videostyle.frame.losses import OBJECTIVE_SCALE, LossTerm, TemporalLoss, gram_matrix, layer_shares, masked_gram
from videostyle.frame.memory import check_frame_fits, frames_that_fit, lbfgs_history_size
from videostyle.frame.objectives import (Objective, TiledObjective, masked_objective, sum_terms, tiled_objective,
                                         together, whole_objective)
from videostyle.frame.optimize import CurvatureMemory, Progress, optimize_frames
from videostyle.frame.tiles import TiledFeatureLoss, alignment, halo_for, plan_tiles, tiled_features, tiled_grams
from videostyle.frame.vgg import LAYER_NAMES, VGGFeatures, VGGWeights, load_weights
from videostyle.images import long_side_size, resize, resize_long_side
from videostyle.looks import FrameLook

__all__ = ["FrameLook", "FrameTask", "Progress", "StylizeResult", "Stylizer", "TemporalTarget", "resolve_device"]

log = logging.getLogger(__name__)

# The authors' random init: Gaussian noise of this standard deviation around the mean pixel
# (artistic-videos: torch.randn(size):mul(0.001) in the mean-subtracted Caffe input space).
INIT_NOISE_STD = 0.001


@dataclass
class TemporalTarget:
    """A warped earlier result and how much to trust it per pixel.

    ``image``: HxWx3 float32 RGB in 0..255 (e.g. the previous stylized frame warped to this one);
    ``weights``: HxW float32 in [0, 1], 1 = reliable (e.g. reliable_t_{t-1}.pgm / 255).
    """

    image: np.ndarray
    weights: np.ndarray
    criterion: str | None = None  # the loss's criterion for this target; None: the settings' temporal_criterion


@dataclass(frozen=True)
class FrameTask:
    """One frame of :meth:`Stylizer.stylize_batch`: what :meth:`Stylizer.stylize` takes for it."""

    content: np.ndarray
    init: np.ndarray | str = "random"
    temporal: Sequence[TemporalTarget] = ()
    temporal_weight: float = 0.0
    seed: int = 0
    look: FrameLook | None = None
    memory: CurvatureMemory | None = None  # L-BFGS curvature from this frame's previous optimisation
    keep_pairs: int = 0  # curvature pairs the result hands on to the frame's next optimisation


# Said once by a process that stylizes frames together on a CPU (see Stylizer.stylize_batch).
BATCH_ON_CPU = ("frames are stylized several at a time (batch_frames) on the CPU, where it gains nothing: one "
                "frame keeps every core busy already; it pays on a GPU")


@dataclass
class StylizeResult:
    """``image``: HxWx3 float32 RGB 0..255. ``losses``: weighted terms of the returned image before
    any original-colours transfer (content, style, tv, temporal, total). ``iterations``: evaluations made."""

    image: np.ndarray
    losses: dict[str, float]
    iterations: int
    seconds: float
    stop_reason: str = "budget"  # budget | converged | non-finite (see videostyle.frame.optimize)
    memory: CurvatureMemory | None = None  # L-BFGS's curvature at the end, for the frame's next optimisation


def validate_style_settings(settings: StyleSettings, n_styles: int) -> None:
    """Reject settings no run can use (settings built in Python included), with the messages of the
    command line and TOML files: every rule is the setting's declaration."""
    if n_styles < 1:
        raise UserError("at least one style image is needed")
    check_section(settings)
    check_blend_count(settings.style_blend_weights, n_styles)
    try:
        layer_shares(settings.style_layers, layer_weight_map(settings.style_layer_weights))
    except ValueError as exc:
        raise UserError(f"style-layer-weights: {exc} (give LAYER:WEIGHT for every style layer, or none)") from None


def blend_weights(settings: StyleSettings, n_styles: int, look: FrameLook | None = None) -> list[float]:
    """Per-style weights summing to 1: the frame's look's, else the settings', else equal."""
    raw = list((look.weights if look is not None else None) or settings.style_blend_weights or [1.0] * n_styles)
    check_blend_count(raw, n_styles)
    return [w / sum(raw) for w in raw]


@dataclass
class _Reduced:
    content: np.ndarray
    init: np.ndarray | str
    temporal: list[TemporalTarget]
    look: FrameLook | None = None


def reduced_target_images(content: np.ndarray, init: np.ndarray | str, temporal: Sequence[TemporalTarget],
                          size: tuple[int, int], look: FrameLook | None = None) -> _Reduced:
    """Content, init image, temporal targets and style masks resized to ``size`` (W, H) with the
    area filter (reliability weights and masks too, so a partly covered block counts in part)."""
    def shrink(image: np.ndarray) -> np.ndarray:
        return resize(np.asarray(image, dtype=np.float32), size)

    small_init = init if isinstance(init, str) else shrink(_as_rgb(init, "init image"))
    targets = [TemporalTarget(shrink(t.image), np.clip(shrink(t.weights), 0.0, 1.0), t.criterion) for t in temporal]
    if look is not None and look.masks is not None:
        look = FrameLook(look.weights, tuple(np.clip(shrink(m), 0.0, 1.0) for m in look.masks))
    return _Reduced(shrink(content), small_init, targets, look)


def _as_rgb(image: np.ndarray, what: str) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise UserError(f"{what} must be an HxWx3 RGB image, got shape {image.shape}")
    return image


class Stylizer:
    """Gatys style transfer towards fixed style images; one instance serves many frames.

    ``content_shape`` (H, W) sets the style images' size: their long side becomes
    ``settings.style_scale`` times the content's long side. ``device``: ``auto`` | ``cpu`` |
    ``cuda[:N]``. Precision follows ``settings.precision`` (see :mod:`videostyle.frame.device`).
    ``vgg_weights``: already loaded weights (:func:`videostyle.frame.vgg.load_weights`) to share between
    stylizers; by default ``settings.weights`` is read. ``tile``: None (a frame is evaluated in
    tiles only when it does not fit the device's memory whole, see :mod:`videostyle.frame.memory`), 0
    (never) or the tile core in pixels (always; see :mod:`videostyle.frame.tiles`). ``color_reference``:
    the colours the style images take when ``settings.color_transfer`` is ``histogram`` (of the
    content image, or of the whole clip, see :func:`videostyle.frame.colors.color_stats`).
    ``temporal_targets``: the most warped results one frame will be held to, counted in its memory plan.
    """

    def __init__(self, styles: Sequence[np.ndarray], settings: StyleSettings, content_shape: tuple[int, int],
                 device: str = "auto", *, vgg_weights: VGGWeights | None = None, tile: int | None = None,
                 color_reference: ColorStats | None = None, temporal_targets: int = 0) -> None:
        validate_style_settings(settings, len(styles))
        self.settings = settings
        self.device = stylization_device(device)
        self.precision: Precision = choose_precision(settings.precision, self.device)
        self.content_layers = tuple(dict.fromkeys(settings.content_layers))
        self.style_layers = tuple(dict.fromkeys(settings.style_layers))
        self.layer_weights = layer_weight_map(settings.style_layer_weights)
        weights = vgg_weights or load_weights(settings.weights, settings.weights_input)
        layers = self.content_layers + self.style_layers
        # float32 network: targets and distances. The optimisation uses a copy in the fast precision.
        self.vgg = VGGFeatures(weights, settings.pooling, layers, self.device)
        self.fast_vgg = self._fast_copy(weights, layers)
        self.min_side = 2 ** sum(1 for n in LAYER_NAMES[: LAYER_NAMES.index(self.vgg.last_layer)] if n.startswith("pool"))
        self.content_shape = tuple(content_shape)
        self._check_size(self.content_shape, "content image")
        self._styles = styles_in_colors([_as_rgb(style, "style image") for style in styles],
                                        settings.color_transfer, color_reference)
        self.halo = halo_for(self.vgg.last_layer)
        self._tile_setting = tile
        self._temporal_targets = temporal_targets  # the most a frame will be held to: its memory is planned for
        self._tile_by_shape: dict[tuple[int, int], int] = {}  # 0: whole frame
        self._batch_by_shape: dict[tuple[int, int, int], int] = {}  # (H, W, frames asked) -> frames a call
        self._check_fits(self.content_shape)
        self._grams_by_shape: dict[tuple[int, int], list[dict[str, torch.Tensor]]] = {}
        self.style_targets = self.targets_for(self.content_shape)
        log.info("stylizer on %s, network %s, layers up to %s", self.device, self.precision.name, self.vgg.last_layer)

    # ----- setup -------------------------------------------------------------------------------

    def _fast_copy(self, weights, layers) -> VGGFeatures:
        if self.precision.dtype == torch.float32:  # one float32 network serves both
            if self.precision.channels_last:
                self.vgg.net.to(memory_format=torch.channels_last)
            return self.vgg
        fast = VGGFeatures(weights, self.settings.pooling, layers, self.device)
        # Only the layers change precision: the pixel-to-input constants stay float32.
        fast.net.to(dtype=self.precision.dtype)
        if self.precision.channels_last:
            fast.net.to(memory_format=torch.channels_last)
        return fast

    def _check_size(self, shape: Sequence[int], what: str) -> None:
        if min(shape[:2]) < self.min_side:
            raise UserError(f"{what} is {shape[1]}x{shape[0]} px; layers up to {self.vgg.last_layer} need at "
                            f"least {self.min_side} px per side")

    def _check_fits(self, shape: Sequence[int]) -> int:
        """The tile core for frames of ``shape`` (0: whole), planned so the frame fits the device's
        memory; a frame nothing fits is refused in one line, before its targets are computed.
        Once per shape: later frames reuse memory this process already holds (and that the
        machine's free memory no longer shows)."""
        key = (int(shape[0]), int(shape[1]))
        if key not in self._tile_by_shape:
            planned = check_frame_fits(*key, self.settings, self.device, [style.shape for style in self._styles],
                                       temporal_targets=self._temporal_targets)
            tile = planned if self._tile_setting is None else self._tile_setting
            if tile and self.settings.normalize_gradients:
                raise UserError("normalize-gradients cannot be used with tiles (the gradient's norm is the "
                                "whole frame's); use a smaller size or drop the option")
            if tile and tile % alignment(self.vgg.last_layer):
                raise UserError(f"tile must be a multiple of {alignment(self.vgg.last_layer)} pixels (got {tile})")
            self._tile_by_shape[key] = tile
            if tile:
                log.info("%dx%d frame in tiles of %d px (halo %d px)", key[1], key[0], tile, self.halo)
        return self._tile_by_shape[key]

    def tile_for(self, shape: Sequence[int]) -> int:
        """The tile core used for frames of ``shape`` (H, W); 0 when they are evaluated whole."""
        return self._tile_by_shape.get((int(shape[0]), int(shape[1])), 0)

    def targets_for(self, shape: Sequence[int], look: FrameLook | None = None) -> dict[str, torch.Tensor]:
        """Blended Gram matrix per style layer (1,C,C float32) for content of ``shape`` (H, W),
        with the blend weights of ``look`` (default: the settings'). See :meth:`style_grams`."""
        grams = self.style_grams(shape)
        weights = blend_weights(self.settings, len(grams), look)
        return {layer: sum(w * g[layer] for w, g in zip(weights, grams)) for layer in self.style_layers}

    def style_grams(self, shape: Sequence[int]) -> list[dict[str, torch.Tensor]]:
        """Each style image's Gram matrix per style layer for content of ``shape`` (H, W): the
        style images are scaled to ``style_scale`` times its long side, so a frame optimised at a
        reduced size is held to the painting seen at that size (strokes as many pixels across
        relative to the frame), but never below what the deepest layer needs on the painting's
        short side, as a reduced frame is never made smaller than that: a wide painting at a small
        coarse pass (Starry Night at 24 px) was refused mid-run. Computed once per shape."""
        key = (int(shape[0]), int(shape[1]))
        if key not in self._grams_by_shape:
            long_side = round(self.settings.style_scale * max(key))
            self._grams_by_shape[key] = [self._grams(self._scaled_style(style, long_side), self.tile_for(key))
                                         for style in self._styles]
        return self._grams_by_shape[key]

    def _scaled_style(self, style: np.ndarray, long_side: int) -> np.ndarray:
        long_side = max(long_side, self.min_side)
        while min(long_side_size(style.shape, long_side)) < self.min_side:  # a few steps, for a wide painting
            long_side += 1
        image = resize_long_side(style, long_side)
        self._check_size(image.shape, "scaled style image")
        return image

    def _grams(self, image: np.ndarray, tile: int) -> dict[str, torch.Tensor]:
        """float32 Gram matrices of ``image`` per style layer, whole or in tiles of ``tile`` px."""
        pixels = self._pixels(image)
        if tile:
            tiles = plan_tiles(image.shape[0], image.shape[1], tile, self.halo)
            return tiled_grams(self._reference_net, pixels, tiles, self.style_layers)
        feats = self._reference_features(pixels)
        return {layer: gram_matrix(feats[layer]) for layer in self.style_layers}

    def _reference_net(self, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        return self._features(self.vgg, pixels)

    # ----- tensors -----------------------------------------------------------------------------

    def _pixels(self, image: np.ndarray) -> torch.Tensor:
        """HxWx3 array -> 1,3,H,W float32 tensor on the device."""
        array = np.ascontiguousarray(np.asarray(image, dtype=np.float32).transpose(2, 0, 1))
        return torch.from_numpy(array)[None].to(self.device)

    def _features(self, net: VGGFeatures, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Features of 1,3,H,W pixels in ``net``'s precision and memory layout."""
        x = net.pixels_to_input(pixels).to(net.net.conv1_1.weight.dtype)
        if self.precision.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return net(x)

    @torch.no_grad()
    def _reference_features(self, image: np.ndarray | torch.Tensor) -> dict[str, torch.Tensor]:
        """float32 features (targets, reported losses, distances)."""
        pixels = image if isinstance(image, torch.Tensor) else self._pixels(image)
        return self._features(self.vgg, pixels)

    def _fast_features(self, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Features in the optimisation's precision (differentiable)."""
        return self._features(self.fast_vgg, pixels)

    # ----- objective ---------------------------------------------------------------------------

    def _objective(self, content: np.ndarray, temporal: Sequence[TemporalTarget], temporal_weight: float,
                   tile: int, look: FrameLook | None = None) -> Objective:
        """This frame's objective in the optimisation's network: in tiles of ``tile`` px (0:
        whole), with the look's style masks when it has some (see :mod:`videostyle.frame.objectives`)."""
        if tile:
            return self._tiled_objective(content, temporal, temporal_weight, tile, look)
        s = self.settings
        content_targets: dict[str, torch.Tensor] = {}
        if s.content_weight > 0 and self.content_layers:
            feats = self._reference_features(content)
            content_targets = {layer: feats[layer] for layer in self.content_layers}
        masks = self._mask_tensors(look, content.shape)
        if masks:
            return masked_objective(self._fast_features, s, content_targets, self.style_grams(content.shape), masks,
                                    self.layer_weights, self._temporal_terms(content, temporal, temporal_weight))
        return whole_objective(self._fast_features, s, content_targets, self.targets_for(content.shape, look),
                               self.layer_weights, self._temporal_terms(content, temporal, temporal_weight))

    def _tiled_objective(self, content: np.ndarray, temporal: Sequence[TemporalTarget], temporal_weight: float,
                         tile: int, look: FrameLook | None) -> TiledObjective:
        s = self.settings
        if look is not None and look.masks is not None:
            raise UserError("style masks cannot be used on frames stylized in tiles yet; work at a smaller "
                            "size (--width) or drop --style-mask")
        tiles = plan_tiles(content.shape[0], content.shape[1], tile, self.halo)
        content_targets: dict[str, torch.Tensor] = {}
        if s.content_weight > 0 and self.content_layers:
            content_targets = tiled_features(self._reference_net, self._pixels(content), tiles, self.content_layers)
        style_targets = self.targets_for(content.shape, look) if s.style_weight > 0 else {}
        return tiled_objective(self._fast_features, s, tiles, content_targets, style_targets, self.layer_weights,
                               self._temporal_terms(content, temporal, temporal_weight))

    # The objective's parts as tests/test_tiles.py compares them (whole against tiled).
    def _terms(self, content: np.ndarray, temporal: Sequence[TemporalTarget], temporal_weight: float,
               look: FrameLook | None = None) -> list[LossTerm]:
        return self._objective(content, temporal, temporal_weight, 0, look).terms

    def _tiled_parts(self, content: np.ndarray, temporal: Sequence[TemporalTarget], temporal_weight: float,
                     tile: int, look: FrameLook | None = None) -> tuple[list[LossTerm], TiledFeatureLoss]:
        objective = self._tiled_objective(content, temporal, temporal_weight, tile, look)
        return objective.terms, objective.tiled

    @staticmethod
    def _tiled_sums(terms: Sequence[LossTerm], tiled: TiledFeatureLoss,
                    pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        return TiledObjective(terms, tiled)(pixels)

    _evaluate_terms = staticmethod(sum_terms)

    def _mask_tensors(self, look: FrameLook | None, shape: Sequence[int]) -> list[torch.Tensor]:
        """The look's style masks as 1,1,H,W tensors (empty without masks), checked against the frame."""
        if look is None or look.masks is None:
            return []
        if len(look.masks) != len(self._styles):
            raise UserError(f"{len(look.masks)} style mask(s) for {len(self._styles)} style image(s); "
                            "give one per style")
        tensors = []
        for mask in look.masks:
            mask = np.asarray(mask, dtype=np.float32)
            if mask.shape != tuple(shape[:2]):
                raise UserError(f"style mask {mask.shape[1]}x{mask.shape[0]} does not match the frame "
                                f"{shape[1]}x{shape[0]}")
            tensors.append(torch.from_numpy(np.clip(mask, 0.0, 1.0))[None, None].to(self.device))
        return tensors

    def _temporal_terms(self, content: np.ndarray, temporal: Sequence[TemporalTarget],
                        temporal_weight: float) -> list[LossTerm]:
        s = self.settings
        terms: list[LossTerm] = []
        if temporal_weight > 0:
            for target in temporal:
                image = _as_rgb(target.image, "temporal target image")
                weights = np.asarray(target.weights, dtype=np.float32)
                if image.shape != content.shape or weights.shape != content.shape[:2]:
                    raise UserError(f"temporal target {image.shape} / weights {weights.shape} do not match the "
                                    f"content frame {content.shape}")
                terms.append(TemporalLoss(self._pixels(image), torch.from_numpy(weights).to(self.device),
                                          temporal_weight, target.criterion or s.temporal_criterion,
                                          s.normalize_gradients, s.normalization))
        return terms

    def _initial_pixels(self, init: np.ndarray | str, content: np.ndarray, seed: int) -> torch.Tensor:
        """The start, never sharing memory with the caller's arrays (the optimiser moves it in place,
        and an array in CHW memory order, such as a result's image, converts without a copy)."""
        if isinstance(init, str):
            if init == "content":
                return self._pixels(content).clone()
            if init == "random":
                generator = torch.Generator().manual_seed(int(seed))  # CPU noise: same on every device
                noise = torch.randn((1, 3, *content.shape[:2]), generator=generator) * INIT_NOISE_STD
                return self.vgg.input_to_pixels(noise.to(self.device))  # noise in network input space
            raise UserError(f"unknown init {init!r}; choose random, content or pass an image")
        image = _as_rgb(init, "init image")
        if image.shape != content.shape:
            raise UserError(f"init image is {image.shape[1]}x{image.shape[0]}, the content "
                            f"{content.shape[1]}x{content.shape[0]}; resize it first")
        return self._pixels(image).clone()

    # ----- public ------------------------------------------------------------------------------

    def stylize(self, content: np.ndarray, *, iterations: int, init: np.ndarray | str = "random",
                temporal: Sequence[TemporalTarget] = (), temporal_weight: float = 0.0, seed: int = 0,
                callback: Callable[[Progress], None] | None = None, scale: float = 1.0,
                look: FrameLook | None = None, memory: CurvatureMemory | None = None,
                keep_pairs: int = 0) -> StylizeResult:
        """Optimise an image towards ``content``'s features and the style targets.

        ``init``: ``random`` (seeded noise around the mean pixel, as the authors), ``content``, or an
        HxWx3 image in 0..255 (e.g. the warped previous result). ``temporal``: warped targets, each
        weighted by ``temporal_weight`` (0 disables). ``scale`` < 1 optimises at that fraction of
        the content's size (content, init and temporal targets reduced, style targets for that
        size) and returns the result enlarged to the content's size: the coarse step of a
        coarse-to-fine schedule, about 1/scale² cheaper per iteration. ``look``: this frame's
        style blend weights or style masks (see :mod:`videostyle.looks`). ``memory``: L-BFGS
        curvature from this frame's previous optimisation at the same size to start from;
        ``keep_pairs``: how many pairs the result's ``memory`` hands on to the next one (see
        :mod:`videostyle.frame.optimize`).
        Deterministic for a fixed seed on one device.
        """
        frame = FrameTask(content, init=init, temporal=tuple(temporal), temporal_weight=temporal_weight, seed=seed,
                          look=look, memory=memory, keep_pairs=keep_pairs)
        return self.stylize_batch([frame], iterations=iterations, callback=callback, scale=scale)[0]

    def stylize_batch(self, frames: Sequence[FrameTask], *, iterations: int, scale: float = 1.0,
                      callback: Callable[[Progress], None] | None = None) -> list[StylizeResult]:
        """:meth:`stylize` for frames of one size that do not depend on each other, optimised
        together: one network call per iteration for all of them (as many as fit the device's
        memory at once; frames in tiles one by one). Each frame keeps its own optimiser, so its
        result is what :meth:`stylize` gives it, up to the rounding of a batched call (see
        :func:`videostyle.frame.optimize.optimize_frames`). ``callback`` gets the terms summed
        over the frames. Worth it on a GPU, which a single frame of a few hundred pixels leaves
        mostly idle; a CPU's cores are busy with one frame already (see ``BATCH_ON_CPU``)."""
        frames = [dataclasses.replace(f, content=_as_rgb(f.content, "content image")) for f in frames]
        for frame in frames:
            self._check_size(frame.content.shape, "content image")
        if len({frame.content.shape for frame in frames}) > 1:
            raise UserError("frames stylized together must all be of one size, got "
                            + ", ".join(sorted({f"{f.content.shape[1]}x{f.content.shape[0]}" for f in frames})))
        if iterations < 0:
            raise UserError("iterations must not be negative")
        if not 0 < scale <= 1:
            raise UserError(f"scale must be in (0, 1] (got {scale})")
        if not frames:
            return []
        if scale < 1:
            return self._stylize_reduced(frames, scale, iterations=iterations, callback=callback)
        shape = frames[0].content.shape
        tile = self._check_fits(shape)
        size = self._batch_size(shape, len(frames), tile)
        return [result for k in range(0, len(frames), size)
                for result in self._optimise(frames[k:k + size], iterations, tile, callback)]

    def _optimise(self, frames: Sequence[FrameTask], iterations: int, tile: int,
                  callback: Callable[[Progress], None] | None) -> list[StylizeResult]:
        """One optimisation of ``frames`` (of one size) together, in tiles of ``tile`` px (0: whole)."""
        started = time.perf_counter()
        objectives = [self._objective(f.content, f.temporal, f.temporal_weight, tile, f.look) for f in frames]
        # in the float32 network: where float16 overflows, and the report
        in_float32 = [objective.in_network(self._reference_net) for objective in objectives]
        xs = [self._initial_pixels(f.init, f.content, f.seed).contiguous().requires_grad_(True) for f in frames]
        height, width = frames[0].content.shape[:2]
        outcomes = optimize_frames(
            xs, together(objectives), iterations=iterations, method=self.settings.optimizer,
            learning_rate=self._learning_rate(), tol_loss_relative=self.settings.tol_loss_relative,
            tol_loss_relative_interval=self.settings.tol_loss_relative_interval, callback=callback,
            loss_scaling=self.precision.loss_scaling,
            fallback=together(in_float32) if self.precision.loss_scaling else None,
            objective_scale=OBJECTIVE_SCALE[self.settings.normalization],
            history_size=lbfgs_history_size(height * width),
            warm_start=[not (isinstance(f.init, str) and f.init == "random") for f in frames],
            memories=[f.memory for f in frames], keep_pairs=[f.keep_pairs for f in frames])
        results = [x.detach().clamp(0.0, 255.0) for x in xs]
        reports = self._reports(in_float32, results)
        stylized = []
        for frame, result, losses, outcome in zip(frames, results, reports, outcomes):
            image = result[0].permute(1, 2, 0).cpu().numpy().astype(np.float32)
            if self.settings.color_transfer == "luminance":
                image = original_colors(frame.content, image)
            stylized.append(StylizeResult(image, losses, outcome.iterations, 0.0, outcome.stop_reason, outcome.memory))
        seconds = (time.perf_counter() - started) / len(frames)  # each frame's share of the call
        return [dataclasses.replace(result, seconds=seconds) for result in stylized]

    def _batch_size(self, shape: Sequence[int], wanted: int, tile: int) -> int:
        """How many frames of ``shape`` one call optimises together: ``wanted``, or as many as fit
        the device's memory at once (once per shape and number, as :meth:`_check_fits`); frames in
        tiles one at a time. Says once that on a CPU it gains nothing."""
        if tile or wanted <= 1:
            return 1
        key = (int(shape[0]), int(shape[1]), wanted)
        if key not in self._batch_by_shape:
            fitting = frames_that_fit(key[0], key[1], self.settings, self.device,
                                      [style.shape for style in self._styles], wanted,
                                      temporal_targets=self._temporal_targets)
            if fitting < wanted:
                log.info("%dx%d frames: %d at a time fit on %s, not %d", key[1], key[0], fitting, self.device, wanted)
            if self.device.type == "cpu" and not self._batch_by_shape:
                log.warning("note: %s", BATCH_ON_CPU)
            self._batch_by_shape[key] = fitting
        return self._batch_by_shape[key]

    def _stylize_reduced(self, frames: Sequence[FrameTask], scale: float, **kwargs) -> list[StylizeResult]:
        height, width = frames[0].content.shape[:2]
        size = (max(self.min_side, round(width * scale)), max(self.min_side, round(height * scale)))
        small = [reduced_target_images(f.content, f.init, f.temporal, size, f.look) for f in frames]
        results = self.stylize_batch([dataclasses.replace(f, content=r.content, init=r.init, temporal=tuple(r.temporal),
                                                          look=r.look) for f, r in zip(frames, small)], **kwargs)
        return [dataclasses.replace(result, image=np.clip(resize(result.image, (width, height)), 0.0, 255.0)
                                    .astype(np.float32)) for result in results]

    def _learning_rate(self) -> float:
        if self.settings.optimizer == "adam":
            return float(self.settings.adam_learning_rate)
        return float(self.settings.learning_rate)

    @torch.no_grad()
    def _report(self, objective: Objective, pixels: torch.Tensor) -> dict[str, float]:
        """The terms of ``objective`` (in the float32 network) as floats, plus ``total``."""
        return self._reports([objective], [pixels])[0]

    @torch.no_grad()
    def _reports(self, objectives: Sequence[Objective], pixels: Sequence[torch.Tensor]) -> list[dict[str, float]]:
        """:meth:`_report` of each frame (1,3,H,W each), in one network call."""
        stacked = pixels[0] if len(pixels) == 1 else torch.cat(list(pixels))
        reports = []
        for terms in together(objectives)(stacked, range(len(pixels))):
            sums = {k: float(v) for k, v in terms.items()}
            sums["total"] = sum(sums.values())
            reports.append(sums)
        return reports

    def losses(self, image: np.ndarray, content: np.ndarray, temporal: Sequence[TemporalTarget] = (),
               temporal_weight: float = 0.0, look: FrameLook | None = None) -> dict[str, float]:
        """The weighted loss terms of ``image`` for ``content`` (float32 network), plus ``total``."""
        image, content = _as_rgb(image, "image"), _as_rgb(content, "content image")
        if image.shape != content.shape:
            raise UserError(f"image {image.shape} and content {content.shape} differ in size")
        objective = self._objective(content, temporal, temporal_weight, self._check_fits(content.shape), look)
        return self._report(objective.in_network(self._reference_net), self._pixels(image))

    @torch.no_grad()
    def style_distance(self, image: np.ndarray, look: FrameLook | None = None) -> float:
        """Mean over style layers of ``‖G(image) − A‖_F / ‖A‖_F`` (A: the style Gram blended by
        ``look``'s weights, default the settings'); 0 = same style."""
        image = _as_rgb(image, "image")
        grams = self._grams(image, self.tile_for(image.shape))
        return _relative_distance(grams, self.targets_for(self.content_shape, look), self.style_layers)

    @torch.no_grad()
    def region_style_distance(self, image: np.ndarray, mask: np.ndarray, style_index: int) -> float:
        """:meth:`style_distance` of the region ``mask`` (HxW in [0, 1]) of ``image`` to style image
        ``style_index`` alone: how much that region looks like that painting."""
        image = _as_rgb(image, "image")
        feats = self._reference_features(image)
        region = torch.from_numpy(np.asarray(mask, dtype=np.float32))[None, None].to(self.device)
        grams = {layer: masked_gram(feats[layer], region) for layer in self.style_layers}
        return _relative_distance(grams, self.style_grams(self.content_shape)[style_index], self.style_layers)

    @torch.no_grad()
    def content_distance(self, image: np.ndarray, content: np.ndarray) -> float:
        """Mean over content layers of ``‖F(image) − F(content)‖ / ‖F(content)‖``; 0 = same content."""
        image, content = _as_rgb(image, "image"), _as_rgb(content, "content image")
        if image.shape != content.shape:
            raise UserError(f"image {image.shape} and content {content.shape} differ in size")
        ours, theirs = self._reference_features(image), self._reference_features(content)
        layers = self.content_layers or self.style_layers
        ratios = [float(torch.linalg.norm(ours[l].float() - theirs[l].float()) /
                        torch.linalg.norm(theirs[l].float()).clamp_min(1e-12)) for l in layers]
        return float(np.mean(ratios))


def _relative_distance(grams: dict[str, torch.Tensor], targets: dict[str, torch.Tensor],
                       layers: Sequence[str]) -> float:
    ratios = [float(torch.linalg.norm(grams[l] - targets[l]) / torch.linalg.norm(targets[l]).clamp_min(1e-12))
              for l in layers]
    return float(np.mean(ratios))
