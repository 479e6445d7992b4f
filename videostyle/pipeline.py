"""``videostyle run`` as a Python call: plan every stage of a job, run what is not done yet.

    from videostyle.pipeline import RunRequest, run
    from videostyle.config import resolve_settings
    run(RunRequest(input=Path("clip.mp4"), styles=(Path("starry.jpg"),),
                   settings=resolve_settings("preview")))

Stages, each cached in the job folder under a key that hashes what produced it:
extract frames -> scene cuts -> flows and masks -> stylized passes -> final frames -> video.
Changing the style keeps frames and flows; changing the size recomputes everything.

``prepare`` does the cheap, deterministic part (extraction, cut detection, the list of units)
and saves the request in the job folder, so any worker on any machine can rebuild the same plan
from the folder alone (``videostyle work``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cache, cached_property
from pathlib import Path
from typing import Any, Callable

from videostyle import __version__
from videostyle.config import Settings, from_dict, settings_hash, validate
from videostyle.errors import UserError
from videostyle.flowstage import FlowStore, flow_units
from videostyle.images import load_image
from videostyle.jobdir import JobDir, inside_job, read_json, resolves_inside, write_json
from videostyle.jobinputs import (RecordedFrames, ensure_frames, input_identity, keep_style_copies, recorded_frames,
                                  repair_frames, verified_style_copies)
from videostyle.journal import Ledger, record_done
from videostyle.memory import check_run_fits
from videostyle.passes import PassContext, last_pass, needs_flow, stylize_units
from videostyle.scheduler import Progress, Unit, by_critical_path, execute
from videostyle.shots import detect_cuts, flow_pairs, plan_segments
from videostyle.stylize import Stylizer
from videostyle.verify import OutputCheck, file_digest, file_identity, file_size, same_content
from videostyle.vgg import weights_file
from videostyle.video_io import (VideoInfo, assemble_video, copy_audio, frame_name, is_image_sequence,
                                 probe_sequence, probe_video)

log = logging.getLogger(__name__)

AUDIO_COPY = "audio.mka"  # the input's audio, for the worker that encodes where the input is not


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


@dataclass(frozen=True)
class RunResult:
    job_dir: Path
    output: Path | None
    final_dir: Path
    n_frames: int


@dataclass(frozen=True)
class StageEvent:
    """Sent when a stage starts, so a front end can start a progress bar."""

    stage: str
    total: int


EventCallback = Callable[[StageEvent | Progress], None]


@dataclass(frozen=True)
class JobPlan:
    """Everything needed to do, resume or share a job's work."""

    request: RunRequest
    job: JobDir
    info: VideoInfo
    n_frames: int
    output: Path
    units: tuple[Unit, ...]
    ctx: PassContext
    style_key: str
    cuts: tuple[int, ...]
    check: OutputCheck  # whether a unit's output may be trusted (see videostyle.verify)
    frames_source: str = ""  # identity of the input the frames came from (see jobinputs.input_identity)

    @cached_property
    def units_by_critical_path(self) -> tuple[Unit, ...]:
        """The units, longest chain of work behind them first (worked out once per plan)."""
        return tuple(by_critical_path(self.units))


def default_paths(request: RunRequest) -> tuple[Path, Path]:
    stem = request.input.stem.replace("%", "") or "frames"
    job = request.job_dir or Path.cwd() / f"{stem}.videostyle"
    output = request.output or Path.cwd() / f"{stem}_stylized.mp4"
    return job.absolute(), output.absolute()


@dataclass(frozen=True)
class Engine:
    """Where units run: here, one after another (``local``), or as Ray tasks (``ray``)."""

    kind: str = "local"  # local | ray
    address: str | None = None  # Ray cluster to join; None starts an embedded one
    num_cpus: int | None = None  # embedded Ray only
    gpus_per_task: float = 0.0
    lock_ttl: float = 600.0


