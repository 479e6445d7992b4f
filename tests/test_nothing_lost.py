"""A user's files are sacred: no option, name or leftover folder makes a run destroy what it did
not write (the nothing-lost issue), and a re-exported input never gets the old clip's result."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import make_clip
from videostyle.cli import main
from videostyle.images import load_image, save_image
from videostyle.video_io import frame_name, is_image_sequence, probe_video

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = ["--flow", "dis", "--passes", "1", "--iterations", "2", "--coarse-passes", "0", "--init", "content",
        "--style-layers", "relu1_1", "--content-layers", "relu2_2", "--width", "32", "-q"]


def invoke(*args: str | Path):
    return CliRunner().invoke(main, [str(a) for a in args])


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): digest(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def refused(result, *words: str) -> None:
    assert result.exit_code == 2, result.output
    line = result.output.strip().splitlines()[-1]
    assert line.startswith("error:") and "Traceback" not in result.output, result.output
    assert all(w in line for w in words), line


def test_a_sequence_in_the_job_folders_frames_is_refused_and_kept(tiny_clip: Path, tiny_style: Path,
                                                                   tmp_path: Path, monkeypatch) -> None:
    shot = tmp_path / "shot"
    (shot / "frames").mkdir(parents=True)
    for i in range(1, 4):
        save_image(shot / "frames" / f"shot_{i:04d}.png", load_image(tiny_style))
    before = tree_digest(shot)
    monkeypatch.chdir(shot)
    refused(invoke("run", "frames/shot_%04d.png", "--fps", "10", "--style", tiny_style, "--job-dir", ".", *FAST),
            "not empty")
    assert tree_digest(shot) == before
    # a job folder of its own is fine; a job whose frames/ holds the input is refused
    assert invoke("run", "frames/shot_%04d.png", "--fps", "10", "--style", tiny_style, "--job-dir", "job",
                  "--no-video", *FAST).exit_code == 0
    job_frames = tree_digest(shot / "job" / "frames")
    refused(invoke("run", "job/frames/frame_%05d.png", "--style", tiny_style, "--job-dir", "job", "--no-video",
                   *FAST), "lies in frames/")
    assert tree_digest(shot / "job" / "frames") == job_frames
    assert {k: v for k, v in tree_digest(shot).items() if not k.startswith("job/")} == before


def test_the_output_may_not_be_an_input(tiny_clip: Path, tiny_style: Path, tmp_path: Path) -> None:
    clip = shutil.copy(tiny_clip, tmp_path / "in.mp4")
    style = shutil.copy(tiny_style, tmp_path / "style.mp4")  # a style image with a video's name
    link = tmp_path / "link.mp4"
    link.symlink_to(clip)
    before = digest(Path(clip))
    for output, what in ((clip, "in.mp4"), (link, "in.mp4"), (tmp_path / "sub" / ".." / "in.mp4", "in.mp4"),
                         (style, "style.mp4")):
        (tmp_path / "sub").mkdir(exist_ok=True)
        refused(invoke("run", clip, "--style", style, "--job-dir", tmp_path / "job", "-o", output, *FAST),
                "is one of the inputs", what)
    assert digest(Path(clip)) == before and not (tmp_path / "job").exists()


def test_a_non_empty_folder_that_is_not_a_job_is_refused(tiny_clip: Path, tiny_style: Path, tmp_path: Path) -> None:
    folder = tmp_path / "P"
    (folder / "frames").mkdir(parents=True)
    (folder / "frames" / "keep.txt").write_text("mine")
    (folder / "final").mkdir()
    (folder / "final" / "grade.png").write_bytes(b"x")
    before = tree_digest(folder)
    refused(invoke("run", tiny_clip, "--style", tiny_style, "--job-dir", folder, "--no-video", *FAST),
            "not empty and not a videostyle job")
    assert tree_digest(folder) == before
    empty = tmp_path / "empty"
    empty.mkdir()
    assert invoke("run", tiny_clip, "--style", tiny_style, "--job-dir", empty, "--no-video", *FAST).exit_code == 0


def test_a_reexported_input_gets_its_own_result_not_the_old_one(tiny_style: Path, tmp_path: Path,
                                                                 monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    clip = make_clip(tmp_path / "clip.mp4", audio=False)
    assert invoke("run", clip, "--style", tiny_style, *FAST).exit_code == 0
    old_video = digest(tmp_path / "clip_stylized.mp4")
    old_final = tree_digest(tmp_path / "clip.videostyle" / "final")
    # the same name, length and size, other pictures (the test pattern mirrored)
    os.remove(clip)
    make_clip(tmp_path / "plain.mp4", audio=False)
    import subprocess

    from videostyle.video_io import ffmpeg_exe
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-y", "-i", tmp_path / "plain.mp4", "-vf", "hflip",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", clip], check=True)
    result = invoke("run", clip, "--style", tiny_style, *FAST)
    assert result.exit_code == 0, result.output
    assert digest(tmp_path / "clip_stylized.mp4") != old_video
    new_final = tree_digest(tmp_path / "clip.videostyle" / "final")
    assert all(new_final[name] != old_final[name] for name in old_final)


def test_another_input_of_the_same_name_is_refused_with_the_fix(tiny_clip: Path, tiny_style: Path,
                                                                tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = shutil.copy(tiny_clip, tmp_path / "a" / "clip.mp4")
    make_clip(tmp_path / "b" / "clip.mp4", size="48x48", audio=False)
    assert invoke("run", first, "--style", tiny_style, *FAST, "--no-video").exit_code == 0
    refused(invoke("run", tmp_path / "b" / "clip.mp4", "--style", tiny_style, *FAST, "--no-video"),
            "another input", "--job-dir")


def test_final_is_copies_and_hand_edits_there_are_never_lost(tiny_clip: Path, tiny_style: Path,
                                                              tmp_path: Path) -> None:
    job = tmp_path / "job"
    args = ["run", tiny_clip, "--style", tiny_style, "--job-dir", job, "--no-video", *FAST]
    assert invoke(*args).exit_code == 0
    final = job / "final" / frame_name(2)
    (cached,) = (job / "stylized").glob(f"*/pass_01/{frame_name(2)}")
    cached_before = digest(cached)
    save_image(final, load_image(final) // 2)  # a retouch in final/
    edited = digest(final)
    assert digest(cached) == cached_before  # the cache is not the retouched file
    assert invoke(*args, "--style-weight", "1e3").exit_code == 0  # a new look republishes final/
    assert digest(job / "final.edited-1" / frame_name(2)) == edited
    assert digest(job / "final" / frame_name(2)) != edited


def test_an_output_this_job_did_not_write_is_kept_unless_overwrite(tiny_clip: Path, tiny_style: Path,
                                                                   tmp_path: Path) -> None:
    output = tmp_path / "out.mp4"
    output.write_bytes(b"someone's edit")
    args = ["run", tiny_clip, "--style", tiny_style, "--job-dir", tmp_path / "job", "-o", output, *FAST]
    refused(invoke(*args), "already exists and was not written by this job", "--overwrite")
    assert output.read_bytes() == b"someone's edit"
    assert invoke(*args, "--overwrite").exit_code == 0
    assert probe_video(output).n_frames == 5
    assert invoke(*args).exit_code == 0  # its own output, on the next run, is replaced without a word


def test_every_video_a_job_wrote_stays_its_own_after_a_run_with_another_output(
        finished: tuple[Path, Path, Path, Path], tmp_path: Path) -> None:
    clip, style, job, video = finished
    args = ["run", clip, "--style", style, "--job-dir", job, *FAST]
    other = tmp_path / "other.mp4"
    assert invoke(*args, "-o", other).exit_code == 0
    # the first video is still this job's: the same command again replaces it without --overwrite
    result = invoke(*args, "-o", video)
    assert result.exit_code == 0, result.output
    assert probe_video(video).n_frames == 5
    someone_elses = tmp_path / "edit.mp4"
    someone_elses.write_bytes(b"someone's edit")
    refused(invoke(*args, "-o", someone_elses), "already exists and was not written by this job")
    assert someone_elses.read_bytes() == b"someone's edit"


def test_a_forged_record_in_a_shared_job_cannot_make_a_users_footage_replaceable(
        finished: tuple[Path, Path, Path, Path], tmp_path: Path) -> None:
    # Whoever can write a shared job folder can list any path, with its true size and hash, among
    # the videos the job wrote; a file videostyle never encoded is still refused.
    clip, style, job, _video = finished
    footage = Path(shutil.copy(clip, tmp_path / "footage.mp4"))
    manifest = json.loads((job / "job.json").read_text())
    forged = {"path": str(footage), "bytes": footage.stat().st_size, "sha256": digest(footage)}
    manifest["written"] = [*manifest.get("written", []), forged]
    manifest["video_output"] = forged
    (job / "job.json").write_text(json.dumps(manifest))
    before = digest(footage)
    refused(invoke("run", clip, "--style", style, "--job-dir", job, "-o", footage, *FAST),
            "is not the video this job wrote there", "--overwrite")
    refused(invoke("work", job, "-o", footage), "is not the video this job wrote there")
    refused(invoke("side-by-side", job, "-o", footage), "--overwrite")
    assert digest(footage) == before


def test_a_video_the_user_changed_after_the_job_wrote_it_is_theirs(finished: tuple[Path, Path, Path, Path]) -> None:
    clip, style, job, video = finished
    with video.open("ab") as handle:  # a tool that appends its own metadata, say
        handle.write(b"user's notes")
    edited = digest(video)
    args = ["run", clip, "--style", style, "--job-dir", job, "-o", video, *FAST]
    refused(invoke(*args), "is not the video this job wrote there", "--overwrite")
    assert digest(video) == edited
    assert invoke(*args, "--overwrite").exit_code == 0
    assert digest(video) != edited and probe_video(video).n_frames == 5
    assert invoke(*args).exit_code == 0  # written again, so its own again
    manifest = json.loads((job / "job.json").read_text())  # as an older videostyle recorded it
    manifest["written"] = [{k: v for k, v in r.items() if k != "sha256"} for r in manifest["written"]]
    manifest["video_output"].pop("sha256")
    (job / "job.json").write_text(json.dumps(manifest))
    refused(invoke(*args), "before it recorded its videos' hashes", "--overwrite")


def test_file_names_are_data(tiny_clip: Path, tiny_style: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    percent = Path(shutil.copy(tiny_clip, tmp_path / "100%.mp4"))
    protocol = Path(shutil.copy(tiny_clip, tmp_path / "concat:x.mp4"))
    assert not is_image_sequence(percent) and is_image_sequence(tmp_path / "shot_%04d.png")
    for clip in (Path("100%.mp4"), Path("concat:x.mp4")):
        result = invoke("run", clip, "--style", tiny_style, "--job-dir", tmp_path / f"job_{clip.stem[:3]}",
                        "-o", tmp_path / f"out_{clip.stem[:3]}.mp4", *FAST)
        assert result.exit_code == 0, result.output
        assert probe_video(tmp_path / f"out_{clip.stem[:3]}.mp4").n_frames == 5
    assert percent.is_file() and protocol.is_file()


@pytest.fixture()
def finished(tiny_clip: Path, tiny_style: Path, tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    """A finished job of copies the test may lose: (clip, style, job, its video)."""
    clip, style = Path(shutil.copy(tiny_clip, tmp_path / "clip.mp4")), Path(shutil.copy(tiny_style, tmp_path / "s.png"))
    job, video = tmp_path / "job", tmp_path / "out.mp4"
    result = invoke("run", clip, "--style", style, "--job-dir", job, "-o", video, *FAST)
    assert result.exit_code == 0, result.output
    return clip, style, job, video


def test_no_command_writes_over_an_input_or_into_a_jobs_own_files(finished: tuple[Path, Path, Path, Path],
                                                                  tmp_path: Path) -> None:
    # Every command that writes a file the user names refuses, in one line, a name that is one of
    # the files it or the job reads (whatever path spells it), or one inside the job's own folders.
    clip, style, job, video = finished
    flo = tmp_path / "f.flo"
    assert invoke("flow", "compute", job / "frames" / frame_name(1), job / "frames" / frame_name(2), flo).exit_code == 0
    link = tmp_path / "link.png"
    link.symlink_to(style)
    kept = {p: digest(p) for p in (clip, style, video, flo)} | {job / k: d for k, d in tree_digest(job).items()
                                                                 if k.split("/")[0] in ("frames", "final")}
    refused(invoke("side-by-side", job, "-o", clip), "is one of the inputs")
    refused(invoke("work", job, "-o", tmp_path / "." / "clip.mp4"), "is one of the inputs")
    refused(invoke("sheet", job, "-o", link), "is one of the inputs")
    refused(invoke("sheet", job, "-o", job / "frames" / frame_name(1)), "frames/ of the job folder")
    refused(invoke("eval", job, "--no-distances", "--plot", job / "final" / "plot.png"), "final/ of the job folder")
    refused(invoke("eval", video, "--input", clip, "--style", style, "--no-distances", "--plot", style),
            "plot file", "--plot")
    refused(invoke("image", style, "--style", style, "-o", link, "--iterations", "1", "--size", "16"),
            "is one of the inputs")
    refused(invoke("flow", "show", flo, "-o", flo), "is one of the inputs")
    refused(invoke("flow", "check", flo, flo, flo), "is one of the inputs")
    refused(invoke("run", clip, "--style", style, "--job-dir", tmp_path / "other", "-o", job / "final" / "x.mp4",
                   *FAST), "final/ of the job folder")
    assert not (tmp_path / "other").exists()
    refused(invoke("openjd", job, "-o", job / "frames"), "frames/ of the job folder")
    refused(invoke("openjd", job, "-o", tmp_path / "bundle", "--video", clip), "is one of the inputs", "--video")
    assert {p: digest(p) for p in kept} == kept
    # beside a job's folders, and anywhere else, is fine
    assert invoke("sheet", job, "-o", job / "sheet.png", "--frames", "2", "--thumb-width", "32").exit_code == 0
    assert invoke("eval", job, "--no-distances", "--plot", tmp_path / "plot.png").exit_code == 0


def test_side_by_side_and_a_worker_replace_only_a_video_of_their_own(finished: tuple[Path, Path, Path, Path],
                                                                     tmp_path: Path) -> None:
    _clip, _style, job, video = finished
    stylized_video = digest(video)
    refused(invoke("side-by-side", job, "-o", video), "this job's stylized video", "--overwrite")
    assert digest(video) == stylized_video
    someone = tmp_path / "edit.mp4"
    someone.write_bytes(b"someone's edit")
    refused(invoke("side-by-side", job, "-o", someone), "not written by this job", "--overwrite")
    refused(invoke("work", job, "-o", someone), "not written by this job", "--overwrite")
    assert someone.read_bytes() == b"someone's edit"
    sbs = tmp_path / "sbs.mp4"
    assert invoke("side-by-side", job, "-o", sbs).exit_code == 0
    assert invoke("side-by-side", job, "-o", sbs).exit_code == 0  # its own, made again without a word
    assert invoke("work", job, "-o", video).exit_code == 0  # the video this job wrote
    assert invoke("work", job, "-o", someone, "--overwrite").exit_code == 0
    assert probe_video(someone).n_frames == 5
