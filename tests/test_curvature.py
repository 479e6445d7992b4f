"""L-BFGS curvature carried between a frame's passes (video.curvature_pairs): the optimiser starts
from it, the job folder keeps it only as long as needed and trusts no file it cannot check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import RecordingStylizer
from videostyle.config import resolve_settings
from videostyle.curvature import load_curvature, save_curvature
from videostyle.frame.optimize import CurvatureMemory, optimize
from videostyle.pipeline import RunRequest, run

# An ill-conditioned quadratic: curvatures from 1 to 400 along the pixels, so a restarted L-BFGS
# spends iterations learning them again.
_CURVATURES = torch.logspace(0, np.log10(400.0), 3 * 6 * 8, dtype=torch.float32).reshape(1, 3, 6, 8)


def _ill_conditioned(x: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"q": 0.5 * (_CURVATURES * (x - 2.0) ** 2).sum()}


def _passes(chunks: list[int], carry: bool, memory_for_first: CurvatureMemory | None = None) -> float:
    x = torch.zeros(1, 3, 6, 8, requires_grad=True)
    memory = memory_for_first
    for iterations in chunks:
        outcome = optimize(x, _ill_conditioned, iterations=iterations, history_size=10, memory=memory,
                           keep_pairs=10 if carry else 0)
        memory = outcome.memory if carry else None
    return outcome.losses["total"]


def test_passes_started_from_the_last_ones_curvature_come_close_to_one_uninterrupted_run() -> None:
    uninterrupted = _passes([24], carry=False)
    restarted = _passes([6, 6, 6, 6], carry=False)
    carried = _passes([6, 6, 6, 6], carry=True)
    # measured: 14.1 uninterrupted, 49.4 restarted, 18.7 carried
    assert carried - uninterrupted < 0.25 * (restarted - uninterrupted), (uninterrupted, restarted, carried)


def test_curvature_of_another_size_is_not_used() -> None:
    other = CurvatureMemory([torch.ones(10)], [torch.ones(10)], 1.0)
    assert not other.fits(torch.zeros(1, 3, 6, 8))
    assert _passes([8], carry=False, memory_for_first=other) == _passes([8], carry=False)


def test_the_outcome_holds_the_latest_pairs() -> None:
    x = torch.zeros(1, 3, 6, 8, requires_grad=True)
    outcome = optimize(x, _ill_conditioned, iterations=12, history_size=5, keep_pairs=5)
    assert outcome.memory is not None and len(outcome.memory.steps) == 5
    assert len(optimize(x, _ill_conditioned, iterations=12, history_size=5, keep_pairs=3).memory.steps) == 3
    assert optimize(x, _ill_conditioned, iterations=12, history_size=5).memory is None  # none asked for
    assert all(float(s.dot(y)) > 0 for s, y in zip(outcome.memory.steps, outcome.memory.changes))
    assert len(outcome.memory.latest(2).steps) == 2
    assert optimize(x, _ill_conditioned, iterations=3, method="adam", keep_pairs=5).memory is None


# ---------------------------------------------------------------- the file


def _memory(values: int = 24, pairs: int = 3) -> CurvatureMemory:
    g = torch.Generator().manual_seed(0)
    steps = [torch.randn(values, generator=g) * 1e-3 for _ in range(pairs)]
    return CurvatureMemory(steps, [s * 7e-6 + 1e-12 for s in steps], 4.5)


def test_a_curvature_file_reads_back_what_was_kept(tmp_path: Path) -> None:
    path = tmp_path / "c.npz"
    save_curvature(path, _memory().latest(2))
    back = load_curvature(path, values=24)
    assert back is not None and len(back.steps) == 2 and back.scale == 4.5
    for kept, read in zip(_memory().steps[-2:] + _memory().changes[-2:], back.steps + back.changes):
        np.testing.assert_allclose(read.numpy(), kept.numpy(), rtol=2e-3, atol=float(kept.abs().max()) * 1e-3)


@pytest.mark.parametrize("damage", ["truncated", "foreign", "pickled", "wrong_size", "not_finite", "none"])
def test_a_curvature_file_not_to_be_trusted_is_not_used(damage: str, tmp_path: Path) -> None:
    path = tmp_path / "c.npz"
    save_curvature(path, _memory())
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:-40])
    elif damage == "foreign":
        path.write_bytes(b"not a zip at all")
    elif damage == "pickled":
        np.savez(path, format=np.array([{"a": 1}], dtype=object), steps=np.zeros((1, 24), np.float16))
    elif damage == "not_finite":
        data = dict(np.load(path))
        data["steps"][0, 0] = np.inf
        np.savez(path, **data)
    elif damage == "none":
        path.unlink()
    values = 30 if damage == "wrong_size" else 24
    assert load_curvature(path, values=values) is None


# ---------------------------------------------------------------- the job


def _request(clip: Path, style: Path, job: Path, **video) -> RunRequest:
    settings = resolve_settings(None, None, {"flow": {"method": "dis"}, "video": {
        "passes": 4, "iterations": 2, "coarse_passes": 1, "coarse_scale": 0.5, "scene_cuts": "off", **video}})
    return RunRequest(input=clip, styles=(style,), settings=settings, job_dir=job, make_video=False)


def test_each_pass_of_a_frame_starts_from_its_own_last_pass_of_the_same_size(
        recorder: RecordingStylizer, tiny_clip: Path, tiny_style: Path, tmp_path: Path) -> None:
    run(_request(tiny_clip, tiny_style, tmp_path / "job", curvature_pairs=3))
    by_pass = [recorder.calls[k:k + 5] for k in range(0, 20, 5)]
    # pass 1 is coarse and the last has no next pass: they hand nothing on
    assert [[c.keep_pairs for c in calls] for calls in by_pass] == [[0] * 5, [3] * 5, [3] * 5, [0] * 5]
    assert all(c.memory is None for c in by_pass[0] + by_pass[1])  # pass 1 is coarse: no pairs of pass 2's size
    for later in by_pass[2:]:
        for call in later:
            # the stand-in's pairs carry the content mean of the frame that made them: the frame's own
            assert call.memory is not None and call.memory.scale == pytest.approx(call.content_mean, rel=1e-6)
    assert not list((tmp_path / "job" / "stylized").rglob("*.npz"))  # each let go once its next pass was done


def test_without_the_setting_no_pass_gets_curvature(recorder: RecordingStylizer, tiny_clip: Path, tiny_style: Path,
                                                    tmp_path: Path) -> None:
    run(_request(tiny_clip, tiny_style, tmp_path / "job"))
    assert len(recorder.calls) == 20 and all(c.memory is None and c.keep_pairs == 0 for c in recorder.calls)