def run(request: RunRequest, on_event: EventCallback | None = None, engine: Engine = Engine()) -> RunResult:
    """Run (or resume) the whole job; returns where the results are."""
    emit = on_event or (lambda event: None)
    plan = prepare(request, emit)
    if engine.kind == "ray":
        from videostyle.ray_engine import run_units_on_ray
        emit(StageEvent("flow+stylize", len(plan.units)))
        run_units_on_ray(plan, address=engine.address, num_cpus=engine.num_cpus,
                         gpus_per_task=engine.gpus_per_task, lock_ttl=engine.lock_ttl, on_progress=emit)
    elif engine.kind == "local":
        for stage in ("flow", "stylize"):
            units = [u for u in plan.units if u.stage == stage]
            if units:
                emit(StageEvent(stage, len(units)))
                execute(units, plan.job.locks_dir, plan.check, lock_ttl=engine.lock_ttl, on_progress=emit)
    else:
        raise UserError(f"unknown engine {engine.kind!r}; choose local or ray")
    return finish(plan, emit)


def recording(job: JobDir, unit: Unit) -> Unit:
    """``unit``, its work followed by a journal line with its outputs' byte sizes. Every engine
    runs a unit's work under its lock, so the outputs are recorded before another worker can see
    the unit free, and a file that is not recorded (or no longer has its recorded size) is redone."""
    def work() -> Any:
        start = time.monotonic()
        result = unit.work()
        record_done(job.root, unit.name, time.monotonic() - start, unit.outputs,
                    iterations=getattr(result, "iterations", 0), stop_reason=getattr(result, "stop_reason", ""))
        return result

    return dataclasses.replace(unit, work=work)


def prepare(request: RunRequest, emit: EventCallback | None = None, *, from_job: bool = False) -> JobPlan:
    """Check the request, extract frames, find cuts, and list every unit of work.

    ``from_job``: the job folder was planned already (a worker's view, see ``plan_from_job``): its
    recorded frames and video facts are used, the input is not read again, and nothing the
    planner recorded is written over.
    """
    emit = emit or (lambda event: None)
    settings = request.settings
    job_path, output = default_paths(request)
    job = JobDir(job_path)
    style_images, weights = check_before_any_work(request, job, from_job)
    recorded = recorded_frames(job) if from_job else None
    # a missing or unreadable input leaves no job folder behind
    info = recorded.info if recorded else probe_input(request)
    check_run_fits((info.width, info.height), request.size, request.width or settings.video.width or None, settings)
    if not from_job:
        check_frames_of_clip(request, info.n_frames)
    if request.make_video:
        check_output_writable(output, job.root)
    job.create()
    if not from_job:  # with the output resolved here: a worker's current folder is not the planner's
        job.update_manifest(request=request_to_json(dataclasses.replace(request, output=output)),
                            weights={"path": str(weights), "identity": file_identity(weights)})

    frames = (repair_frames(job, recorded, request.input) if recorded
              else prepare_frames(job, request, info, emit))
    n_frames, frames_key, height, width = frames.count, frames.key, frames.height, frames.width
    if not from_job:
        keep_copies(job, request, info)
    cuts = find_cuts(job, request, frames_key, n_frames)
    segments, anchors = plan_segments(n_frames, cuts, settings.video.segment_length)

    flows, units = None, []
    if needs_flow(settings, n_frames):
        # Single-pass always warps the previous frame in, whatever offsets its temporal loss uses.
        offsets = {1} | set(settings.flow.long_term if settings.video.algorithm == "singlepass" else ())
        flows, units = plan_flow(job, request, frames_key, flow_pairs(segments, sorted(offsets)), from_job)

    style_key = settings_hash(__version__, frames_key, flows.root.name if flows else None,
                              settings.style, _look_settings(settings), cuts,
                              [file_digest(p) for p in request.styles])
    ctx = PassContext(frames_dir=job.frames_dir, stylized_dir=job.root / "stylized" / style_key, flows=flows,
                      n_frames=n_frames, settings=settings, segments=tuple(segments), anchors=tuple(anchors),
                      stylizer=cache(lambda: Stylizer(style_images, settings.style, (height, width),
                                                      settings.video.device)))
    if not from_job:
        job.update_manifest(stylize={"key": style_key, "passes": last_pass(settings), "anchors": anchors,
                                     "settings": dataclasses.asdict(settings),
                                     "styles": [str(p) for p in request.styles]})
    units += stylize_units(ctx)
    return JobPlan(request=request, job=job, info=info, n_frames=n_frames, output=output,
                   units=tuple(recording(job, unit) for unit in units), ctx=ctx, style_key=style_key,
                   cuts=tuple(cuts), check=OutputCheck(Ledger(job.root), height, width),
                   frames_source=frames.source)


