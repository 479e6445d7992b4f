"""Contact sheet of a job folder: what each stage did, for a few frames, in one image.

One column per chosen frame; rows, top to bottom:

* ``input``            the extracted frames (``JOB/frames``)
* ``flow <key>``       the backward flow t -> t-1 as a colour wheel (hue = direction, saturation
                       = speed; one scale per flow key so the frames compare), blank for frame 1
* ``mask <key>``       its reliability map ``reliable_{t}_{t-1}.pgm`` (white = reliable)
* ``pass NN``          each chosen pass of each stylization key (``JOB/stylized/<key>/pass_NN``)
* ``final``            the finished frames (``JOB/final``)

Missing files (a stage not run yet) show as a grey cell saying so. Layout as in ``jobdir.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np

import flow
from videostyle.errors import UserError
from videostyle.evaluate import frame_paths
from videostyle.images import load_image, save_image
from videostyle.jobdir import JobDir
from videostyle.userfiles import check_new_file, recorded_inputs

LABEL_WIDTH = 120
HEADER_HEIGHT = 22
GAP = 2
BACKGROUND = (240, 240, 240)
MISSING = (200, 200, 200)
TEXT = (20, 20, 20)
FONT = cv2.FONT_HERSHEY_SIMPLEX


def pick_evenly(items: list[int], count: int) -> list[int]:
    """``count`` items spread evenly over ``items``, always including the first and the last."""
    if count >= len(items):
        return list(items)
    if count <= 1:
        return items[:1]
    step = (len(items) - 1) / (count - 1)
    return [items[round(i * step)] for i in range(count)]


def contact_sheet(job: str | Path, frames: int = 4, passes: int = 5,
                  thumb_width: int = 192) -> np.ndarray:
    """Build the sheet as HxWx3 uint8 RGB.

    ``frames`` columns chosen evenly over the clip; at most ``passes`` passes per stylization key
    (evenly chosen, first and last always shown); cells ``thumb_width`` pixels wide.
    """
    job_dir = JobDir(Path(job))
    frame_files = frame_paths(job_dir.frames_dir) if job_dir.frames_dir.is_dir() else []
    if not job_dir.exists() or not frame_files:
        raise UserError(f"{job} is not a job folder with extracted frames (JOB/job.json, JOB/frames/)")
    by_number = _numbered(job_dir.frames_dir)
    chosen = pick_evenly(sorted(by_number), frames)
    first = load_image(frame_files[0])
    thumb = (thumb_width, max(1, round(thumb_width * first.shape[0] / first.shape[1])))

    rows: list[tuple[str, list[np.ndarray]]] = []
    rows.append(("input", [_thumb_image(by_number.get(t), thumb) for t in chosen]))
    for key_dir in _subdirs(job_dir.flow_root):
        rows.extend(_flow_rows(key_dir, chosen, thumb))
    stylized = _subdirs(job_dir.stylized_root)
    for key_dir in stylized:
        pass_dirs = job_dir.pass_dirs(key_dir)
        prefix = f"{key_dir.name[:6]} " if len(stylized) > 1 else ""
        for p in pick_evenly(sorted(pass_dirs), passes):
            files = _numbered(pass_dirs[p])
            rows.append((f"{prefix}pass {p:02d}", [_thumb_image(files.get(t), thumb) for t in chosen]))
    if job_dir.final_dir.is_dir():
        files = _numbered(job_dir.final_dir)
        rows.append(("final", [_thumb_image(files.get(t), thumb) for t in chosen]))
    return _assemble(rows, [f"frame {t}" for t in chosen], thumb)


def write_contact_sheet(job: str | Path, out: str | Path, **options) -> Path:
    """Build the sheet of ``job`` and save it as PNG (atomically) at ``out``."""
    out = Path(out)
    check_new_file(out, recorded_inputs(JobDir(Path(job))))
    save_image(out, contact_sheet(job, **options))
    return out


def _flow_rows(key_dir: Path, chosen: list[int], thumb: tuple[int, int]):
    flows = {t: _read_or_none(flow.read_flo, key_dir / flow.flow_file_name(t, t - 1))
             for t in chosen if t > 1}
    present = [f for f in flows.values() if f is not None]
    if not present:
        return []
    # One scale for all columns, so a faster frame looks more saturated than a slower one.
    scale = max(float(np.sqrt((f ** 2).sum(axis=2)).max()) for f in present) or 1.0
    flow_cells, mask_cells = [], []
    for t in chosen:
        if t == 1:
            flow_cells.append(_placeholder(thumb, "first frame"))
            mask_cells.append(_placeholder(thumb, "first frame"))
            continue
        f = flows[t]
        flow_cells.append(_fit(flow.flow_to_color(f, max_magnitude=scale), thumb)
                          if f is not None else _placeholder(thumb, "no flow"))
        mask = _read_or_none(flow.read_pgm, key_dir / flow.reliable_file_name(t, t - 1))
        mask_cells.append(_fit(np.repeat(mask[..., None], 3, axis=2), thumb)
                          if mask is not None else _placeholder(thumb, "no mask"))
    name = key_dir.name[:8]
    return [(f"flow {name}\nmax {scale:.1f} px", flow_cells), (f"mask {name}", mask_cells)]


def _assemble(rows: list[tuple[str, list[np.ndarray]]], headers: list[str],
              thumb: tuple[int, int]) -> np.ndarray:
    tw, th = thumb
    n_cols = len(headers)
    width = LABEL_WIDTH + n_cols * (tw + GAP)
    height = HEADER_HEIGHT + len(rows) * (th + GAP)
    sheet = np.full((height, width, 3), BACKGROUND, np.uint8)
    for c, header in enumerate(headers):
        _text(sheet, header, LABEL_WIDTH + c * (tw + GAP) + 4, HEADER_HEIGHT - 7)
    for r, (label, cells) in enumerate(rows):
        y = HEADER_HEIGHT + r * (th + GAP)
        lines = label.split("\n")
        for k, line in enumerate(lines):  # centred vertically on the row, 14 px apart
            _text(sheet, line, 4, y + th // 2 + 4 + 14 * k - 7 * (len(lines) - 1))
        for c, cell in enumerate(cells):
            x = LABEL_WIDTH + c * (tw + GAP)
            sheet[y:y + th, x:x + tw] = cell
    return sheet


def _thumb_image(path: Path | None, thumb: tuple[int, int]) -> np.ndarray:
    if path is None or not path.is_file():
        return _placeholder(thumb, "missing")
    return _fit(load_image(path), thumb)


def _fit(image: np.ndarray, thumb: tuple[int, int]) -> np.ndarray:
    image = np.clip(image, 0, 255).astype(np.uint8)
    return cv2.resize(image, thumb, interpolation=cv2.INTER_AREA)


def _placeholder(thumb: tuple[int, int], text: str) -> np.ndarray:
    cell = np.full((thumb[1], thumb[0], 3), MISSING, np.uint8)
    _text(cell, text, 6, thumb[1] // 2 + 4)
    return cell


def _text(image: np.ndarray, text: str, x: int, y: int) -> None:
    cv2.putText(image, text, (x, y), FONT, 0.4, TEXT, 1, cv2.LINE_AA)


def _numbered(folder: Path) -> dict[int, Path]:
    """Frame images of ``folder`` by frame number (the last number in the file name)."""
    return {_frame_number(p): p for p in frame_paths(folder)} if folder.is_dir() else {}


def _frame_number(path: Path) -> int:
    digits = re.findall(r"\d+", path.stem)
    if not digits:
        raise UserError(f"cannot tell the frame number of {path}")
    return int(digits[-1])


def _subdirs(folder: Path) -> list[Path]:
    return sorted(d for d in folder.iterdir() if d.is_dir()) if folder.is_dir() else []


def _read_or_none(reader, path: Path):
    """A flow/mask file, or None when missing or unreadable (the stage may not have run)."""
    if not path.is_file():
        return None
    try:
        return reader(path)
    except (flow.FlowError, OSError):
        return None
