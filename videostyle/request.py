"""The request: one stylization job as the caller asks for it, its checks, and its JSON in the job
folder (what a farm or Ray worker plans from)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from videostyle.config import MAX_FRAMES, MAX_SIDE, Settings, from_dict, validate
from videostyle.errors import UserError
from videostyle.jobdir import JobDir, inside_job
from videostyle.framestage import verified_style_copies
from videostyle.looks import check_keyframes, check_masks_fit_styles, parse_keyframes


@dataclass(frozen=True)
class RunRequest:
    """One stylization job: the input, the look, and where things go."""

    input: Path
    styles: tuple[Path, ...]
    settings: Settings = field(default_factory=Settings)
    output: Path | None = None  # default: <input stem>_stylized.mp4 in the current folder
    job_dir: Path | None = None  # default: <input stem>.videostyle/ in the current folder
    size: tuple[int, int] | None = None  # (width, height)
    width: int | None = None  # keep aspect ratio
    frames: tuple[int, int | None] | None = None  # 1-based inclusive range
    fps: str = "25/1"  # frame rate of an image-sequence input
    flow_files: Path | None = None  # a folder of the user's own .flo files (authors' names)
    cuts: tuple[int, ...] | None = None  # frames that start a new shot; None detects them
    make_video: bool = True
    side_by_side: bool = False  # also <output stem>_side_by_side.mp4: input frames left, results right
    overwrite: bool = False  # replace an existing output that this job did not write
    # One per style, in order: an image, or an image sequence numbered like the input's frames
    # (see videostyle.looks).
    style_masks: tuple[Path, ...] = ()


def default_paths(request: RunRequest) -> tuple[Path, Path]:
    stem = request.input.stem.replace("%", "") or "frames"
    job = request.job_dir or Path.cwd() / f"{stem}.videostyle"
    output = request.output or Path.cwd() / f"{stem}_stylized.mp4"
    return job.absolute(), output.absolute()


def check_request(request: RunRequest) -> None:
    """Refuse what no run can use, before anything is read or written: the settings (by their
    declarations, see ``config.validate``) and the request's own values, as one line each."""
    validate(request.settings, len(request.styles))
    if not request.styles:
        raise UserError("at least one --style image is needed")
    if request.size is not None and not (_is_pair_of_ints(request.size) and 16 <= min(request.size)
                                         and max(request.size) <= MAX_SIDE):
        raise UserError(f"size must be (width, height), each from 16 to {MAX_SIDE} (got {request.size!r})")
    if request.width is not None and not (_is_int(request.width) and 16 <= request.width <= MAX_SIDE):
        raise UserError(f"width must be a whole number from 16 to {MAX_SIDE} (got {request.width!r})")
    if request.frames is not None:
        check_frame_range(request.frames)
    parse_fps(request.fps)
    if request.cuts is not None and not all(_is_int(c) and c >= 1 for c in request.cuts):
        raise UserError(f"cuts must be frame numbers from 1 (got {request.cuts!r})")
    if request.side_by_side and not request.make_video:
        raise UserError("the side-by-side video needs the video; drop --no-video (or later: videostyle side-by-side JOB)")
    if not isinstance(request.overwrite, bool):
        raise UserError(f"overwrite must be True or False (got {request.overwrite!r})")
    if request.flow_files is not None and not isinstance(request.flow_files, Path):
        raise UserError(f"flow_files must be a folder path (got {request.flow_files!r})")
    check_style_masks(request)


def check_style_masks(request: RunRequest) -> None:
    """Masks give each style its region: one per style, and no blend of the styles besides."""
    masks = request.style_masks
    if not all(isinstance(m, Path) for m in masks):
        raise UserError(f"style_masks must be file paths (got {masks!r})")
    blended = bool(request.settings.video.style_blend_keyframes or request.settings.style.style_blend_weights)
    check_masks_fit_styles(len(masks), len(request.styles), blended)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_pair_of_ints(value: Any) -> bool:
    return isinstance(value, (tuple, list)) and len(value) == 2 and all(_is_int(v) for v in value)


def check_frame_range(frames: Any) -> None:
    first, last = frames if isinstance(frames, (tuple, list)) and len(frames) == 2 else (None, None)
    if not (_is_int(first) and first >= 1 and (last is None or (_is_int(last) and last >= first))):
        raise UserError(f"frames must be (first, last) with 1 <= first <= last, or (first, None) (got {frames!r})")


