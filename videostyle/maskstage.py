"""The style masks stage: the user's masks (see :mod:`videostyle.looks`) at the working size, kept
in the job folder so every worker reads the same regions without the originals.

The planner reads every mask before any frame is extracted (an unreadable one, a count that does
not match the styles, a sequence too short for the clip: one line each), then writes them at the
frames' size under ``masks/<key>/`` where the key hashes the masks' contents, the size and the
frame range. Each file's byte size is recorded in ``job.json``; a worker trusts the folder only
when every file is there at that size, and otherwise makes it again from the originals when they
are on its machine.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from videostyle.config import stage_key
from videostyle.errors import UserError
from videostyle.jobdir import JobDir, inside_job, is_stage_key
from videostyle.looks import check_masks_fit_styles, read_mask, resize_mask, save_mask
from videostyle.verify import file_digest, file_size, frame_is_intact
from videostyle.video_io import is_image_sequence, list_sequence

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class MaskInput:
    """One ``--style-mask`` as given: a single image for the whole clip, or a sequence."""

    given: Path
    files: tuple[Path, ...]
    sequence: bool

    def file_for(self, first: int, i: int) -> Path:
        """The file of job frame ``i`` when the job starts at input frame ``first``."""
        return self.files[first + i - 2] if self.sequence else self.files[0]


def mask_inputs(paths: Sequence[Path], n_styles: int) -> list[MaskInput]:
    """The masks as given, every file read once (before any work): one per style image."""
    check_masks_fit_styles(len(paths), n_styles, blended=False)
    inputs = []
    for path in paths:
        path = Path(path)
        sequence = is_image_sequence(path)
        files = tuple(list_sequence(path)) if sequence else (path,)
        for file in files:
            read_mask(file)
        inputs.append(MaskInput(path, files, sequence))
    return inputs


def check_mask_frames(inputs: Sequence[MaskInput], first: int, count: int) -> None:
    """A mask sequence has an image for every frame of the job (numbered like the input's frames)."""
    for mask in inputs:
        if mask.sequence and len(mask.files) < first + count - 1:
            raise UserError(f"style mask sequence {mask.given} has {len(mask.files)} images; the job needs "
                            f"{first + count - 1} (one per input frame up to frame {first + count - 1})")


def note_mask_sizes(inputs: Sequence[MaskInput], input_size: tuple[int, int]) -> None:
    """A mask of another size than the input's frames is resized to the working size; say so."""
    for mask in inputs:
        height, width = read_mask(mask.files[0]).shape
        if (width, height) != tuple(input_size):
            log.warning("note: style mask %s is %dx%d, the input %dx%d; it is resized to the frames",
                        mask.given, width, height, *input_size)


@dataclass(frozen=True)
class MaskStore:
    """The job's masks of one key: ``load(i)`` gives frame i's mask per style, at the frames' size."""

    root: Path
    sequence: tuple[bool, ...]
    size: tuple[int, int]  # (W, H)

    def path(self, style: int, i: int) -> Path:
        name = f"frame_{i:05d}.png" if self.sequence[style] else "all.png"
        return self.root / f"style_{style}" / name

    def paths(self, count: int) -> list[Path]:
        return list(dict.fromkeys(self.path(k, i) for k in range(len(self.sequence)) for i in range(1, count + 1)))

    def load(self, i: int) -> tuple[np.ndarray, ...]:
        return tuple(read_mask(self.path(k, i)) for k in range(len(self.sequence)))


def masks_key(inputs: Sequence[MaskInput], size: tuple[int, int], first: int, count: int) -> str:
    files = [[file_digest(mask.file_for(first, i)) for i in range(1, count + 1)] if mask.sequence
             else [file_digest(mask.files[0])] for mask in inputs]
    return stage_key("masks", files, size)


def keep_masks(job: JobDir, inputs: Sequence[MaskInput], size: tuple[int, int], first: int,
               count: int) -> MaskStore | None:
    """The planner's masks: the job's own when they were made from these files at this size,
    else written afresh; recorded in ``job.json``."""
    if not inputs:
        return None
    key = masks_key(inputs, size, first, count)
    store = MaskStore(_masks_dir(job, key), tuple(m.sequence for m in inputs), size)
    recorded = _recorded_store(job, size)
    if recorded is not None and recorded.root == store.root and _intact(job, recorded, count):
        return recorded
    _write_masks(store, inputs, first, count)
    job.update_manifest(masks={"key": key, "sequence": list(store.sequence),
                               "bytes": {p.relative_to(job.root).as_posix(): file_size(p) for p in store.paths(count)}})
    return store


def job_masks(job: JobDir, given: Sequence[Path], size: tuple[int, int], first: int, count: int) -> MaskStore | None:
    """A worker's masks: the job's, when every file is as recorded. A worker reads nothing outside
    the job folder (its record of where the originals are may point anywhere), so damaged masks
    are made again by planning the job again."""
    if not given:
        return None
    recorded = _recorded_store(job, size)
    if recorded is not None and len(recorded.sequence) == len(given) and _intact(job, recorded, count):
        return recorded
    raise UserError("the job's style masks are damaged or missing; plan the job again with "
                    "`videostyle run ... --plan-only` where the masks are")


def _recorded_store(job: JobDir, size: tuple[int, int]) -> MaskStore | None:
    record: Any = job.read_manifest().get("masks")
    if not isinstance(record, dict):
        return None
    key, sequence = record.get("key"), record.get("sequence")
    if not (is_stage_key(key) and isinstance(sequence, list)
            and all(isinstance(s, bool) for s in sequence)):
        return None
    return MaskStore(_masks_dir(job, key), tuple(sequence), size)


def _masks_dir(job: JobDir, key: str) -> Path:
    return inside_job(job.root, job.masks_dir(key).relative_to(job.root).as_posix(), "style masks folder")


def _intact(job: JobDir, store: MaskStore, count: int) -> bool:
    recorded = job.read_manifest().get("masks", {}).get("bytes")
    if not isinstance(recorded, dict):
        return False
    width, height = store.size
    for path in store.paths(count):
        size = recorded.get(path.relative_to(job.root).as_posix())
        if not (isinstance(size, int) and frame_is_intact(path, width, height, size)):
            return False
    return True


def _write_masks(store: MaskStore, inputs: Sequence[MaskInput], first: int, count: int) -> None:
    for k, mask in enumerate(inputs):
        frames = range(1, count + 1) if mask.sequence else range(1, 2)
        for i in frames:
            save_mask(store.path(k, i), resize_mask(read_mask(mask.file_for(first, i)), store.size))
