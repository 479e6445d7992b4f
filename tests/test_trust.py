"""Nothing on disk is trusted: damaged cached files are found, made again, and never published."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import flow
from videostyle.cli import main
from videostyle.images import load_image, save_image
from videostyle.video_io import frame_name, probe_video

# Started from the content, so every frame's result differs (from noise, 3 iterations stay flat).
FAST = ["--flow", "dis", "--passes", "2", "--iterations", "3", "--temporal-from", "2", "--init", "content",
        "--style-layers", "relu1_1,relu2_1", "--content-layers", "relu2_2", "--width", "32", "-q"]


def invoke(*args: str | Path):
    return CliRunner().invoke(main, [str(a) for a in args])


def run_job(clip: Path, style: Path, job: Path, *extra: str | Path):
    return invoke("run", clip, "--style", style, "--job-dir", job, "-o", job / "out.mp4", *FAST, *extra)


def final_bytes(job: Path) -> list[bytes]:
    return [(job / "final" / frame_name(i)).read_bytes() for i in range(1, 6)]


def stylized(job: Path, name: str) -> Path:
    (path,) = (job / "stylized").glob(f"*/{name}")
    return path


def truncate_in_place(path: Path, size: int) -> None:
    with open(path, "r+b") as fh:  # the same inode: hard links to it are damaged too
        fh.truncate(size)


@pytest.fixture(scope="module")
def reference(tiny_clip: Path, tiny_style: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished job, never touched: what every repaired job must equal."""
    job = tmp_path_factory.mktemp("reference") / "job"
    result = run_job(tiny_clip, tiny_style, job)
    assert result.exit_code == 0, result.output
    assert len(set(final_bytes(job))) == 5  # five different results: a swapped or stale one shows
    return job


@pytest.fixture()
def copy_of(reference: Path, tmp_path: Path) -> Path:
    job = tmp_path / "job"
    shutil.copytree(reference, job)
    return job


def test_last_pass_frame_truncated_in_place_is_redone_and_final_rebuilt(tiny_clip: Path, tiny_style: Path,
                                                                        reference: Path, tmp_path: Path) -> None:
    job = tmp_path / "job"
    assert run_job(tiny_clip, tiny_style, job).exit_code == 0
    last = stylized(job, f"pass_02/{frame_name(3)}")
    published = job / "final" / frame_name(3)
    assert not os.path.samefile(last, published) and published.read_bytes() == last.read_bytes()  # a copy
    truncate_in_place(last, 100)
    assert published.read_bytes() == stylized(reference, f"pass_02/{frame_name(3)}").read_bytes()
    result = run_job(tiny_clip, tiny_style, job)
    assert result.exit_code == 0, result.output
    assert final_bytes(job) == final_bytes(reference)
    assert last.read_bytes() == stylized(reference, f"pass_02/{frame_name(3)}").read_bytes()
    assert probe_video(job / "out.mp4").n_frames == 5


def test_truncated_final_frame_is_published_again_and_the_video_reencoded(copy_of: Path, reference: Path,
                                                                           tiny_clip: Path, tiny_style: Path) -> None:
    job = copy_of
    assert run_job(tiny_clip, tiny_style, job).exit_code == 0  # settles the copy (its video path is new)
    truncate_in_place(job / "final" / frame_name(2), 50)
    before = (job / "out.mp4").stat().st_mtime_ns
    result = run_job(tiny_clip, tiny_style, job)
    assert result.exit_code == 0, result.output
    assert final_bytes(job) == final_bytes(reference)
    assert (job / "out.mp4").stat().st_mtime_ns != before


def test_valid_png_of_the_wrong_size_in_place_of_a_result_is_redone(copy_of: Path, reference: Path,
                                                                    tiny_clip: Path, tiny_style: Path) -> None:
    job = copy_of
    save_image(stylized(job, f"pass_02/{frame_name(4)}"), np.full((16, 16, 3), 128, np.uint8))
    save_image(job / "final" / frame_name(4), np.full((16, 16, 3), 128, np.uint8))
    result = run_job(tiny_clip, tiny_style, job)
    assert result.exit_code == 0, result.output
    assert final_bytes(job) == final_bytes(reference)


def test_truncated_video_is_encoded_again(copy_of: Path, tiny_clip: Path, tiny_style: Path) -> None:
    assert run_job(tiny_clip, tiny_style, copy_of).exit_code == 0  # settles the copy (its video path is new)
    truncate_in_place(copy_of / "out.mp4", 1000)
    assert run_job(tiny_clip, tiny_style, copy_of).exit_code == 0
    assert probe_video(copy_of / "out.mp4").n_frames == 5


