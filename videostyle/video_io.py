"""Video in and out through ffmpeg: probing, frame extraction, image sequences, reassembly.

Uses the ffmpeg on PATH when there is one, else the binary bundled by ``imageio-ffmpeg``, so a
fresh machine needs nothing outside pip. Frames on disk are numbered from 1 (``frame_00001.png``),
as the authors' scripts number them.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import ffmpeg
import imageio_ffmpeg

from flow.atomic import replacing
from videostyle.errors import UserError
from videostyle.images import load_image, resize, save_image

log = logging.getLogger(__name__)

FRAME_PATTERN = "frame_%05d.png"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".ppm", ".webp"}


def frame_name(index: int) -> str:
    """File name of frame ``index`` (1-based)."""
    return FRAME_PATTERN % index


@dataclass(frozen=True)
class VideoInfo:
    """What reassembly needs to know about the input."""

    width: int
    height: int
    fps: str  # exact rational as "num/den", e.g. "30000/1001"
    n_frames: int
    has_audio: bool
    is_video: bool  # False for an image sequence


def ffmpeg_exe() -> str:
    """The ffmpeg binary: PATH first, then the one imageio-ffmpeg ships."""
    return shutil.which("ffmpeg") or imageio_ffmpeg.get_ffmpeg_exe()


def parse_size(text: str) -> tuple[int, int]:
    """Parse ``WxH`` into (width, height); both must be positive even numbers for H.264."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match:
        raise UserError(f"bad size {text!r}: expected WIDTHxHEIGHT, e.g. 640x360")
    w, h = int(match[1]), int(match[2])
    if w < 16 or h < 16:
        raise UserError(f"bad size {text!r}: width and height must be at least 16")
    return w, h


def parse_frame_range(text: str) -> tuple[int, int | None]:
    """Parse ``A-B`` (1-based, inclusive; ``A-`` means to the end) into (first, last)."""
    match = re.fullmatch(r"\s*(\d+)\s*-\s*(\d*)\s*", text)
    if not match or int(match[1]) < 1 or (match[2] and int(match[2]) < int(match[1])):
        raise UserError(f"bad frame range {text!r}: expected FIRST-LAST with 1 <= FIRST <= LAST, e.g. 1-50")
    return int(match[1]), int(match[2]) if match[2] else None


def output_size(source: tuple[int, int], size: tuple[int, int] | None, width: int | None) -> tuple[int, int]:
    """The frame size to work at: explicit ``size``, or ``width`` keeping aspect, else the source;
    always even so H.264/yuv420p can encode it."""
    if size:
        w, h = size
    elif width:
        if width < 16:
            raise UserError(f"bad width {width}: must be at least 16")
        w, h = width, round(source[1] * width / source[0])
    else:
        w, h = source
    return max(2, w - w % 2), max(2, h - h % 2)


SEQUENCE_PATTERN = re.compile(r"%0?(\d*)d")  # the printf field of a name like shot.%04d.png


def is_image_sequence(path: Path) -> bool:
    """A folder of images, or a printf pattern (``shot.%04d.png``) that is not itself a file: a
    name is data, so ``100%.mp4`` is a video."""
    return path.is_dir() or (SEQUENCE_PATTERN.search(path.name) is not None and not path.is_file())


def ffmpeg_path(path: Path) -> str:
    """``path`` as ffmpeg must read it: absolute, behind the ``file:`` protocol, so a name such as
    ``concat:x.mp4`` or ``http:clip.mp4`` is a file here and never another protocol."""
    return f"file:{Path(path).absolute()}"


def probe_video(path: Path) -> VideoInfo:
    """Size, exact frame rate, frame count and audio presence of a video file."""
    if not path.exists():
        raise UserError(f"input not found: {path}")
    if path.is_dir():
        raise UserError(f"{path} is a folder; pass a video file or an image sequence pattern")
    try:
        reader = imageio_ffmpeg.read_frames(ffmpeg_path(path))
        meta = next(reader)
        reader.close()
        n_frames, _ = imageio_ffmpeg.count_frames_and_secs(ffmpeg_path(path))
    except (OSError, RuntimeError, StopIteration, ValueError) as exc:
        raise UserError(f"cannot read {path} as a video: {_last_line(str(exc))}") from None
    if n_frames < 1:
        raise UserError(f"{path} has no video frames")
    fps = Fraction(meta.get("fps") or 25).limit_denominator(1001)
    width, height = meta["size"]
    return VideoInfo(width=width, height=height, fps=f"{fps.numerator}/{fps.denominator}",
                     n_frames=n_frames, has_audio=bool(meta.get("audio_codec")), is_video=True)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "unknown error"


