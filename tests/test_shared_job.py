"""A job folder on a share may be edited by anyone: a worker writes only inside it and to its own -o."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from videostyle.cli import main
from videostyle.errors import UserError

FAST = ["--flow", "dis", "--passes", "1", "--iterations", "2", "--style-layers", "relu1_1",
        "--content-layers", "relu1_2", "--width", "32", "-q"]


def invoke(*args: str | Path):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def template(tiny_clip: Path, tiny_style: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    job = tmp_path_factory.mktemp("template") / "job"
    result = invoke("run", tiny_clip, "--style", tiny_style, "--job-dir", job, "-o", job / "planned.mp4",
                    "--plan-only", *FAST)
    assert result.exit_code == 0, result.output
    return job


@pytest.fixture()
def job(template: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "share" / "job"
    shutil.copytree(template, copy)
    return copy


def edit_manifest(job: Path, edit) -> None:
    manifest = json.loads((job / "job.json").read_text())
    edit(manifest)
    (job / "job.json").write_text(json.dumps(manifest))


def one_line_error(result, start: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: {start}") and result.output.count("\n") == 1, result.output


def test_a_worker_never_writes_the_output_path_a_job_folder_names(job: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim.mp4"
    victim.write_text("precious")
    edit_manifest(job, lambda m: m["request"].update(output=str(victim)))
    result = invoke("work", job, "--until-done")
    assert result.exit_code == 0, result.output
    assert victim.read_text() == "precious"
    assert (job / "victim.mp4").stat().st_size > 1000  # the video went into the job folder, named as planned


def test_a_worker_writes_the_output_its_command_line_names(job: Path, tmp_path: Path) -> None:
    mine = tmp_path / "mine.mp4"
    result = invoke("work", job, "--until-done", "-o", mine)
    assert result.exit_code == 0, result.output
    assert mine.stat().st_size > 1000 and not (job / "planned.mp4").exists()


def test_a_job_folder_cannot_name_a_non_video_or_a_link_out_as_the_output(job: Path, tmp_path: Path) -> None:
    edit_manifest(job, lambda m: m["request"].update(output=str(tmp_path / "job.json")))
    one_line_error(invoke("work", job), "the job folder names the video 'job.json', not a video file name")
    outside = tmp_path / "outside.mp4"
    outside.write_text("precious")
    edit_manifest(job, lambda m: m["request"].update(output="/anywhere/planned.mp4"))
    (job / "planned.mp4").symlink_to(outside)
    one_line_error(invoke("work", job), "the job folder's video output planned.mp4 leads outside it")
    assert outside.read_text() == "precious"


@pytest.mark.parametrize("name, message", [
    ("/etc/hostname", "the job folder names a style copy '/etc/hostname' that is not a name inside it"),
    ("styles/../../../x/0_0123456789abcdef.png", "the job folder names a style copy"),
    ("job.json", "the job folder names a style copy 'job.json', not a file styles/N_<hash>.<ext>"),
])
def test_style_copy_names_must_be_files_inside_the_job(job: Path, name: str, message: str) -> None:
    edit_manifest(job, lambda m: m.update(style_copies=[name]))
    one_line_error(invoke("work", job), message)


def test_a_style_copy_linked_out_of_the_job_is_refused(job: Path, tmp_path: Path) -> None:
    (copy,) = (job / "styles").iterdir()
    secret = tmp_path / "secret.png"
    shutil.copyfile(copy, secret)
    copy.unlink()
    copy.symlink_to(secret)
    one_line_error(invoke("work", job), f"the job folder's style copy styles/{copy.name} leads outside it")


def test_standard_entries_linked_out_of_the_job_are_refused(job: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "home"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("mine")
    (job / "final").symlink_to(elsewhere)
    one_line_error(invoke("work", job, "--until-done"), "the job folder holds a symbolic link, final ->")
    assert (elsewhere / "keep.txt").read_text() == "mine"


def test_a_link_at_any_depth_is_refused_by_the_plan_and_right_before_each_write(job: Path, tmp_path: Path) -> None:
    """A link deep in the folder (a pass folder, a flow folder) is refused when the plan is read;
    one planted after that (a worker keeps its plan for hours) is refused right before the write."""
    from videostyle.executor import run_claimed
    from videostyle.jobdir import try_lock
    from videostyle.pipeline import plan_from_job

    elsewhere = tmp_path / "home"
    elsewhere.mkdir()
    plan = plan_from_job(job)
    unit = next(u for u in plan.units if u.stage == "stylize")
    pass_dir = unit.outputs[0].parent
    pass_dir.parent.mkdir(parents=True, exist_ok=True)
    pass_dir.symlink_to(elsewhere, target_is_directory=True)
    one_line_error(invoke("work", job), f"the job folder holds a symbolic link, {pass_dir.relative_to(job)} ->")
    lock = try_lock(plan.job.locks_dir, unit.name)
    with pytest.raises(UserError, match="is a symbolic link; refusing to write through it"):
        run_claimed(unit, lock, plan.job, plan.check)
    pass_dir.unlink()
    journal = job / "journal"
    journal.mkdir(exist_ok=True)
    record_elsewhere = tmp_path / "records"
    record_elsewhere.mkdir()
    journal.rename(tmp_path / "journal.real")
    journal.symlink_to(record_elsewhere, target_is_directory=True)  # swapped after the plan's check
    lock = try_lock(plan.job.locks_dir, unit.name)
    with pytest.raises(UserError, match="journal is a symbolic link"):
        run_claimed(unit, lock, plan.job, plan.check)
    assert list(elsewhere.iterdir()) == [] and list(record_elsewhere.iterdir()) == []
    frame = job / "frames" / "frame_00001.png"
    secret = tmp_path / "secret.png"
    shutil.copyfile(frame, secret)
    frame.unlink()
    frame.symlink_to(secret)  # a frame swapped for a link to any image the worker can read
    with pytest.raises(UserError, match="frame_00001.png is a symbolic link"):
        plan.job.read_image(frame)


def test_weights_and_flow_files_named_by_the_job_are_checked(job: Path, tmp_path: Path, tiny_clip: Path,
                                                             tiny_style: Path) -> None:
    other = tmp_path / "other.pth"
    other.write_bytes(b"not the weights the job was planned with")
    edit_manifest(job, lambda m: m["request"]["settings"]["style"].update(weights=str(other)))
    one_line_error(invoke("work", job), f"the VGG-19 weights {other} on this machine differ from those the job")
    edit_manifest(job, lambda m: m["request"]["settings"]["style"].update(weights="/dev/zero"))
    one_line_error(invoke("work", job), "VGG-19 weights file not found: /dev/zero")

    import numpy as np

    import flow
    flows = tmp_path / "flows"
    for a in range(1, 5):
        for name in (f"forward_{a}_{a + 1}.flo", f"backward_{a + 1}_{a}.flo"):
            flow.write_flo(flows / name, np.zeros((48, 64, 2), np.float32))
    planned = tmp_path / "withflows"
    result = invoke("run", tiny_clip, "--style", tiny_style, "--job-dir", planned, "--flow-files", flows,
                    "--plan-only", *FAST, "--passes", "2")
    assert result.exit_code == 0, result.output
    flow.write_flo(flows / "forward_1_2.flo", np.ones((48, 64, 2), np.float32))
    one_line_error(invoke("work", planned), f"the flow files in {flows} differ from those the job was planned with")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_plan_shows_a_unit_whose_local_worker_died_as_ready(job: Path) -> None:
    """`plan` and the workers use one rule: a fresh lock of a dead process of this machine and
    process namespace is dead at once."""
    from videostyle.jobdir import process_identity

    folder = job / "locks" / "pass_01__frame_00001"
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / "00000001.lock"
    for pid, state in ((_dead_pid(), "ready"), (os.getpid(), "running")):
        holder = {**process_identity(), "token": "t", "ttl": 600, "pid": pid}
        if pid != os.getpid():
            holder["start"] = "0"
        lock.write_text(json.dumps(holder))
        listing = invoke("plan", job).output.splitlines()
        assert f"{state:8} pass_01/frame_00001" in listing, listing


def test_a_worker_reads_the_weights_where_its_machine_has_them(job: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """`work --weights FILE`: the planner's weights at another path (an OpenJD VggWeights parameter)."""
    import videostyle.frame.stylize
    from videostyle.pipeline import plan_from_job
    from videostyle.frame.vgg import weights_file

    here = tmp_path / "elsewhere" / "vgg19.bin"
    here.parent.mkdir()
    shutil.copyfile(weights_file(None), here)
    assert plan_from_job(job, weights=here).style_key == plan_from_job(job).style_key  # nothing to redo
    read = []
    real = videostyle.frame.stylize.load_weights
    monkeypatch.setattr(videostyle.frame.stylize, "load_weights", lambda path, *a: read.append(path) or real(path, *a))
    result = invoke("work", job, "--until-done", "--weights", here, "--progress", "none")
    assert result.exit_code == 0, result.output
    assert read and set(read) == {str(here)}
    here.write_bytes(b"other weights")
    one_line_error(invoke("work", job, "--weights", here), f"the VGG-19 weights {here} on this machine differ")
