"""What a run must never destroy: the files the user handed over, a folder that is not a job, and
an output videostyle did not write.

A job writes into its folder and into its one output, and replaces both freely; everything else
on the user's disk is read-only to it. So before the first write the planner checks, in one line
each, that the output is not one of the inputs (whatever path names it), that the job folder is
empty, new or a videostyle job of this same input, and that an existing output was written by
this job (or the user said ``--overwrite``). The model is git's: a command that would destroy
work it did not make refuses and says how to go on.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from videostyle.errors import UserError
from videostyle.jobdir import MANIFEST, JobDir
from videostyle.verify import file_sha256
from videostyle.video_io import encoded_here, is_image_sequence, list_sequence

log = logging.getLogger(__name__)


def input_files(path: Path) -> list[Path]:
    """The files an input names: the video, or every image of a sequence (none when missing)."""
    if is_image_sequence(path):
        try:
            return list_sequence(path)
        except UserError:
            return []
    return [path] if path.exists() else []


def same_file(a: Path, b: Path) -> bool:
    """``a`` and ``b`` are one file (hard link, symbolic link, other spelling), or the same path."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(os.path.abspath(a)) == Path(os.path.abspath(b))


def check_output_is_not_an_input(output: Path, inputs: Iterable[Path], what: str = "output",
                                 option: str = "-o") -> None:
    """The file to write is none of the user's inputs (the clip, a style image, a mask, a frame of a
    sequence), whatever path names it, and lies in no folder given as an input (a frame folder,
    which would gain a frame)."""
    for path in inputs:
        if same_file(output, path):
            raise UserError(f"{what} {output} is one of the inputs ({path}); give another {option} so it is not "
                            "overwritten")
        if path.is_dir() and _lies_in(output, path):
            raise UserError(f"{what} {output} lies in the input folder {path}; give another {option}")


def _lies_in(path: Path, folder: Path) -> bool:
    """``path`` is ``folder`` or lies in it, symbolic links resolved."""
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(folder))


def _entry_holding(entries: Iterable[Path], path: Path) -> Path | None:
    """The job folder entry that ``path`` is or lies in, if any."""
    return next((entry for entry in entries if _lies_in(path, entry)), None)


def check_output_outside_job_files(output: Path, what: str = "output", option: str = "-o") -> None:
    """A file a command writes is none of a job folder's own files and lies in none of its
    folders (frames/, flow/, final/...), whichever job it is: a contact sheet written over a cached
    frame, or a plot into final/, would damage the job behind its records. Beside them, in the
    job folder itself, is fine."""
    for folder in Path(os.path.realpath(output)).parents:
        job = JobDir(folder)
        if job.exists() and (entry := _entry_holding(job.entries(), output)) is not None:
            name = entry.relative_to(folder).as_posix() + "/" * entry.is_dir()
            raise UserError(f"{what} {output} would be written in {name} of the job "
                            f"folder {folder}, which the job keeps for itself; give another {option}")


def check_new_file(output: Path, inputs: Iterable[Path], what: str = "output", option: str = "-o") -> None:
    """A file a command is told to write destroys nothing the user handed over and no job's files."""
    check_output_is_not_an_input(output, inputs, what, option)
    check_output_outside_job_files(output, what, option)


def recorded_inputs(job: JobDir) -> list[Path]:
    """The files a job was planned from, as its job.json names them (the clip or each frame of its
    sequence, the styles and masks where the user keeps them). Read from a folder anyone may edit,
    so they only ever make a write be refused, never direct one."""
    request = job.read_manifest().get("request")
    if not isinstance(request, dict):
        return []
    named: list[Path] = []
    for value in [request.get("input"), *_strings(request.get("styles")), *_strings(request.get("style_masks"))]:
        if isinstance(value, str) and value:
            named.append(Path(value))
    return named + [file for path in named if is_image_sequence(path) for file in input_files(path)]


