"""``videostyle run`` as a Python call: plan every stage of a job, hand the units to an executor.

    from videostyle.pipeline import RunRequest, run
    from videostyle.config import resolve_settings
    run(RunRequest(input=Path("clip.mp4"), styles=(Path("starry.jpg"),),
                   settings=resolve_settings("preview")))

The stages, one module each, every one cached in the job folder under a key that hashes what
produced it: frames (``framestage``: extraction, scene cuts) -> flows (``flowstage``) -> stylize
(``passes``) -> assemble (``assemble``: final frames, video). Changing the style keeps frames and
flows; changing the size recomputes everything.

``prepare`` does the cheap, deterministic part (extraction, cut detection, the list of units) and
saves the request in the job folder, so any worker on any machine can rebuild the same plan from
the folder alone (``plan_from_job``, ``videostyle work``). Who runs the units is the executor the
caller passes in (``videostyle.executor``); this module imports none but the local default.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from functools import cache, partial
from pathlib import Path
from typing import Any, Callable

from videostyle.assemble import finish, publish_final, side_by_side_path, write_side_by_side
from videostyle.config import Settings, StyleSettings, VideoSettings, stage_key
from videostyle.errors import UserError
from videostyle.executor import Executor, LocalExecutor
from videostyle.flowstage import (FlowPlan, PairMethods, check_flow_fits, long_term_camera_note, plan_flows,
                                  planned_source, recorded_source)
from videostyle.frame.colors import ColorStats
from videostyle.frame.device import resolve_device
from videostyle.frame.memory import check_frame_fits
from videostyle.frame.stylize import Stylizer
from videostyle.frame.vgg import weights_file
from videostyle.framestage import (RecordedFrames, clip_colors, ensure_frames, find_cuts, input_identity,
                                   keep_audio_copy, keep_style_copies, probe_input, recorded_frames, repair_frames)
from videostyle.images import load_image
from videostyle.jobdir import JobDir, check_tree_has_no_links
from videostyle.journal import Ledger
from videostyle.looks import frame_look, parse_keyframes
from videostyle.maskstage import MaskInput, MaskStore, check_mask_frames, job_masks, keep_masks, mask_inputs, note_mask_sizes
from videostyle.passes import (PassContext, batch_frames_note, coarse_passes_note, last_pass,
                               most_temporal_targets, multipass_long_term_offsets, needs_flow,
                               stylize_units)
from videostyle.plan import JobPlan, RunResult
from videostyle.request import (VIDEO_SUFFIXES, RunRequest, check_frames_of_clip, check_request, default_paths,
                                job_frame_count, load_request, request_to_json, worker_output)
from videostyle.shots import flow_pairs, plan_segments
from videostyle.units import EventCallback, StageEvent, ignore_events
from videostyle.userfiles import (check_inputs_outside_job, check_job_folder_is_ours, check_job_is_of_this_input,
                                  check_new_file, check_output_is_ours,
                                  input_files, recorded_inputs, same_file, videos_written)
from videostyle.verify import AsRecorded, file_digest, file_identity
from videostyle.video_io import VideoInfo, output_size

log = logging.getLogger(__name__)

__all__ = ["JobPlan", "RunRequest", "RunResult", "StageEvent", "plan_from_job", "prepare", "run", "side_by_side"]


def run(request: RunRequest, on_event: EventCallback | None = None,
        engine: Executor = LocalExecutor()) -> RunResult:
    """Run (or resume) the whole job with ``engine``; returns where the results are."""
    emit = on_event or ignore_events
    plan = prepare(request, emit)
    engine.run(plan, emit)
    return finish(plan, emit)


# ---------------------------------------------------------------- the planner and the worker


def prepare(request: RunRequest, emit: EventCallback | None = None) -> JobPlan:
    """The planner: check the request, extract frames, find cuts, list every unit of work, and
    record it all (the request included) in the job folder for workers."""
    emit = emit or ignore_events
    job_path, output = default_paths(request)
    job = JobDir(job_path)
    check_request(request)
    if request.flow_files is not None and not request.flow_files.is_dir():
        raise UserError(f"flow folder not found: {request.flow_files}")
    style_images, weights = check_before_any_work(request, job)
    mask_files = mask_inputs(request.style_masks, len(request.styles))
    info = probe_input(request.input, request.fps)  # a missing or unreadable input leaves no job folder
    check_user_files(request, job, output, mask_files)
    settings = request.settings
    check_run_fits((info.width, info.height), request.size, request.width or settings.video.width or None, settings)
    check_frames_of_clip(request, info.n_frames)
    check_mask_frames(mask_files, (request.frames or (1, None))[0], job_frame_count(request, info.n_frames))
    note_mask_sizes(mask_files, (info.width, info.height))
    for note in (coarse_passes_note(settings), batch_frames_note(settings), long_term_camera_note(settings.flow)):
        if note:
            log.warning("%s", note)
    prepare_job_folder(job, output, request.make_video)
    # with the output resolved here: a worker's current folder is not the planner's
    job.update_manifest(request=request_to_json(dataclasses.replace(request, output=output)),
                        weights={"path": str(weights), "identity": file_identity(weights)})
    frames = extract_frames(job, request, info, on_extract=lambda: emit(StageEvent("extract", 1)))
    job.update_manifest(style_copies=keep_style_copies(job, request.styles))
    keep_audio_copy(job, request.input, info)
    masks = keep_masks(job, mask_files, (frames.width, frames.height), frames.first, frames.count)
    plan, records = plan_units(request, job, output, info, frames, style_images, masks,
                               lambda: planned_source(PairMethods.of(request.settings.flow), request.flow_files))
    job.update_manifest(**records)
    return plan


def plan_from_job(job_dir: Path, output: Path | None = None, weights: Path | None = None,
                  overwrite: bool = False) -> JobPlan:
    """A job's plan from its folder alone, as a farm or Ray worker sees it: the frames, video facts,
    style images and audio the planner kept there, so a worker needs neither the input nor the
    planning machine's paths, and never decodes the input again. Nothing the planner recorded
    is written over.

    The folder may have been edited by anyone who can write to the share, so a worker writes only
    inside it and to ``output`` (given on the worker's own command line): without one, the video
    goes into the job folder under the name the planner gave it. ``weights`` is where the planner's
    VGG-19 weights lie on this machine, when not at the planner's path (checked to be the same file).
    An ``output`` given here is checked as ``run`` checks its own: none of the job's inputs, and an
    existing file is replaced only when this job wrote it, or with ``overwrite``.
    """
    request = load_request(job_dir)
    assert request.job_dir is not None
    chosen = output.absolute() if output is not None else worker_output(request.job_dir, request.output)
    request = dataclasses.replace(request, output=chosen)
    job = JobDir(request.job_dir.absolute())
    check_request(request)
    style_images, weights = check_before_any_work(request, job, weights)
    check_same_weights(job, weights)
    recorded = recorded_frames(job)
    if recorded is None:
        raise UserError(f"the job folder {job.root} has no record of its frames; a worker reads nothing outside "
                        "it: plan the job again with `videostyle run ... --plan-only` where the input is")
    info = recorded.info
    check_run_fits((info.width, info.height), (recorded.width, recorded.height), None, request.settings)
    if output is not None and request.make_video:
        check_new_file(chosen, recorded_inputs(job))
        check_output_is_ours(chosen, job.root, videos_written(job.read_manifest()), overwrite)
    prepare_job_folder(job, chosen, request.make_video)
    frames = repair_frames(job, recorded, None)
    masks = job_masks(job, request.style_masks, (frames.width, frames.height), frames.first, frames.count)
    plan, _planner_records = plan_units(
        request, job, chosen, info, frames, style_images, masks,
        lambda: recorded_source(job, PairMethods.of(request.settings.flow), request.flow_files),
        weights)
    return dataclasses.replace(plan, reads_input=False)


def side_by_side(job_dir: Path, output: Path | None = None, overwrite: bool = False) -> Path:
    """The side-by-side video of a finished job (its input frames left, its results right), as
    ``run --side-by-side`` makes it; by default into the job folder, beside the video's name there
    (a job folder's word is never taken for a path outside it). Skipped when already up to date.
    An existing file (the job's own video too) is replaced only when it is this job's side-by-side
    video, or with ``overwrite``; never one of the job's inputs."""
    plan = plan_from_job(job_dir)
    path = output.absolute() if output is not None else side_by_side_path(plan.output)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise UserError(f"side-by-side video {path.name} must end in {', '.join(VIDEO_SUFFIXES)}")
    check_new_file(path, recorded_inputs(plan.job))
    manifest = plan.job.read_manifest()
    video = manifest.get("video_output")
    if isinstance(video, dict) and path.exists() and same_file(path, Path(str(video.get("path")))):
        if not overwrite:
            raise UserError(f"output {path} is this job's stylized video; give the side-by-side video another -o, "
                            "or pass --overwrite to replace it")
    else:
        check_output_is_ours(path, plan.job.root, videos_written(manifest), overwrite)
    check_output_writable(path, plan.job.root)
    republished = publish_final(plan)  # every frame must be done; final/ as a run would leave it
    write_side_by_side(plan, path, republished=republished)
    return path


def extract_frames(job: JobDir, request: RunRequest, info: VideoInfo, on_extract: Callable[[], None]) -> RecordedFrames:
    """The frames stage at the request's size and range (see ``framestage.ensure_frames``)."""
    return ensure_frames(job, request.input, info, request.size, request.width or request.settings.video.width or None,
                         request.frames, on_extract)


def plan_units(request: RunRequest, job: JobDir, output: Path, info: VideoInfo, frames: RecordedFrames,
               style_images: list[Any], masks: MaskStore | None,
               flow_source: Callable[[], str], weights: Path | None = None) -> tuple[JobPlan, dict[str, Any]]:
    """The units of the flows and stylize stages for frames already in the job, and what the
    planner records of them in job.json (a worker only rebuilds them). ``flow_source`` says what
    the flows come from (asked only when flows are needed); ``weights``, where this machine reads
    the settings' VGG-19 weights from (the style key keeps the settings' path)."""
    settings = request.settings
    n_frames, frames_key, height, width = frames.count, frames.key, frames.height, frames.width
    cuts = find_cuts(job, request.cuts, settings.video, frames_key, n_frames)
    segments, anchors = plan_segments(n_frames, cuts, settings.video.segment_length)
    flows: FlowPlan | None = None
    records: dict[str, Any] = {}
    if needs_flow(settings, n_frames):
        # Both algorithms warp the neighbours in, whatever long-term offsets their temporal loss uses.
        offsets = {1} | set(settings.flow.long_term)
        flows = plan_flows(job, frames_key, flow_source(), flow_pairs(segments, sorted(offsets)),
                           PairMethods.of(settings.flow), request.flow_files)
        records["flow"] = flows.record
    style_key = stage_key("stylize", frames_key, flows.store.root.name if flows else None,
                              settings.style, _look_settings(settings), cuts,
                              [file_digest(p) for p in request.styles], masks.root.name if masks else None)
    ctx = PassContext(job=job, style_key=style_key, flows=flows.store if flows else None,
                      n_frames=n_frames, settings=settings, segments=tuple(segments), anchors=tuple(anchors),
                      stylizer=cache(lambda: Stylizer(style_images, _weights_here(settings, weights), (height, width),
                                                      settings.video.device,
                                                      color_reference=_color_reference(job, settings, n_frames),
                                                      temporal_targets=most_temporal_targets(settings))),
                      look=partial(frame_look, parse_keyframes(settings.video.style_blend_keyframes),
                                   masks.load if masks else None))
    records["stylize"] = {"key": style_key, "passes": last_pass(settings), "anchors": anchors,
                          "settings": dataclasses.asdict(settings), "styles": [str(p) for p in request.styles]}
    units = (flows.units if flows else []) + stylize_units(ctx)
    plan = JobPlan(request=request, job=job, info=info, n_frames=n_frames, output=output,
                   units=tuple(units), ctx=ctx, style_key=style_key, cuts=tuple(cuts),
                   check=AsRecorded(Ledger(job.root), height, width), frames_source=frames.source)
    return plan, records


def _weights_here(settings: Settings, weights: Path | None) -> StyleSettings:
    return settings.style if weights is None else dataclasses.replace(settings.style, weights=str(weights))


def _color_reference(job: JobDir, settings: Settings, n_frames: int) -> ColorStats | None:
    # Read from the frames only when the colour transfer needs them (the frames key is in the
    # style key, so the recoloured style is cached with what it was measured on).
    return clip_colors(job, n_frames) if settings.style.color_transfer == "histogram" else None


# Video settings added after jobs were made with the behaviour of their default: they enter a job's
# stylize key only when set to something else.
KEYED_ONLY_OFF_DEFAULT = ("long_term_hold", "long_term_criterion", "previous_pass_weight", "settle_passes",
                          "curvature_pairs", "blend_long_term")


def _look_settings(settings: Settings) -> dict[str, Any]:
    # The device changes speed, not the look, so workers on different devices may share a job;
    # so does batching frames (each keeps its own optimiser: the same results up to rounding, as
    # on another device), so a job may be resumed with or without it; the work width is already
    # part of the frames key.
    video = dataclasses.asdict(settings.video)
    for name in ("device", "width", "batch_frames"):
        video.pop(name)
    if settings.video.algorithm == "singlepass" or multipass_long_term_offsets(settings):
        video["long_term"] = settings.flow.long_term
    for name in KEYED_ONLY_OFF_DEFAULT:  # at its default it changes nothing: older jobs keep their results
        if video[name] == VideoSettings.__dataclass_fields__[name].default:
            video.pop(name)
    return video


# ---------------------------------------------------------------- checks before any work


def check_before_any_work(request: RunRequest, job: JobDir,
                          weights_here: Path | None = None) -> tuple[list[Any], Path]:
    """Everything else that can be checked without a frame (after ``check_request``), so a bad
    value costs no extraction: the style images (read), the weights file (the settings', or
    ``weights_here``), and that the job folder's names are safe to use. Returns the style images
    and the weights file."""
    style_images = [load_image(path) for path in request.styles]
    weights = weights_file(weights_here if weights_here is not None else request.settings.style.weights)
    check_job_layout(job)
    return style_images, weights


def check_run_fits(source_size: tuple[int, int], size: tuple[int, int] | None, width: int | None,
                   settings: Settings) -> None:
    """:func:`check_frame_fits` and :func:`check_flow_fits` for a run's frames: ``source_size``
    (W, H) of the input, worked at ``size`` or ``width`` as the frames are extracted (see
    ``video_io.output_size``)."""
    work_width, work_height = output_size(source_size, size, width)
    check_frame_fits(work_height, work_width, settings.style, resolve_device(settings.video.device),
                     temporal_targets=most_temporal_targets(settings))
    upsample = settings.flow.upsample  # the estimator works on frames this many times larger
    for method in {settings.flow.method, PairMethods.of(settings.flow).beyond_neighbours}:
        check_flow_fits(work_width * upsample, work_height * upsample, method=method)


def check_user_files(request: RunRequest, job: JobDir, output: Path, masks: list[MaskInput]) -> None:
    """Nothing the user handed over is written over (see ``videostyle.userfiles``)."""
    inputs = [*input_files(request.input), *request.styles, *(file for mask in masks for file in mask.files)]
    check_job_folder_is_ours(job.root)
    check_inputs_outside_job(job.root, inputs)
    check_job_is_of_this_input(job, request.input, input_identity(request.input))
    written = videos_written(job.read_manifest())
    videos = [output] if request.make_video else []
    videos += [side_by_side_path(output)] if request.side_by_side else []
    for path in videos:
        check_new_file(path, inputs)
        check_output_is_ours(path, job.root, written, request.overwrite)


def prepare_job_folder(job: JobDir, output: Path, make_video: bool) -> None:
    if make_video:
        check_output_writable(output, job.root)
    job.create()


def check_job_layout(job: JobDir) -> None:
    """Nothing in the job folder is a symbolic link, at any depth: a share's user who turned
    ``final`` or ``stylized/<key>/pass_01`` into a link to their home must not make a worker write
    or delete there, nor ``frames/frame_00001.png`` into a link make it read any image. (Each
    write checks its own path again, just before it is made.)"""
    if job.root.is_dir():
        check_tree_has_no_links(job.root)


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