def list_sequence(path: Path) -> list[Path]:
    """The image files of a folder (sorted by name) or of a printf pattern like ``shot.%04d.png``."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    else:
        if len(SEQUENCE_PATTERN.findall(path.name)) != 1:
            raise UserError(f"{path.name} is not an image sequence pattern: give one printf field like %04d")
        regex = re.compile(SEQUENCE_PATTERN.sub(lambda m: r"(\d{%s,})" % (m[1] or 1),
                                                re.escape(path.name).replace(r"\%", "%"), count=1))
        parent = path.parent if str(path.parent) else Path(".")
        candidates = [p for p in parent.iterdir() if regex.fullmatch(p.name)] if parent.is_dir() else []
        files = sorted(candidates, key=lambda p: int(regex.fullmatch(p.name)[1]))  # type: ignore[index]
    if not files:
        raise UserError(f"no images found for {path}")
    return files


def probe_sequence(path: Path, fps: str) -> VideoInfo:
    files = list_sequence(path)
    first = load_image(files[0])
    return VideoInfo(width=first.shape[1], height=first.shape[0], fps=fps, n_frames=len(files),
                     has_audio=False, is_video=False)


def extract_frames(source: Path, info: VideoInfo, out_dir: Path, size: tuple[int, int],
                   first: int = 1, last: int | None = None) -> int:
    """Write frames ``first..last`` of ``source`` at ``size`` into ``out_dir`` as frame_00001.png…

    The whole folder appears at once (built in a temp folder, then renamed), so an interrupted
    extraction leaves nothing that looks finished. Returns the number of frames.
    """
    last = min(last or info.n_frames, info.n_frames)
    if first > last:
        raise UserError(f"frame range starts at {first} but the input has {info.n_frames} frames")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.tmp"))
    try:
        if info.is_video:
            _extract_video(source, tmp, size, first, last)
        else:
            _extract_sequence(source, tmp, size, first, last)
        count = len(list(tmp.glob("frame_*.png")))
        if count == 0:
            raise UserError(f"no frames could be read from {source}")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
        return count
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def extract_frame(source: Path, info: VideoInfo, target: Path, size: tuple[int, int], index: int) -> None:
    """Write frame ``index`` (1-based, of the input) of ``source`` at ``size`` to ``target``, atomically
    (to repair one damaged frame; the same pixels as :func:`extract_frames` makes)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".frame.tmp"))
    try:
        if info.is_video:
            _extract_video(source, tmp, size, index, index)
        else:
            _extract_sequence(source, tmp, size, index, index)
        made = tmp / frame_name(1)
        if not made.is_file():
            raise UserError(f"frame {index} could not be read from {source}")
        os.replace(made, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _extract_video(source: Path, out_dir: Path, size: tuple[int, int], first: int, last: int) -> None:
    stream = ffmpeg.input(ffmpeg_path(source))
    # select keeps exact frame indices (seeking by time can be off by one at odd frame rates)
    video = stream.video.filter("select", f"between(n,{first - 1},{last - 1})")
    video = video.filter("scale", size[0], size[1], flags="area")
    out = ffmpeg.output(video, ffmpeg_path(out_dir / FRAME_PATTERN), start_number=1, fps_mode="passthrough")
    run_ffmpeg(out, f"extracting frames from {source}")


def _extract_sequence(source: Path, out_dir: Path, size: tuple[int, int], first: int, last: int) -> None:
    for index, path in enumerate(list_sequence(source)[first - 1:last], start=1):
        save_image(out_dir / frame_name(index), resize(load_image(path), size))


def run_ffmpeg(stream: ffmpeg.nodes.OutputStream, what: str) -> None:
    """Run an ffmpeg-python graph with our binary; failure is a UserError with ffmpeg's last line."""
    args = ffmpeg.compile(stream.global_args("-hide_banner", "-nostdin", "-loglevel", "error"),
                          cmd=ffmpeg_exe(), overwrite_output=True)
    log.debug("ffmpeg: %s", " ".join(args))
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        if "No space left" in proc.stderr:
            raise OSError(28, "No space left on device")
        raise UserError(f"ffmpeg failed {what}: {_last_line(proc.stderr)}")


def copy_audio(source: Path, target: Path) -> bool:
    """Copy the first audio stream of ``source`` as it is into a Matroska file (which takes any
    codec), atomically; False if ffmpeg cannot."""
    try:
        with replacing(target, suffix=".tmp.mka") as tmp:
            run_ffmpeg(ffmpeg.input(ffmpeg_path(source)).output(ffmpeg_path(tmp), map="0:a:0", acodec="copy", vn=None),
                       "copying the audio")
        return True
    except UserError:
        return False


def assemble_video(frames_dir: Path, n_frames: int, info: VideoInfo, output: Path,
                   audio_source: Path | None, first: int = 1, crf: int = 18) -> None:
    """Encode ``frames_dir``/frame_%05d.png into an H.264/yuv420p MP4 at the input's frame rate,
    with the input's audio (the same time range) when it has any; written atomically."""
    _encode_atomically(_frames_input(frames_dir, info), n_frames, info, output, audio_source, first, crf)


def assemble_side_by_side(left_dir: Path, right_dir: Path, n_frames: int, info: VideoInfo, output: Path,
                          audio_source: Path | None, first: int = 1, crf: int = 18) -> None:
    """As :func:`assemble_video`, with each frame of ``left_dir`` beside (left of) the frame of the
    same number in ``right_dir``: a comparison video twice as wide. Both folders' frames must have
    one height (the job's input frames and results are at the working size)."""
    video = ffmpeg.filter([_frames_input(left_dir, info), _frames_input(right_dir, info)], "hstack", inputs=2)
    _encode_atomically(video, n_frames, info, output, audio_source, first, crf)


def _frames_input(frames_dir: Path, info: VideoInfo) -> ffmpeg.nodes.FilterableStream:
    return ffmpeg.input(ffmpeg_path(frames_dir / FRAME_PATTERN), framerate=info.fps, start_number=1)


def _encode_atomically(video: ffmpeg.nodes.FilterableStream, n_frames: int, info: VideoInfo, output: Path,
                       audio_source: Path | None, first: int, crf: int) -> None:
    with replacing(output, suffix=f".tmp{output.suffix or '.mp4'}") as tmp:
        _encode(video, n_frames, info, tmp, audio_source, first, crf, Fraction(info.fps))


ENCODER_MARK = "videostyle"  # the comment tag of every video we encode (see :func:`encoded_here`)


def encoded_here(path: Path) -> bool:
    """``path`` is a video that videostyle encoded: its container's comment tag is ours. A camera's
    or an editor's file never is, whatever a job folder's records claim about it."""
    if not path.is_file():
        return False
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error",
                           "-i", ffmpeg_path(path), "-f", "ffmetadata", "-"], capture_output=True, text=True)
    # Matroska spells the key COMMENT
    tags = [line.partition("=") for line in proc.stdout.splitlines()]
    return proc.returncode == 0 and any(key.lower() == "comment" and value == ENCODER_MARK
                                        for key, _, value in tags)


