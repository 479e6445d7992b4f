"""L-BFGS curvature a frame carries from one pass to the next, as a file in the job folder.

Multi-pass restarts the optimiser of every frame in every pass; with many short passes (the farm's
parallel schedule: 20 iterations each) relearning the curvature costs each pass a share of its
budget. ``video.curvature_pairs`` keeps the last pairs of each frame's pass for its next pass of
the same size (see :mod:`videostyle.frame.optimize` for why the pairs still hold there).

The file is data only (``.npz`` read without pickles) and is checked before it is used: its
format, its frame's size, finite numbers and pairs of positive curvature. Anything else is a
file not trusted: the pass then starts afresh, as without the setting, and says so in the log.
It is written before the frame's result (a unit redone after a kill finds it again, so it gives
the same result) and removed once the next pass's result of the frame is written, so a job
holds about one file per frame at a time; a result redone after that (its file damaged) starts
afresh, so it may differ from the first one by what the carried curvature changed.
"""

from __future__ import annotations

import io
import logging
import zipfile
from pathlib import Path

import numpy as np
import torch

from flow.atomic import atomic_write_bytes
from videostyle.frame.optimize import CurvatureMemory

log = logging.getLogger(__name__)

FORMAT = 1


def save_curvature(path: Path, kept: CurvatureMemory) -> None:
    """Write ``kept``'s pairs to ``path`` atomically, each vector as half floats times its own
    largest magnitude (float16's range could not hold a gradient change as it is)."""
    steps, step_scales = _halves(kept.steps)
    changes, change_scales = _halves(kept.changes)
    buffer = io.BytesIO()
    np.savez(buffer, format=np.int64(FORMAT), steps=steps, step_scales=step_scales, changes=changes,
             change_scales=change_scales, scale=np.float64(kept.scale))
    atomic_write_bytes(path, buffer.getvalue())


def load_curvature(path: Path, values: int | None = None) -> CurvatureMemory | None:
    """The curvature in ``path`` (for a frame of ``values`` numbers, 3 x H x W, when given), or
    None when there is none or it cannot be trusted (see the module doc). The optimiser uses
    pairs only of its frame's size (``CurvatureMemory.fits``)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in ("format", "steps", "step_scales", "changes", "change_scales",
                                                     "scale")}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        log.info("curvature %s not read (%s); the pass starts afresh", path.name, exc)
        return None
    problem = _problem(arrays, values)
    if problem:
        log.info("curvature %s not used (%s); the pass starts afresh", path.name, problem)
        return None
    steps = _floats(arrays["steps"], arrays["step_scales"])
    changes = _floats(arrays["changes"], arrays["change_scales"])
    positive = [(s, y) for s, y in zip(steps, changes) if float(s.dot(y)) > 0]
    if not positive:
        return None
    return CurvatureMemory([s for s, _ in positive], [y for _, y in positive], float(arrays["scale"]))


def discard_curvature(path: Path) -> None:
    """Remove a curvature file once its pass has used it (none there is fine)."""
    path.unlink(missing_ok=True)


def _halves(vectors: list[torch.Tensor]) -> tuple[np.ndarray, np.ndarray]:
    flat = np.stack([v.detach().float().cpu().numpy().ravel() for v in vectors])
    scales = np.abs(flat).max(axis=1).astype(np.float32)
    safe = np.where(scales > 0, scales, 1.0)[:, None]
    return (flat / safe).astype(np.float16), scales


def _floats(halves: np.ndarray, scales: np.ndarray) -> list[torch.Tensor]:
    return [torch.from_numpy(row.astype(np.float32) * float(scale)) for row, scale in zip(halves, scales)]


def _problem(arrays: dict[str, np.ndarray], values: int | None) -> str | None:
    """What makes the arrays unfit for a frame of ``values`` numbers, or None."""
    if arrays["format"].shape != () or int(arrays["format"]) != FORMAT:
        return "another format"
    steps, changes = arrays["steps"], arrays["changes"]
    if steps.dtype != np.float16 or changes.dtype != np.float16 or steps.ndim != 2 or steps.shape != changes.shape:
        return "not pairs of half-float vectors"
    if steps.shape[0] == 0 or steps.shape[1] == 0:
        return "no pairs"
    if values is not None and steps.shape[1] != values:
        return f"pairs of {steps.shape[1]} values, the frame has {values}"
    for name in ("step_scales", "change_scales"):
        if arrays[name].shape != (steps.shape[0],) or not np.isfinite(arrays[name]).all():
            return f"bad {name}"
    scale = arrays["scale"]
    if scale.shape != () or not np.isfinite(scale) or float(scale) <= 0:
        return "bad Hessian scale"
    if not (np.isfinite(steps).all() and np.isfinite(changes).all()):
        return "numbers that are not finite"
    return None
