"""The frames stage: what a job keeps of its inputs (the extracted frames, the scene cuts, copies
of the style images and of the audio).

Both are checked on every start, by the planner and by every worker (see :mod:`videostyle.verify`),
and a damaged or missing file is made again from the original: a frame re-extracted from the
input, a style copy copied again. When the original is not on this machine (a worker elsewhere)
or has changed, that is one line saying so, not a traceback on an unreadable image.

The frames are keyed by what the input *is*, not by the path it was given as: the same file
through a symlink or ``./a/../clip.mp4`` keeps its frames.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flow.atomic import atomic_write_bytes
from videostyle.config import VideoSettings, stage_key
from videostyle.errors import UserError
from videostyle.frame.colors import ColorStats, color_stats, sample_frames
from videostyle.jobdir import STYLE_COPY, JobDir, check_no_link_on_the_way, inside_job
from videostyle.shots import detect_cuts
from videostyle.verify import file_digest, file_identity, file_size, frame_is_intact
from videostyle.video_io import (VideoInfo, copy_audio, extract_frame, extract_frames, is_image_sequence,
                                 list_sequence, output_size, probe_sequence, probe_video)

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class RecordedFrames:
    """The frames as ``job.json`` records them (what a worker uses instead of the input)."""

    info: VideoInfo
    count: int
    key: str  # what the frames are: a hash of their contents (the flows' and styles' keys build on it)
    width: int
    height: int
    first: int  # the input frame that is frame 1
    source: str  # identity of the input they were extracted from (see input_identity)
    sizes: tuple[int, ...] | None  # byte size of each frame file; None in jobs older than the record
    made_from: str = ""  # what produced them: input identity, size, range, code (see ensure_frames)

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "count": self.count, "size": [self.width, self.height], "first": self.first,
                "source": self.source, "bytes": list(self.sizes) if self.sizes is not None else None,
                "made_from": self.made_from}


def recorded_frames(job: JobDir) -> RecordedFrames | None:
    """The frames ``job.json`` records, if it records them in full (the files are not looked at)."""
    manifest = job.read_manifest()
    frames, video = manifest.get("frames"), manifest.get("video")
    try:
        info = VideoInfo(**video)  # type: ignore[arg-type]
        count, (width, height) = frames["count"], frames["size"]  # type: ignore[index]
        first, key, source = frames.get("first", 1), frames["key"], frames.get("source", "")  # type: ignore[union-attr]
    except (TypeError, KeyError, ValueError, AttributeError):
        return None
    if not (_positive_ints(count, width, height, first) and isinstance(key, str) and isinstance(source, str)):
        return None
    sizes = frames.get("bytes")
    if not (isinstance(sizes, list) and len(sizes) == count and _positive_ints(*sizes)):
        sizes = None
    made_from = frames.get("made_from", "")
    return RecordedFrames(info, count, key, width, height, first, source, tuple(sizes) if sizes else None,
                          made_from if isinstance(made_from, str) else "")


def _positive_ints(*values: Any) -> bool:
    return all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values)


def input_identity(path: Path) -> str:
    """What the input is, whatever path names it: a video file's identity (see
    :func:`~videostyle.verify.file_identity`); an image sequence's file names, sizes and times."""
    if not is_image_sequence(path):
        return file_identity(path)
    h = hashlib.sha256()
    for file in list_sequence(path):
        stat = file.stat()
        h.update(f"{file.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return "sequence:" + h.hexdigest()[:16]


def probe_input(input_path: Path, fps: str) -> VideoInfo:
    """The input's video facts (an image sequence at ``fps``); a missing or unreadable input is a
    one-line error before anything is written."""
    if is_image_sequence(input_path):
        return probe_sequence(input_path, fps)
    return probe_video(input_path)


# A PNG frame takes at most about its raw size (3 bytes a pixel, noise-like pictures); real footage
# compresses to a half or a third of it, so this bound refuses only what cannot fit.
PNG_BYTES_PER_PIXEL = 3


def check_disk_for_frames(job: JobDir, count: int, size: tuple[int, int]) -> None:
    """The frames fit on the job folder's disk before one is extracted (a small video can decode
    to more PNG than the disk holds), said in one line with both figures."""
    needed = count * size[0] * size[1] * PNG_BYTES_PER_PIXEL
    existing = job.root if job.root.exists() else next(p for p in job.root.parents if p.exists())
    free = shutil.disk_usage(existing).free
    if needed > free:
        raise UserError(f"{count} frames of {size[0]}x{size[1]} need up to {needed / 1e9:.1f} GB for PNG frames, "
                        f"{free / 1e9:.1f} GB free on {existing}; free some space, or give --width or --frames")


def ensure_frames(job: JobDir, input_path: Path, info: VideoInfo, size: tuple[int, int] | None,
                  width: int | None, frames: tuple[int, int | None] | None,
                  on_extract: Callable[[], None]) -> RecordedFrames:
    """The planner's frames: the job's own when they were extracted from this input at these
    settings (damaged ones re-extracted), else all extracted afresh."""
    work_size = output_size((info.width, info.height), size, width)
    first, last = frames or (1, None)
    identity = input_identity(input_path)
    made_from = stage_key("frames", identity, work_size, first, last, info.fps)
    recorded = recorded_frames(job)
    if recorded is not None and recorded.made_from == made_from:
        return repair_frames(job, recorded, input_path)
    check_disk_for_frames(job, (last or info.n_frames) - first + 1, work_size)
    on_extract()
    check_no_link_on_the_way(job.root, job.frames_dir)
    count = extract_frames(input_path, info, job.frames_dir, work_size, first, last)
    made = RecordedFrames(info, count, frames_content_key(job, count), work_size[0], work_size[1], first,
                          identity, tuple(_frame_bytes(job, count)), made_from)
    job.update_manifest(input=str(input_path.absolute()), video=dataclasses.asdict(info), frames=made.to_json())
    return made


def frames_content_key(job: JobDir, count: int) -> str:
    """What the job's frames are, by their bytes: a re-exported input that decodes to other pixels
    under the same name, size and length gets other flows and stylized passes, never the old ones."""
    return stage_key("frames", [file_digest(job.frame_path(i)) for i in range(1, count + 1)])


def _frame_bytes(job: JobDir, count: int) -> list[int]:
    return [file_size(job.frame_path(i)) or 0 for i in range(1, count + 1)]


def damaged_frames(job: JobDir, recorded: RecordedFrames) -> list[int]:
    return [i for i in range(1, recorded.count + 1)
            if not frame_is_intact(job.frame_path(i), recorded.width, recorded.height,
                                   recorded.sizes[i - 1] if recorded.sizes else None)]


def repair_frames(job: JobDir, recorded: RecordedFrames, input_path: Path | None) -> RecordedFrames:
    """Check every frame; re-extract the damaged or missing ones from the input (the planner's;
    a worker, ``input_path`` None, reads nothing outside the job folder and stops)."""
    damaged = damaged_frames(job, recorded)
    if not damaged:
        return recorded
    where = job.frame_path(damaged[0]).relative_to(job.root).as_posix()
    where += f" and {len(damaged) - 1} more" if len(damaged) > 1 else ""
    if input_path is None:
        raise UserError(f"the job's frame {where} is damaged or missing; a worker reads nothing outside the job "
                        "folder: plan it again with `videostyle run ... --plan-only` where the input is")
    if not _input_is_here(input_path):
        raise UserError(f"the job's frame {where} is damaged or missing and the input {input_path} is not on "
                        "this machine to extract it again; run `videostyle run` where the input is")
    if recorded.source and input_identity(input_path) != recorded.source:
        raise UserError(f"the job's frame {where} is damaged or missing and the input {input_path} has changed "
                        "since the job was planned; run `videostyle run` again to start over from it")
    log.warning("re-extracting damaged frame(s) %s from %s", damaged, input_path)
    for i in damaged:
        extract_frame(input_path, recorded.info, job.frame_path(i), (recorded.width, recorded.height),
                      recorded.first + i - 1)
    repaired = dataclasses.replace(recorded, sizes=tuple(_frame_bytes(job, recorded.count)),
                                   key=frames_content_key(job, recorded.count))
    if repaired != recorded:
        job.update_manifest(frames=repaired.to_json())
    return repaired


def _input_is_here(path: Path) -> bool:
    if is_image_sequence(path):
        try:
            return bool(list_sequence(path))
        except UserError:
            return False
    return path.is_file()


# ---------------------------------------------------------------- style images


def keep_style_copies(job: JobDir, styles: Sequence[Path]) -> list[str]:
    """Copy the style images into the job folder for workers elsewhere; a copy that does not hash
    to the digest in its name is written again."""
    names = []
    for index, style in enumerate(styles):
        digest = file_digest(style)
        name = job.style_copy_name(index, digest, style.suffix)
        copy = inside_job(job.root, name, "style copy")
        if not (copy.is_file() and file_digest(copy) == digest):
            atomic_write_bytes(copy, style.read_bytes())
        names.append(name)
    return names


def verified_style_copies(job: JobDir, names: Any, originals: Sequence[Path]) -> tuple[Path, ...]:
    """A worker's style images: the job's copies, each checked against the hash in its name."""
    if not (isinstance(names, list) and len(names) == len(originals) and all(isinstance(n, str) for n in names)):
        raise UserError("the job folder's list of style copies does not match its style images; "
                        "run `videostyle run` again")
    return tuple(_verified_copy(job, name, original) for name, original in zip(names, originals))


def _verified_copy(job: JobDir, name: str, original: Path) -> Path:
    """A style copy that hashes to the digest in its name. A worker never reads the original
    (the job folder's word for where it is may point anywhere): the planner copies it again."""
    copy = inside_job(job.root, name, "style copy")
    match = STYLE_COPY.fullmatch(name)
    if match is None:
        raise UserError(f"the job folder names a style copy {name!r}, not a file styles/N_<hash>.<ext>; "
                        "run `videostyle run` again")
    if copy.is_file() and file_digest(copy) == match[1]:
        return copy
    raise UserError(f"the job's copy of a style image ({name}, of {original.name}) is damaged or missing; "
                    "plan the job again with `videostyle run ... --plan-only` where the styles are")


def keep_audio_copy(job: JobDir, input_path: Path, info: VideoInfo) -> None:
    """Copy the input's audio into the job folder, for the worker that encodes where the input is not."""
    if info.is_video and info.has_audio and not job.audio_copy.is_file():
        if not copy_audio(input_path, job.audio_copy):
            log.warning("could not copy the audio of %s into the job folder", input_path)


# ---------------------------------------------------------------- colours


def clip_colors(job: JobDir, n_frames: int) -> ColorStats:
    """The colours of the job's frames (mean, covariance) over a fixed sample of them, for the
    ``histogram`` colour transfer: the planner and every worker read the same frames, so all
    stylize towards the same recoloured style (see :func:`videostyle.frame.colors.sample_frames`)."""
    return color_stats(job.read_image(job.frame_path(i)) for i in sample_frames(n_frames))


# ---------------------------------------------------------------- scene cuts


def find_cuts(job: JobDir, given: tuple[int, ...] | None, video: VideoSettings, frames_key: str,
              n_frames: int) -> list[int]:
    """The user's cuts, or detected ones (cached in the manifest with what produced them)."""
    if given is not None:
        return sorted(c for c in set(given) if c > 1)
    if video.scene_cuts == "off":
        return []
    key = stage_key("cuts", frames_key, video.cut_threshold)
    recorded = job.read_manifest().get("cuts", {})
    if recorded.get("key") == key:
        return list(recorded["frames"])
    cuts = detect_cuts(n_frames, lambda i: job.read_image(job.frame_path(i)), video.cut_threshold)
    job.update_manifest(cuts={"key": key, "frames": cuts})
    if cuts:
        log.info("scene cuts before frames %s", cuts)
    return cuts