def _encode(video: ffmpeg.nodes.FilterableStream, n_frames: int, info: VideoInfo, tmp: Path,
            audio_source: Path | None, first: int, crf: int, fps: Fraction) -> None:
    # yuv420p needs even sizes; pad by one pixel rather than fail on odd user-supplied frames
    video = video.filter("pad", "ceil(iw/2)*2", "ceil(ih/2)*2")
    streams = [video]
    kwargs = dict(vcodec="libx264", pix_fmt="yuv420p", crf=crf, movflags="+faststart",
                  r=info.fps, metadata=f"comment={ENCODER_MARK}", **{"frames:v": n_frames})
    if audio_source is not None and info.has_audio:
        start = float((first - 1) / fps)
        audio = ffmpeg.input(ffmpeg_path(audio_source), ss=start, t=float(n_frames / fps)).audio
        streams.append(audio)
        try:
            run_ffmpeg(ffmpeg.output(*streams, ffmpeg_path(tmp), acodec="copy", **kwargs), "encoding the video")
        except UserError:
            # Some audio codecs (PCM, Vorbis) cannot go into MP4 as they are; AAC always can.
            run_ffmpeg(ffmpeg.output(*streams, ffmpeg_path(tmp), acodec="aac", **kwargs), "encoding the video")
    else:
        run_ffmpeg(ffmpeg.output(video, ffmpeg_path(tmp), **kwargs), "encoding the video")
