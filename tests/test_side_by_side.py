"""The side-by-side video: `run --side-by-side` and `videostyle side-by-side JOB` on a tiny clip."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as iio
import numpy as np
import pytest
from click.testing import CliRunner

from test_run import FAST
from videostyle.cli import main
from videostyle.images import load_image
from videostyle.video_io import frame_name, probe_video


def invoke(*args: str | Path):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def finished(tiny_clip: Path, tiny_style: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One tiny run with --side-by-side (5 frames, 64x48, 10 fps, with audio)."""
    folder = tmp_path_factory.mktemp("side")
    out, job = folder / "out.mp4", folder / "job"
    args = ["run", tiny_clip, "--style", tiny_style, "-o", out, "--job-dir", job, *FAST, "--side-by-side"]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert f"wrote {folder / 'out_side_by_side.mp4'} (input | stylized)" in result.output
    return {"out": out, "job": job, "side": folder / "out_side_by_side.mp4", "folder": folder,
            "args": args}  # type: ignore[dict-item]


def frames_of(video: Path) -> list[np.ndarray]:
    with iio.get_reader(str(video), "ffmpeg") as reader:
        return [np.asarray(f)[..., :3] for f in reader]


def test_run_writes_input_left_and_result_right(finished: dict[str, Path]) -> None:
    info = probe_video(finished["side"])
    assert (info.width, info.height, info.fps, info.n_frames, info.has_audio) == (128, 48, "10/1", 5, True)
    third = frames_of(finished["side"])[2].astype(float)
    job = finished["job"]
    source, result = load_image(job / "frames" / frame_name(3)), load_image(job / "final" / frame_name(3))
    # H.264 is lossy (more so on stylized texture at this size): each half is much nearer its own
    # frame than the other one
    left, right = third[:, :64], third[:, 64:]
    assert np.abs(left - source).mean() < 0.5 * np.abs(left - result).mean()
    assert np.abs(right - result).mean() < 0.5 * np.abs(right - source).mean()


def test_run_again_keeps_the_side_by_side_video(finished: dict[str, Path]) -> None:
    before = finished["side"].stat().st_mtime_ns
    result = invoke(*finished["args"])
    assert result.exit_code == 0, result.output
    assert finished["side"].stat().st_mtime_ns == before
    finished["side"].write_bytes(b"changed")  # not as the job wrote it: the user's now
    result = invoke(*finished["args"])
    assert result.exit_code == 2 and "is not the video this job wrote there" in result.output
    assert finished["side"].read_bytes() == b"changed"
    assert invoke(*finished["args"], "--overwrite").exit_code == 0
    assert probe_video(finished["side"]).n_frames == 5  # made again


def test_command_on_an_existing_job(finished: dict[str, Path], tmp_path: Path) -> None:
    chosen = tmp_path / "compare.mp4"
    result = invoke("side-by-side", finished["job"], "-o", chosen)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"wrote {chosen} (input | stylized)"
    info = probe_video(chosen)
    assert (info.width, info.height, info.n_frames, info.has_audio) == (128, 48, 5, True)
    result = invoke("side-by-side", finished["job"])  # default: in the job folder, by the video's name
    assert result.exit_code == 0, result.output
    assert probe_video(finished["job"] / "out_side_by_side.mp4").n_frames == 5
    assert not list(tmp_path.glob(".*"))  # no temp file left


@pytest.mark.parametrize("args, message", [
    (["side-by-side", "{tmp}"], "not a videostyle job folder"),
    (["side-by-side", "{job}", "-o", "{tmp}/nowhere/x.mp4"], "does not exist"),
    (["side-by-side", "{job}", "-o", "{tmp}/x.png"], "must end in .mp4"),
    (["run", "{clip}", "--style", "{style}", "--job-dir", "{tmp}/j", "--no-video", "--side-by-side"],
     "drop --no-video"),
])
def test_user_errors_are_one_line(finished: dict[str, Path], tiny_clip: Path, tiny_style: Path, tmp_path: Path,
                                  args: list[str], message: str) -> None:
    names = {"tmp": tmp_path, "job": finished["job"], "clip": tiny_clip, "style": tiny_style}
    result = invoke(*[a.format(**names) for a in args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_unfinished_job_says_so(tiny_clip: Path, tiny_style: Path, tmp_path: Path) -> None:
    job = tmp_path / "planned"
    result = invoke("run", tiny_clip, "--style", tiny_style, "--job-dir", job, *FAST, "--plan-only")
    assert result.exit_code == 0, result.output
    result = invoke("side-by-side", job)
    assert result.exit_code == 2 and "not stylized yet" in result.output and "Traceback" not in result.output
