"""Which style applies where and when: style masks (regions) and blend keyframes (time).

A frame's *look* is what its style loss aims at besides the settings: per-style blend weights at
that frame (from ``--style-blend-keyframes``) or per-style masks (from ``--style-mask``).

Keyframes are written ``FRAME:W1,W2[,...];FRAME:...`` with 1-based frame numbers of the job's
frames, one weight per style image. Between two keyframes each weight changes linearly; before the
first and after the last it stays at that keyframe's value. Two keyframes on consecutive frames
switch styles at once (put them on a scene cut for a hard change between shots).

Masks are greyscale images, white where a style applies; soft edges blend the styles. A mask is
one image for the whole clip, or an image sequence (printf pattern or folder) numbered like the
input's frames, for regions that move with the scene.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from videostyle.errors import UserError

KEYFRAMES_EXAMPLE = "1:1,0;120:0,1"


@dataclass(frozen=True)
class Keyframe:
    frame: int  # 1-based
    weights: tuple[float, ...]


@dataclass(frozen=True)
class FrameLook:
    """What one frame's style loss aims at. ``weights``: blend per style image (None: the
    settings' blend weights). ``masks``: per style image an HxW float32 region in [0, 1] at the
    frame's size (None: every style over the whole frame)."""

    weights: tuple[float, ...] | None = None
    masks: tuple[np.ndarray, ...] | None = None


# ---------------------------------------------------------------- keyframes


def parse_keyframes(text: str) -> tuple[Keyframe, ...]:
    """Keyframes from their text (see the module's docstring); one UserError line per mistake."""
    entries = [entry.strip() for entry in text.split(";") if entry.strip()]
    keys = tuple(_parse_keyframe(entry) for entry in entries)
    for before, after in zip(keys, keys[1:]):
        if after.frame <= before.frame:
            raise UserError(f"style blend keyframes must be in frame order, each frame once "
                            f"(frame {after.frame} comes after frame {before.frame})")
    counts = {len(k.weights) for k in keys}
    if len(counts) > 1:
        raise UserError(f"style blend keyframes give {' and '.join(map(str, sorted(counts)))} weights; "
                        "give one weight per style image at every keyframe")
    return keys


def _parse_keyframe(entry: str) -> Keyframe:
    match = re.fullmatch(r"\s*(\d+)\s*:\s*(.+)", entry)
    if match is None:
        raise UserError(f"style blend keyframe {entry!r} is not FRAME:W1,W2,... (e.g. {KEYFRAMES_EXAMPLE})")
    frame = int(match[1])
    if frame < 1:
        raise UserError(f"style blend keyframe {entry!r}: frames are numbered from 1")
    try:
        weights = tuple(float(w) for w in match[2].split(","))
    except ValueError:
        raise UserError(f"style blend keyframe {entry!r}: weights must be numbers separated by commas") from None
    if not all(math.isfinite(w) and w >= 0 for w in weights):
        raise UserError(f"style blend keyframe {entry!r}: weights must be finite and not negative")
    if sum(weights) <= 0:
        raise UserError(f"style blend keyframe {entry!r}: the weights are all zero at frame {frame}")
    return Keyframe(frame, weights)


def keyframes_problem(text: str) -> str | None:
    """What is wrong with keyframes' text, for the settings' declaration (None: fine)."""
    try:
        parse_keyframes(text)
    except UserError as exc:
        return f"is wrong: {exc}"
    return None


def check_keyframes(keys: tuple[Keyframe, ...], n_styles: int, n_frames: int | None = None) -> None:
    """The keyframes fit the styles (one weight each) and, once known, the clip's frames."""
    if keys and len(keys[0].weights) != n_styles:
        raise UserError(f"style blend keyframes give {len(keys[0].weights)} weight(s) per frame for "
                        f"{n_styles} style image(s); give one per style")
    if n_frames is not None and keys and keys[-1].frame > n_frames:
        raise UserError(f"style blend keyframe at frame {keys[-1].frame} is after the last frame: "
                        f"the clip has {n_frames} frames")


def blend_at(keys: tuple[Keyframe, ...], frame: int) -> tuple[float, ...]:
    """The blend weights at ``frame`` (summing to 1): linear between keyframes, constant outside."""
    if frame <= keys[0].frame:
        weights = keys[0].weights
    elif frame >= keys[-1].frame:
        weights = keys[-1].weights
    else:
        after = next(k for k in keys if k.frame >= frame)
        before = keys[keys.index(after) - 1]
        t = (frame - before.frame) / (after.frame - before.frame)
        weights = tuple((1 - t) * a + t * b for a, b in zip(before.weights, after.weights))
    total = sum(weights)
    return tuple(w / total for w in weights)


def frame_look(keys: tuple[Keyframe, ...], masks_at: Callable[[int], tuple[np.ndarray, ...]] | None,
               i: int) -> FrameLook | None:
    """Frame i's look from the keyframes and the masks (None when neither is given)."""
    weights = blend_at(keys, i) if keys else None
    masks = masks_at(i) if masks_at is not None else None
    return FrameLook(weights, masks) if weights is not None or masks is not None else None


# ---------------------------------------------------------------- masks


def check_masks_fit_styles(n_masks: int, n_styles: int, blended: bool) -> None:
    """Masks give each style its own region: one per style, and no blend of the styles besides
    (``blended``: blend weights or keyframes are set)."""
    if not n_masks:
        return
    if n_masks != n_styles:
        raise UserError(f"{n_masks} style mask(s) for {n_styles} style image(s); give one --style-mask "
                        "per --style, in the same order")
    if blended:
        raise UserError("--style-mask gives each style its own region; it cannot be combined with "
                        "--style-blend-weights or --style-blend-keyframes")


def read_mask(path: Path) -> np.ndarray:
    """A mask file as HxW float32 in [0, 1] (a colour image counts by its grey level)."""
    from videostyle.images import load_image  # here: the settings import this module for the keyframes alone

    return load_image(path, grey=True, what="style mask").astype(np.float32) / 255.0


def save_mask(path: Path, mask: np.ndarray) -> None:
    """An HxW mask in [0, 1] as a greyscale PNG (that :func:`read_mask` reads back), atomically."""
    from videostyle.images import save_image

    save_image(path, np.clip(mask, 0.0, 1.0) * 255.0)


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``mask`` at ``size`` (W, H): area filter when shrinking, linear when growing (no overshoot)."""
    import cv2

    w, h = size
    if mask.shape == (h, w):
        return mask.astype(np.float32)
    shrinking = w * h < mask.shape[0] * mask.shape[1]
    out = cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    return np.clip(out, 0.0, 1.0)