def finish(plan: JobPlan, emit: EventCallback | None = None) -> RunResult:
    """Publish the final frames and encode the video (all units must be done)."""
    emit = emit or (lambda event: None)
    republished = publish_final(plan)
    request = plan.request
    encoded = plan.job.read_manifest().get("video_output", {})
    up_to_date = (not republished and encoded.get("key") == plan.style_key
                  and encoded.get("path") == str(plan.output) and file_size(plan.output) == encoded.get("bytes"))
    if request.make_video and not up_to_date:
        emit(StageEvent("assemble", 1))
        assemble_video(plan.job.final_dir, plan.n_frames, plan.info, plan.output,
                       audio_source=audio_source(plan),
                       first=request.frames[0] if request.frames else 1)
        plan.job.update_manifest(output=str(plan.output),
                                 video_output={"key": plan.style_key, "path": str(plan.output),
                                               "bytes": file_size(plan.output)})
    return RunResult(job_dir=plan.job.root, output=plan.output if request.make_video else None,
                     final_dir=plan.job.final_dir, n_frames=plan.n_frames)


def audio_source(plan: JobPlan) -> Path | None:
    """The input when this machine sees it, else the job folder's copy of its audio."""
    if not plan.info.is_video:
        return None
    if plan.request.input.is_file() and input_identity(plan.request.input) == plan.frames_source:
        return plan.request.input
    copy = plan.job.root / AUDIO_COPY
    if plan.info.has_audio and not copy.is_file():
        log.warning("the input %s is not here and the job has no copy of its audio: the video is silent",
                    plan.request.input)
    return copy if copy.is_file() else None


def _look_settings(settings: Settings) -> dict[str, Any]:
    # The device changes speed, not the look, so workers on different devices may share a job;
    # the work width is already part of the frames key.
    video = dataclasses.asdict(settings.video)
    for name in ("device", "width"):
        video.pop(name)
    if settings.video.algorithm == "singlepass":
        video["long_term"] = settings.flow.long_term
    return video


# ---------------------------------------------------------------- the request in the job folder


def request_to_json(request: RunRequest) -> dict[str, Any]:
    data = dataclasses.asdict(request)
    for name in ("input", "output", "job_dir", "flow_files"):
        if data[name] is not None:
            data[name] = str(Path(data[name]).absolute())
    data["styles"] = [str(Path(p).absolute()) for p in request.styles]
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
                          make_video=data.get("make_video", True), **paths)
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


def plan_from_job(job_dir: Path, output: Path | None = None) -> JobPlan:
    """A job's plan from its folder alone, as a farm or Ray worker sees it: the frames, video facts,
    style images and audio the planner kept there, so a worker needs neither the input nor the
    planning machine's paths, and never decodes the input again.

    The folder may have been edited by anyone who can write to the share, so a worker writes only
    inside it and to ``output`` (given on the worker's own command line): without one, the video
    goes into the job folder under the name the planner gave it.
    """
    request = load_request(job_dir)
    assert request.job_dir is not None
    chosen = output.absolute() if output is not None else worker_output(request.job_dir, request.output)
    return prepare(dataclasses.replace(request, output=chosen), from_job=True)


VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv")


def worker_output(job_root: Path, planned: Path | None) -> Path:
    """Where a worker encodes the video when its command line names no output: the planned video's
    file name, inside the job folder (a job folder's word is never taken for a path outside it)."""
    name = planned.name if planned is not None else "stylized.mp4"
    if Path(name).suffix.lower() not in VIDEO_SUFFIXES:
        raise UserError(f"the job folder names the video {name!r}, not a video file name "
                        f"({', '.join(VIDEO_SUFFIXES)}); give the worker an output with -o")
    return inside_job(job_root, name, "video output")


def keep_copies(job: JobDir, request: RunRequest, info: VideoInfo) -> None:
    """Copy the style images and the input's audio into the job folder, for workers elsewhere."""
    job.update_manifest(style_copies=keep_style_copies(job, request.styles))
    if info.is_video and info.has_audio and not (job.root / AUDIO_COPY).is_file():
        if not copy_audio(request.input, job.root / AUDIO_COPY):
            log.warning("could not copy the audio of %s into the job folder", request.input)


# ---------------------------------------------------------------- stages