def test_flo_of_the_wrong_size_is_recomputed(copy_of: Path, reference: Path, tiny_clip: Path,
                                             tiny_style: Path) -> None:
    job = copy_of
    (bad,) = (job / "flow").glob("*/forward_2_3.flo")
    flow.write_flo(bad, np.zeros((10, 10, 2), np.float32))  # a valid header, the wrong size
    result = run_job(tiny_clip, tiny_style, job)
    assert result.exit_code == 0, result.output
    assert flow.read_flo(bad).shape == (24, 32, 2)
    (good,) = (reference / "flow").glob("*/forward_2_3.flo")
    assert bad.read_bytes() == good.read_bytes()
    assert final_bytes(job) == final_bytes(reference)


def test_an_unrecorded_result_is_not_trusted(copy_of: Path, reference: Path, tiny_clip: Path,
                                             tiny_style: Path) -> None:
    """A file no unit recorded (left by hand, or by a crash before the record) is made again."""
    job = copy_of
    target, donor = stylized(job, f"pass_01/{frame_name(5)}"), stylized(job, f"pass_01/{frame_name(1)}")
    assert donor.read_bytes() != target.read_bytes()
    shutil.copyfile(donor, target)  # the right shape, not its result
    (record,) = (job / "journal").glob("pass_01__frame_00005~*.json")
    assert json.loads(record.read_text())["unit"] == "pass_01/frame_00005"
    record.unlink()
    assert run_job(tiny_clip, tiny_style, job).exit_code == 0
    assert target.read_bytes() == stylized(reference, f"pass_01/{frame_name(5)}").read_bytes()


def test_damaged_frame_and_style_copy_are_made_again(copy_of: Path, reference: Path, tiny_clip: Path,
                                                     tiny_style: Path) -> None:
    job = copy_of
    truncate_in_place(job / "frames" / frame_name(3), 200)
    (copy,) = (job / "styles").iterdir()
    truncate_in_place(copy, 20)
    result = run_job(tiny_clip, tiny_style, job)
    assert result.exit_code == 0, result.output
    assert (job / "frames" / frame_name(3)).read_bytes() == (reference / "frames" / frame_name(3)).read_bytes()
    assert copy.read_bytes() == tiny_style.read_bytes()
    assert final_bytes(job) == final_bytes(reference)