def _strings(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else []


def check_inputs_outside_job(job_root: Path, inputs: Iterable[Path]) -> None:
    """No input lies in a folder the job rewrites (a sequence in ``JOB/frames`` would be replaced
    by the extracted frames)."""
    owned = [entry for entry in JobDir(job_root).entries() if entry.name not in (MANIFEST,)]
    for path in inputs:
        if (entry := _entry_holding(owned, path)) is not None:
            raise UserError(f"input {path} lies in {entry.relative_to(job_root)}/ of the job folder {job_root}, "
                            "which the job rewrites; give another --job-dir")


def check_job_folder_is_ours(job_root: Path) -> None:
    """The job folder is new, empty, or a videostyle job (its ``job.json``): never a user's folder
    whose ``frames/`` or ``final/`` the job would replace."""
    if not job_root.exists() or JobDir(job_root).exists():
        return
    if not job_root.is_dir():
        raise UserError(f"job folder {job_root} is a file; give --job-dir a new or empty folder")
    if any(job_root.iterdir()):
        raise UserError(f"job folder {job_root} is not empty and not a videostyle job; give --job-dir a new or "
                        "empty folder (a job folder's files are replaced as the job runs)")


def check_job_is_of_this_input(job: JobDir, input_path: Path, identity: str) -> None:
    """A job folder holds the job of one input: another clip that happens to have the same file
    name (run from the same folder) is refused, not mixed with it. The same path with new content
    (a re-export) is this input, changed: its frames are extracted again."""
    manifest = job.read_manifest()
    recorded_path = manifest.get("input")
    frames = manifest.get("frames")
    recorded_identity = frames.get("source") if isinstance(frames, dict) else None
    if not isinstance(recorded_path, str) or not isinstance(recorded_identity, str):
        return
    if recorded_identity == identity or same_file(Path(recorded_path), input_path):
        return
    raise UserError(f"job folder {job.root} holds the job of another input ({recorded_path}); give this one "
                    "its own --job-dir")


WRITTEN = "written"  # the manifest's list of every video a job encoded outside its folder
MAX_WRITTEN = 64


def videos_written(manifest: Mapping[str, object]) -> list[Mapping[str, object]]:
    """The records ({"path", "bytes", "sha256", ...}) of the videos a job wrote: its video and side-by-side
    video now, and every one it wrote before (a run with another -o leaves the first one its own)."""
    earlier = manifest.get(WRITTEN)
    records = [manifest.get("video_output"), manifest.get("side_by_side_output"),
               *(earlier if isinstance(earlier, list) else [])]
    return [record for record in records if isinstance(record, dict)]


def written_update(manifest: Mapping[str, object], record: Mapping[str, object]) -> dict[str, object]:
    """The manifest update that adds ``record`` (a video just encoded) to its videos written, last,
    in place of any earlier one of its path; at most MAX_WRITTEN kept, the oldest dropped."""
    earlier = manifest.get(WRITTEN)
    kept = [old for old in (earlier if isinstance(earlier, list) else [])
            if isinstance(old, dict) and old.get("path") != record.get("path")]
    return {WRITTEN: [*kept, record][-MAX_WRITTEN:]}


def check_output_is_ours(output: Path, job_root: Path, written: Iterable[Mapping[str, object]],
                         overwrite: bool) -> None:
    """An existing output is replaced only when this job wrote it, or with ``overwrite``; said
    either way before it is replaced. The job's own: a file in its folder, or a video that
    videostyle encoded (its tag) and that one of ``written`` (its manifest's records) names with
    these very bytes. A job folder may be shared and its manifest forged, but no record can make
    a camera's or an editor's file look encoded here, and a video changed since it was written is
    the user's now."""
    if not output.exists():
        return
    if JobDir(job_root).exists() and output.absolute().is_relative_to(job_root.absolute()):
        return
    ours = [record for record in written if record.get("path") == str(output)]
    if ours and _holds_what_was_written(output, ours):
        return
    if not overwrite:
        raise UserError(f"output {output} already exists and {_why_not_ours(ours)}; give another -o, remove it, "
                        "or pass --overwrite")
    log.warning("note: %s exists and was not written by this job; it will be replaced (--overwrite)", output)


def _why_not_ours(records: list[Mapping[str, object]]) -> str:
    if not records:
        return "was not written by this job"
    if all("sha256" not in record for record in records):
        return ("was written by this job before it recorded its videos' hashes (an older videostyle), so it "
                "cannot be told from a file of yours")
    return "is not the video this job wrote there (changed since, or its record is not to be trusted)"


def _holds_what_was_written(output: Path, records: Iterable[Mapping[str, object]]) -> bool:
    digests = {record.get("sha256") for record in records} - {None}
    return bool(digests) and file_sha256(output) in digests and encoded_here(output)