def check_before_any_work(request: RunRequest, job: JobDir, from_job: bool) -> tuple[list[Any], Path]:
    """Everything that can be checked without a frame, so a bad value costs no extraction: the
    request, the style images (read), the weights file, and (for a worker) that the job folder's
    names and weights are safe to use. Returns the style images and the weights file."""
    check_request(request)
    if not from_job and request.flow_files is not None and not request.flow_files.is_dir():
        raise UserError(f"flow folder not found: {request.flow_files}")
    style_images = [load_image(path) for path in request.styles]
    weights = weights_file(request.settings.style.weights)
    check_job_layout(job)
    if from_job:
        check_same_weights(job, weights)
    return style_images, weights


def check_request(request: RunRequest) -> None:
    """Refuse what no run can use, before anything is read or written: the settings (by their
    declarations, see ``config.validate``) and the request's own values, as one line each."""
    validate(request.settings, len(request.styles))
    if not request.styles:
        raise UserError("at least one --style image is needed")
    if request.size is not None and not (_is_pair_of_ints(request.size) and min(request.size) >= 16):
        raise UserError(f"size must be (width, height), each at least 16 (got {request.size!r})")
    if request.width is not None and not (_is_int(request.width) and request.width >= 16):
        raise UserError(f"width must be a whole number of at least 16 (got {request.width!r})")
    if request.frames is not None:
        check_frame_range(request.frames)
    parse_fps(request.fps)
    if request.cuts is not None and not all(_is_int(c) and c >= 1 for c in request.cuts):
        raise UserError(f"cuts must be frame numbers from 1 (got {request.cuts!r})")
    if request.flow_files is not None and not isinstance(request.flow_files, Path):
        raise UserError(f"flow_files must be a folder path (got {request.flow_files!r})")


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
    count = (last or n_frames) - first + 1
    bad = [c for c in request.cuts or () if c > count]
    if bad:
        raise UserError(f"cut frame(s) {bad} outside the clip's frames 1-{count}")


def parse_fps(text: str) -> Fraction:
    """A frame rate like ``25``, ``29.97`` or ``30000/1001``, positive."""
    try:
        fps = Fraction(str(text).strip())
    except (ValueError, ZeroDivisionError):
        fps = Fraction(0)
    if fps <= 0:
        raise UserError(f"fps must be a positive rate like 25, 29.97 or 30000/1001 (got {text!r})")
    return fps


JOB_ENTRIES = ("job.json", "journal.jsonl", "final.json", "frames", "flow", "stylized", "final", "locks",
               "styles", AUDIO_COPY)


def check_job_layout(job: JobDir) -> None:
    """Every entry the job writes into or deletes stays inside the job folder: a share's user who
    turned ``final`` into a link to their home must not make a worker write or delete there."""
    for name in JOB_ENTRIES:
        path = job.root / name
        if path.is_symlink() and not resolves_inside(path, job.root):
            raise UserError(f"the job folder's {name} is a symbolic link leading outside it "
                            f"(to {os.readlink(path)}); refusing to write there")


def check_same_weights(job: JobDir, weights: Path) -> None:
    """A worker's VGG-19 weights are the planner's (the same path may hold other weights here)."""
    recorded = job.read_manifest().get("weights", {})
    identity = recorded.get("identity") if isinstance(recorded, dict) else None
    if isinstance(identity, str) and identity != file_identity(weights):
        raise UserError(f"the VGG-19 weights {weights} on this machine differ from those the job was "
                        "planned with; install the same weights here")