@pytest.fixture()
def planned(tiny_clip: Path, tiny_style: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    """A job planned for farm workers from copies of the clip and style that a test may remove."""
    clip, style = tmp_path / "clip.mp4", tmp_path / "style.png"
    shutil.copyfile(tiny_clip, clip)
    shutil.copyfile(tiny_style, style)
    job = tmp_path / "farmjob"
    result = run_job(clip, style, job, "--plan-only")
    assert result.exit_code == 0, result.output
    return job, clip, style


def test_a_worker_reads_no_input_outside_the_job_and_says_to_plan_again(planned: tuple[Path, Path, Path]) -> None:
    """A worker trusts nothing the job folder says of paths outside it: a damaged frame is not
    re-extracted from ``request.input`` (which anyone with write access could point anywhere);
    planning again, where the input is, repairs it."""
    job, clip, style = planned
    good = (job / "frames" / frame_name(2)).read_bytes()
    truncate_in_place(job / "frames" / frame_name(2), 100)
    result = invoke("work", job)
    assert result.exit_code == 2
    assert result.output == (f"error: the job's frame frames/{frame_name(2)} is damaged or missing; a worker reads "
                             "nothing outside the job folder: plan it again with `videostyle run ... --plan-only` "
                             "where the input is\n")
    replanned = invoke("run", clip, "--style", style, "--job-dir", job, "-o", job / "out.mp4", *FAST, "--plan-only")
    assert replanned.exit_code == 0, replanned.output
    assert (job / "frames" / frame_name(2)).read_bytes() == good


def test_a_worker_never_copies_a_style_from_outside_the_job(planned: tuple[Path, Path, Path]) -> None:
    job, clip, style = planned
    (copy,) = (job / "styles").iterdir()
    truncate_in_place(copy, 20)
    result = invoke("work", job)
    assert result.exit_code == 2
    assert result.output.startswith(f"error: the job's copy of a style image (styles/{copy.name}, of {style.name}) "
                                    "is damaged or missing; plan the job again")
    assert invoke("run", clip, "--style", style, "--job-dir", job, "-o", job / "out.mp4", *FAST,
                  "--plan-only").exit_code == 0
    assert hashlib.sha256(copy.read_bytes()).hexdigest()[:16] in copy.name


def test_a_worker_of_a_job_without_a_frames_record_extracts_nothing(planned: tuple[Path, Path, Path],
                                                                    tmp_path: Path) -> None:
    job, _, _ = planned
    manifest = json.loads((job / "job.json").read_text())
    secret = tmp_path / "secret.mp4"
    shutil.copyfile(planned[1], secret)
    manifest.pop("frames")
    manifest["request"]["input"] = str(secret)  # someone with write access points it elsewhere
    (job / "job.json").write_text(json.dumps(manifest))
    result = invoke("plan", job)
    assert result.exit_code == 2 and "has no record of its frames" in result.output
    assert len(list((job / "frames").iterdir())) == 5


def test_flow_files_at_the_source_size_are_rescaled_to_the_work_size(tiny_clip: Path, tiny_style: Path,
                                                                     tmp_path: Path) -> None:
    """Flows made at the clip's 64x48 serve a job worked at width 32: resampled, vectors halved."""
    flows = tmp_path / "flows"
    field = np.zeros((48, 64, 2), np.float32)
    field[..., 0], field[..., 1] = 4.0, -2.0
    for a in range(1, 5):
        flow.write_flo(flows / f"forward_{a}_{a + 1}.flo", field)
        flow.write_flo(flows / f"backward_{a + 1}_{a}.flo", -field)
    job = tmp_path / "job"
    result = run_job(tiny_clip, tiny_style, job, "--flow-files", flows, "--no-video")
    # the preset's long-term terms want pairs further apart, and the refusal says how to go without
    assert result.exit_code == 2 and "forward_1_3.flo (frames 2 apart" in result.output, result.output
    result = run_job(tiny_clip, tiny_style, job, "--flow-files", flows, "--no-video", "--long-term", "1")
    assert result.exit_code == 0, result.output
    (imported,) = (job / "flow").glob("*/forward_2_3.flo")
    np.testing.assert_allclose(flow.read_flo(imported), np.broadcast_to([2.0, -1.0], (24, 32, 2)))
    assert len(list((job / "final").glob("frame_*.png"))) == 5


def test_the_same_input_through_another_path_keeps_its_frames(tiny_clip: Path, tiny_style: Path,
                                                              tmp_path: Path) -> None:
    job = tmp_path / "job"
    assert run_job(tiny_clip, tiny_style, job, "--plan-only").exit_code == 0
    stamp = (job / "frames" / frame_name(1)).stat().st_mtime_ns
    link = tmp_path / "link.mp4"
    link.symlink_to(tiny_clip)
    roundabout = tiny_clip.parent / ".." / tiny_clip.parent.name / tiny_clip.name
    for other in (link, roundabout):
        assert run_job(other, tiny_style, job, "--plan-only").exit_code == 0
        assert (job / "frames" / frame_name(1)).stat().st_mtime_ns == stamp, other
    load_image(job / "frames" / frame_name(1))


def test_status_looks_in_no_folder_a_rewritten_job_json_names_outside_the_job(copy_of: Path, tmp_path: Path) -> None:
    """``status`` reads the stage keys from job.json, and a key names a folder: one rewritten to
    lead out of the job (a shared folder is anyone's to write) is reported as damaged, and the
    folder it names is not looked at, nor is a pass count no plan makes counted through."""
    manifest_path = copy_of / "job.json"
    manifest = json.loads(manifest_path.read_text())
    # decoys outside the job holding what the job's own folders hold
    (flow_dir,) = (copy_of / "flow").iterdir()
    (style_dir,) = (copy_of / "stylized").iterdir()
    shutil.copytree(flow_dir, tmp_path / "decoy_flow")
    shutil.copytree(style_dir, tmp_path / "decoy_style")
    shutil.rmtree(flow_dir)
    shutil.rmtree(style_dir)
    manifest["flow"]["key"] = "../../decoy_flow"
    manifest["stylize"]["key"] = "../../decoy_style"
    manifest_path.write_text(json.dumps(manifest))
    result = invoke("status", copy_of)
    assert result.exit_code == 0, result.output
    assert "flow: the job's record of it is damaged" in result.output
    assert "stylize: the job's record of it is damaged" in result.output
    assert "pairs" not in result.output and "pass 1:" not in result.output
    manifest["stylize"]["key"] = style_dir.name
    manifest["stylize"]["passes"] = 10 ** 12
    manifest_path.write_text(json.dumps(manifest))
    assert "stylize: the job's record of it is damaged" in invoke("status", copy_of).output