def check_frames_of_clip(request: RunRequest, n_frames: int) -> None:
    """The frame range and the cuts must lie in the clip (known from the probe, before extraction)."""
    first, last = request.frames or (1, None)
    if first > n_frames:
        raise UserError(f"frame range starts at {first} but the clip has {n_frames} frames")
    if last is not None and last > n_frames:
        raise UserError(f"frame range {first}-{last} ends after the last frame: the clip has {n_frames} "
                        f"frames (give {first}-{n_frames} or {first}-)")
    count = job_frame_count(request, n_frames)
    if count > MAX_FRAMES:
        raise UserError(f"the job would have {count:,} frames, more than the {MAX_FRAMES:,} videostyle takes; "
                        "give a --frames range")
    bad = [c for c in request.cuts or () if c > count]
    if bad:
        raise UserError(f"cut frame(s) {bad} outside the clip's frames 1-{count}")
    check_keyframes(parse_keyframes(request.settings.video.style_blend_keyframes), len(request.styles), count)


def job_frame_count(request: RunRequest, n_frames: int) -> int:
    """How many frames the job has when the input has ``n_frames``."""
    first, last = request.frames or (1, None)
    return (last or n_frames) - first + 1


def parse_fps(text: str) -> Fraction:
    """A frame rate like ``25``, ``29.97`` or ``30000/1001``, positive."""
    try:
        fps = Fraction(str(text).strip())
    except (ValueError, ZeroDivisionError):
        fps = Fraction(0)
    if fps <= 0:
        raise UserError(f"fps must be a positive rate like 25, 29.97 or 30000/1001 (got {text!r})")
    return fps



# ---------------------------------------------------------------- the request in the job folder


def request_to_json(request: RunRequest) -> dict[str, Any]:
    data = dataclasses.asdict(request)
    for name in ("input", "output", "job_dir", "flow_files"):
        if data[name] is not None:
            data[name] = str(Path(data[name]).absolute())
    data["styles"] = [str(Path(p).absolute()) for p in request.styles]
    data["style_masks"] = [str(Path(p).absolute()) for p in request.style_masks]
    return data


def request_from_json(data: dict[str, Any]) -> RunRequest:
    """The request saved by ``prepare`` (what ``videostyle work`` runs)."""
    try:
        paths = {name: Path(data[name]) if data.get(name) else None
                 for name in ("output", "job_dir", "flow_files")}
        return RunRequest(input=Path(data["input"]), styles=tuple(Path(p) for p in data["styles"]),
                          settings=from_dict(data["settings"], source="settings in the job folder"), size=_tuple(data.get("size")),
                          width=data.get("width"), frames=_tuple(data.get("frames")),
                          fps=data.get("fps", "25/1"), cuts=_tuple(data.get("cuts")),
                          make_video=data.get("make_video", True), side_by_side=data.get("side_by_side", False),
                          overwrite=data.get("overwrite", False) is True,
                          style_masks=tuple(Path(p) for p in data.get("style_masks", [])), **paths)
    except (KeyError, TypeError) as exc:
        raise UserError(f"the job folder's request is incomplete ({exc}); run `videostyle run` again") from None


def _tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def load_request(job_dir: Path) -> RunRequest:
    """The request saved in a job folder, with this folder as its job folder and the folder's
    copies of the style images (a share may be mounted elsewhere on each machine)."""
    job = JobDir(Path(job_dir).absolute())
    if not job.exists():
        raise UserError(f"{job_dir} is not a videostyle job folder (no job.json)")
    manifest = job.read_manifest()
    data = manifest.get("request")
    if not data:
        raise UserError(f"{job_dir} has no saved request; start it with `videostyle run`")
    request = request_from_json(data)
    if manifest.get("style_copies") is not None:  # jobs planned before copies were kept have none
        request = dataclasses.replace(request, styles=verified_style_copies(job, manifest["style_copies"],
                                                                            request.styles))
    return dataclasses.replace(request, job_dir=job.root)


VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv")


def worker_output(job_root: Path, planned: Path | None) -> Path:
    """Where a worker encodes the video when its command line names no output: the planned video's
    file name, inside the job folder (a job folder's word is never taken for a path outside it)."""
    name = planned.name if planned is not None else "stylized.mp4"
    if Path(name).suffix.lower() not in VIDEO_SUFFIXES:
        raise UserError(f"the job folder names the video {name!r}, not a video file name "
                        f"({', '.join(VIDEO_SUFFIXES)}); give the worker an output with -o")
    return inside_job(job_root, name, "video output")