def check_output_writable(output: Path, job_root: Path) -> None:
    """The output can be written (its folder exists, or is the job folder, made next)."""
    if output.is_dir():
        raise UserError(f"output {output} is a folder; give a file name like out.mp4")
    parent = output.parent
    if parent == job_root and not parent.exists():
        return
    if not parent.is_dir():
        raise UserError(f"cannot write output {output}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise UserError(f"cannot write output {output}: folder {parent} is not writable")


def probe_input(request: RunRequest) -> VideoInfo:
    if is_image_sequence(request.input):
        return probe_sequence(request.input, request.fps)
    return probe_video(request.input)


def prepare_frames(job: JobDir, request: RunRequest, info: VideoInfo, emit: EventCallback) -> RecordedFrames:
    """Extract the input frames unless the job already has them for these settings."""
    return ensure_frames(job, request.input, info, request.size, request.width or request.settings.video.width or None,
                         request.frames, on_extract=lambda: emit(StageEvent("extract", 1)))


def find_cuts(job: JobDir, request: RunRequest, frames_key: str, n_frames: int) -> list[int]:
    """The user's cuts, or detected ones (cached in the manifest with what produced them)."""
    v = request.settings.video
    if request.cuts is not None:
        return sorted(c for c in set(request.cuts) if c > 1)
    if v.scene_cuts == "off":
        return []
    key = settings_hash("cuts", frames_key, v.cut_threshold)
    recorded = job.read_manifest().get("cuts", {})
    if recorded.get("key") == key:
        return list(recorded["frames"])
    cuts = detect_cuts(n_frames, lambda i: load_image(job.frames_dir / frame_name(i)), v.cut_threshold)
    job.update_manifest(cuts={"key": key, "frames": cuts})
    if cuts:
        log.info("scene cuts before frames %s", cuts)
    return cuts


def plan_flow(job: JobDir, request: RunRequest, frames_key: str, pairs: list[tuple[int, int]],
              from_job: bool = False) -> tuple[FlowStore, list[Unit]]:
    settings = request.settings
    source = flow_source(job, request, from_job)
    # Keyed by the frames and the method only: pairs added later (longer offsets) land beside
    # the ones already computed.
    key = settings_hash("flow", frames_key, source)
    store = FlowStore(job.flow_dir(key))
    units = flow_units(store, pairs, lambda i: load_image(job.frames_dir / frame_name(i)),
                       settings.flow.method, request.flow_files)
    if not from_job:
        job.update_manifest(flow={"key": key, "method": source, "pairs": [list(p) for p in pairs]})
    return store, units


def flow_source(job: JobDir, request: RunRequest, from_job: bool) -> str:
    """What the flows come from: the method, or the user's files as the planner hashed them. A
    worker takes the planner's record (it may not see the folder, and needs it only for flows not
    made yet); a folder it does see must hold the same files."""
    if request.flow_files is None:
        return request.settings.flow.method
    if not from_job:
        return f"files:{file_tree_digest(request.flow_files)}"
    recorded = job.read_manifest().get("flow", {}).get("method")
    if not (isinstance(recorded, str) and recorded.startswith("files:")):
        raise UserError("the job folder does not record which flow files it was planned with; "
                        "run `videostyle run` again")
    folder = request.flow_files
    if folder.exists() and (not folder.is_dir() or f"files:{file_tree_digest(folder)}" != recorded):
        raise UserError(f"the flow files in {folder} differ from those the job was planned with; "
                        "run `videostyle run` again to plan with these")
    return recorded


def file_tree_digest(folder: Path) -> str:
    if not folder.is_dir():  # a worker's view: the folder the planner named is not on this machine
        raise UserError(f"flow folder not found: {folder}")
    h = hashlib.sha256()
    for path in sorted(folder.glob("*.flo")) + sorted(folder.glob("*.pgm")):
        h.update(path.name.encode())
        stat = path.stat()
        h.update(f"{stat.st_size}:{stat.st_mtime_ns};".encode())
    return h.hexdigest()[:16]


def publish_final(plan: JobPlan) -> bool:
    """Make JOB/final hold the finished frames (hard links where possible, else copies).

    ``final/`` is never trusted for itself: each of its frames must be the very file of its
    verified result (or hold the same bytes), else the folder is built again. Returns whether it
    was (so the video is encoded again).
    """
    job, ctx = plan.job, plan.ctx
    sources = [ctx.final_path(i) for i in range(1, ctx.n_frames + 1)]
    for i, src in enumerate(sources, start=1):
        if not plan.check(src):
            raise UserError(f"frame {i} is not stylized yet or its result is damaged ({src}); "
                            "run the job again to finish it")
    marker = job.root / "final.json"
    if read_json(marker).get("key") == plan.style_key and all(
            same_content(job.final_dir / frame_name(i), src) for i, src in enumerate(sources, start=1)):
        return False
    tmp = job.root / f".final.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for i, src in enumerate(sources, start=1):
        try:
            os.link(src, tmp / frame_name(i))
        except OSError:
            shutil.copyfile(src, tmp / frame_name(i))
    if job.final_dir.is_symlink() or job.final_dir.is_file():
        job.final_dir.unlink()
    shutil.rmtree(job.final_dir, ignore_errors=True)
    tmp.rename(job.final_dir)
    write_json(marker, {"key": plan.style_key, "frames": ctx.n_frames})
    return True
