"""The assemble stage: publish the finished frames as ``JOB/final`` and encode the video (and, when
asked, the side-by-side video: the input frames left, the results right).

Runs once every unit of the plan is done (by the local or Ray run, or by the farm worker that
takes the ``finish`` lock). Nothing here is trusted for itself: ``final/`` is rebuilt unless each
of its frames is the very file of its verified result, and a video is encoded again unless it
still has the byte size recorded when it was encoded for this style key.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from videostyle.errors import UserError
from videostyle.jobdir import JobDir, check_no_link_on_the_way, read_json, write_json
from videostyle.framestage import input_identity
from videostyle.plan import JobPlan, RunResult
from videostyle.units import EventCallback, StageEvent, ignore_events
from videostyle.userfiles import written_update
from videostyle.verify import file_digest, file_sha256, file_size, same_content
from videostyle.video_io import assemble_side_by_side, assemble_video

log = logging.getLogger(__name__)


def finish(plan: JobPlan, emit: EventCallback = ignore_events) -> RunResult:
    """Publish the final frames and encode the video (all units must be done)."""
    republished = publish_final(plan)
    request = plan.request
    if request.make_video and (republished or not video_is_current(plan)):
        emit(StageEvent("assemble", 1))
        assemble_video(plan.job.final_dir, plan.n_frames, plan.info, plan.output,
                       audio_source=audio_source(plan), first=_first_frame(plan))
        record = _encoded(plan, plan.output)
        plan.job.update_manifest(output=str(plan.output), video_output=record,
                                 **written_update(plan.job.read_manifest(), record))
    side = side_by_side_path(plan.output) if request.side_by_side else None
    if side is not None:
        write_side_by_side(plan, side, emit, republished)
    return RunResult(job_dir=plan.job.root, output=plan.output if request.make_video else None,
                     final_dir=plan.job.final_dir, n_frames=plan.n_frames, side_by_side=side)


def video_is_current(plan: JobPlan) -> bool:
    """The video at the plan's output was encoded from this style key and is still whole."""
    return _is_current(plan, "video_output", plan.output)


def side_by_side_path(output: Path) -> Path:
    """Where ``run --side-by-side`` writes the comparison video: beside the output, as MP4."""
    return output.with_name(f"{output.stem}_side_by_side.mp4")


def write_side_by_side(plan: JobPlan, path: Path, emit: EventCallback = ignore_events,
                       republished: bool = False) -> None:
    """Encode the job's input frames (left) beside its final frames (right) into ``path``, at the
    video's frame rate and with its audio, unless ``path`` already holds that video whole.
    ``final/`` must be published (``republished``: it just was, so anything older is stale)."""
    if not republished and _is_current(plan, "side_by_side_output", path):
        return
    emit(StageEvent("side-by-side", 1))
    assemble_side_by_side(plan.job.frames_dir, plan.job.final_dir, plan.n_frames, plan.info, path,
                          audio_source=audio_source(plan), first=_first_frame(plan))
    record = _encoded(plan, path)
    plan.job.update_manifest(side_by_side_output=record, **written_update(plan.job.read_manifest(), record))


def _first_frame(plan: JobPlan) -> int:
    return plan.request.frames[0] if plan.request.frames else 1


def _encoded(plan: JobPlan, path: Path) -> dict[str, object]:
    """What the manifest records of a video just encoded, to know it again (see :func:`_is_current`)."""
    return {"key": plan.style_key, "path": str(path), "bytes": file_size(path), "sha256": file_sha256(path)}


def _is_current(plan: JobPlan, record: str, path: Path) -> bool:
    """The video at ``path`` is the one the manifest's ``record`` says was encoded from this style
    key, and still holds those bytes."""
    encoded = plan.job.read_manifest().get(record, {})
    return (isinstance(encoded, dict) and encoded.get("key") == plan.style_key
            and encoded.get("path") == str(path) and file_size(path) == encoded.get("bytes")
            and file_sha256(path) == encoded.get("sha256"))


def audio_source(plan: JobPlan) -> Path | None:
    """The input when this machine sees it, else the job folder's copy of its audio."""
    if not plan.info.is_video:
        return None
    if plan.reads_input and plan.request.input.is_file() and input_identity(plan.request.input) == plan.frames_source:
        return plan.request.input
    copy = plan.job.audio_copy
    if plan.info.has_audio and not copy.is_file():
        log.warning("the input %s is not here and the job has no copy of its audio: the video is silent",
                    plan.request.input)
    return copy if copy.is_file() else None


def publish_final(plan: JobPlan) -> bool:
    """Make JOB/final hold the finished frames, as copies of the verified results.

    Copies, not links: a frame retouched in ``final/`` must never change the cached pass it came
    from. ``final/`` is never trusted for itself: each of its frames must hold its result's bytes,
    else the folder is built again; frames edited there since it was published are kept, moved
    aside to ``final.edited-N/`` with a note, never deleted. Returns whether it was rebuilt (so
    the video is encoded again).
    """
    job = plan.job
    sources = plan.final_frames
    for i, src in enumerate(sources, start=1):
        if not plan.check(src):
            raise UserError(f"frame {i} is not stylized yet or its result is damaged ({src}); "
                            "run the job again to finish it")
    marker = read_json(job.final_marker)
    if marker.get("key") == plan.style_key and all(
            same_content(job.final_path(i), src) for i, src in enumerate(sources, start=1)):
        return False
    staging = job.final_staging_dir()
    for path in (staging, job.final_dir, job.final_marker):
        check_no_link_on_the_way(job.root, path)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    for i, src in enumerate(sources, start=1):
        shutil.copyfile(src, staging / job.final_path(i).name)
    _keep_edited_final(job, marker)
    if job.final_dir.is_file():
        job.final_dir.unlink()
    shutil.rmtree(job.final_dir, ignore_errors=True)
    staging.rename(job.final_dir)
    digests = [file_digest(job.final_path(i)) for i in range(1, plan.n_frames + 1)]
    write_json(job.final_marker, {"key": plan.style_key, "frames": plan.n_frames, "digests": digests})
    return True


def _keep_edited_final(job: JobDir, marker: dict[str, object]) -> None:
    """Move ``final/`` aside when a frame in it is not what was published there (the user edited
    or added it); a ``final/`` with no record of what was published is kept too."""
    if not job.final_dir.is_dir():
        return
    published = marker.get("digests")
    files = sorted(p for p in job.final_dir.iterdir())
    if isinstance(published, list) and len(files) == len(published) and all(
            p.name == job.final_path(i).name and file_digest(p) == d
            for i, (p, d) in enumerate(zip(files, published), start=1)):
        return
    if not files:
        return
    n = 1
    while os.path.lexists(job.root / f"final.edited-{n}"):  # a planted link is a name taken too
        n += 1
    aside = job.root / f"final.edited-{n}"
    job.final_dir.rename(aside)
    log.warning("note: final/ held frames that differ from what was published there (edited by hand?); "
                "kept them in %s", aside)
