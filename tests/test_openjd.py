"""The OpenJD job bundle of a planned job (`videostyle openjd`), checked and run by the real `openjd`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner

from videostyle.cli import main
from videostyle.cli.progress import OPENJD_SESSION_VARIABLE, OpenJDProgress, TerminalProgress, worker_progress
from videostyle.images import load_image
from videostyle.openjd import FINISH_STEP, WORK_STEP, useful_parallelism
from videostyle.units import StageEvent, Unit, UnitProgress

FAST = ["--flow", "dis", "--passes", "2", "--iterations", "3", "--temporal-from", "2",
        "--style-layers", "relu1_1,relu2_1", "--content-layers", "relu2_2", "-q"]

needs_openjd = pytest.mark.skipif(shutil.which("openjd") is None, reason="needs openjd (pip install openjd-cli)")


def invoke(*args: str | Path):
    return CliRunner().invoke(main, [str(a) for a in args])


def plan(clip: Path, style: Path, job: Path) -> None:
    result = invoke("run", clip, "--style", style, "--job-dir", job, "--segment-length", "2", "--plan-only", *FAST)
    assert result.exit_code == 0, result.output


def bundle(job: Path, bundle_dir: Path, *options: str) -> dict:
    result = invoke("openjd", job, "-o", bundle_dir, *options)
    assert result.exit_code == 0, result.output
    return yaml.safe_load((bundle_dir / "template.yaml").read_text())


def openjd(*args: str | Path, tmp_path: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    """The real `openjd`, with a `videostyle` first on PATH that runs this checkout's code."""
    shim = tmp_path / "bin" / "videostyle"
    shim.parent.mkdir(exist_ok=True)
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m videostyle "$@"\n')
    shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{shim.parent}{os.pathsep}{os.environ['PATH']}", "OMP_NUM_THREADS": "1"}
    return subprocess.run(["openjd", *map(str, args)], env=env, capture_output=True, text=True, timeout=timeout)


def unit(name: str, *needs: str) -> Unit:
    return Unit(name=name, stage="stylize", outputs=(), needs=needs, work=lambda: None)


def test_useful_parallelism_is_the_widest_level_of_the_plan() -> None:
    # two chains from independent flows: three units can start at once, then two, then one
    units = [unit("f1"), unit("f2"), unit("f3"), unit("a", "f1", "f2"), unit("b", "f3"), unit("c", "a", "b")]
    assert useful_parallelism(units) == 3
    assert useful_parallelism([unit("x"), unit("y", "x"), unit("z", "y")]) == 1
    assert useful_parallelism([]) == 1


@pytest.mark.parametrize("job_device, gpus", [("cuda", 1), ("cuda:1", 1), ("auto", 0), ("cpu", 0)])
def test_a_job_set_to_stylize_on_cuda_asks_for_a_gpu_host(job_device: str, gpus: int) -> None:
    from types import SimpleNamespace

    from videostyle.openjd import default_gpus

    plan = SimpleNamespace(request=SimpleNamespace(settings=SimpleNamespace(video=SimpleNamespace(device=job_device))))
    assert default_gpus(plan) == gpus  # type: ignore[arg-type]


def test_the_bundle_describes_the_planned_job(tiny_clip: Path, tiny_style: Path, tmp_path: Path) -> None:
    job = tmp_path / "bundle" / "job"
    plan(tiny_clip, tiny_style, job)
    template = bundle(job, tmp_path / "bundle")
    params = {p["name"]: p for p in template["parameterDefinitions"]}
    assert template["specificationVersion"] == "jobtemplate-2023-09"
    assert (params["JobDir"]["type"], params["JobDir"]["objectType"], params["JobDir"]["default"]) == (
        "PATH", "DIRECTORY", "job")
    assert (params["Output"]["type"], params["Output"]["default"]) == ("PATH", "job/tiny_stylized.mp4")
    assert params["VggWeights"]["type"] == "PATH" and params["ThreadsPerTask"]["type"] == "INT"
    # the widest level of the plan: the four neighbours' flow pairs, the anchor and the two frames of
    # pass 1 that are held to nothing (--temporal-from 2); the long-term pairs 1-3 and 3-5 wait for
    # the neighbours' pairs between them (--long-term-chain)
    assert params["Workers"]["default"] == 7
    work, finish = template["steps"]
    assert (work["name"], finish["name"]) == (WORK_STEP, FINISH_STEP)
    assert finish["dependencies"] == [{"dependsOn": WORK_STEP}]
    assert work["parameterSpace"]["taskParameterDefinitions"][0]["range"] == "1-{{Param.Workers}}"
    args = work["script"]["actions"]["onRun"]["args"]
    assert args[:3] == ["work", "{{Param.JobDir}}", "--until-done"] and "--no-finish" in args
    assert ["--progress", "openjd"] == args[3:5] and "{{Param.VggWeights}}" in args
    assert finish["script"]["actions"]["onRun"]["args"][-2:] == ["-o", "{{Param.Output}}"]
    assert "hostRequirements" not in work  # device auto: any host, its GPU when it has one
    assert not (tmp_path / "bundle" / "parameter_values.yaml").exists()

    gpu = bundle(job, tmp_path / "bundle", "--gpus", "2", "--workers", "3")
    assert gpu["steps"][0]["hostRequirements"] == {"amounts": [{"name": "amount.worker.gpu", "min": 2}]}
    assert {p["name"]: p for p in gpu["parameterDefinitions"]}["Workers"]["default"] == 3


@needs_openjd
def test_openjd_check_accepts_the_template_and_outside_paths_become_parameter_values(
        tiny_clip: Path, tiny_style: Path, tmp_path: Path) -> None:
    job = tmp_path / "share" / "job"
    plan(tiny_clip, tiny_style, job)
    bundle(job, tmp_path / "bundles" / "clip", "--gpus", "1")
    checked = openjd("check", tmp_path / "bundles" / "clip" / "template.yaml", tmp_path=tmp_path)
    assert checked.returncode == 0 and "passes validation checks" in checked.stdout, checked.stdout + checked.stderr
    # OpenJD refuses PATH defaults outside the template's folder: those values go where Deadline reads them
    template = yaml.safe_load((tmp_path / "bundles" / "clip" / "template.yaml").read_text())
    params = {p["name"]: p for p in template["parameterDefinitions"]}
    assert "default" not in params["JobDir"] and "default" not in params["Output"]
    values = yaml.safe_load((tmp_path / "bundles" / "clip" / "parameter_values.yaml").read_text())
    assert values == {"parameterValues": [{"name": "JobDir", "value": str(job)},
                                          {"name": "Output", "value": str(job / "tiny_stylized.mp4")}]}


@needs_openjd
def test_a_bad_job_folder_fails_the_task_in_one_line(tiny_clip: Path, tiny_style: Path, tmp_path: Path) -> None:
    job = tmp_path / "bundle" / "job"
    plan(tiny_clip, tiny_style, job)
    bundle(job, tmp_path / "bundle")
    (tmp_path / "bundle" / "empty").mkdir()
    ran = openjd("run", tmp_path / "bundle" / "template.yaml", "--step", WORK_STEP, "--maximum-tasks", "1",
                 "-p", f"JobDir={tmp_path / 'bundle' / 'empty'}", tmp_path=tmp_path)
    log = ran.stdout + ran.stderr
    assert ran.returncode != 0 and "Traceback" not in log, log
    errors = [line.split("\t", 1)[-1] for line in log.splitlines() if "error:" in line]
    assert errors == [f"error: {tmp_path / 'bundle' / 'empty'} is not a videostyle job folder (no job.json)"], log
    assert "exited with code: 2" in log


@needs_openjd
@pytest.mark.slow
@pytest.mark.farm
def test_openjd_runs_the_whole_job_as_a_local_run_would(tiny_clip: Path, tiny_style: Path, tmp_path: Path) -> None:
    threads = torch.get_num_threads()
    job, alone = tmp_path / "bundle" / "job", tmp_path / "alone"
    plan(tiny_clip, tiny_style, job)
    plan(tiny_clip, tiny_style, alone)
    bundle(job, tmp_path / "bundle", "--workers", "2")  # a bundle default, not a -p: the run takes none
    ran = openjd("run", tmp_path / "bundle" / "template.yaml", "--step", FINISH_STEP, "--run-dependencies",
                 tmp_path=tmp_path, timeout=600)
    log = ran.stdout + ran.stderr
    assert ran.returncode == 0 and "Session ended successfully" in log, log
    assert log.count("Worker(INT) = ") == 2 and "openjd_progress: 100.0" in log
    assert "openjd_status: did 0 unit(s); job finished" in log  # the encode step found every unit done
    # the worker tasks left the video to the encode step (--no-finish): it is encoded once, there
    assert log.count("openjd_status: encoding the video") == 1
    assert log.index("openjd_status: encoding the video") > log.index(f"Running step '{FINISH_STEP}'")

    # as many threads as the OpenJD tasks had (OMP_NUM_THREADS=1): bfloat16 sums in another order
    # take L-BFGS elsewhere (on this clip one frame differs by up to 107 levels between 1 and 2 threads)
    local = invoke("work", alone, "--until-done", "--progress", "none", "--threads", "1")
    torch.set_num_threads(threads)
    assert local.exit_code == 0, local.output
    ours = sorted((job / "final").glob("frame_*.png"))
    theirs = sorted((alone / "final").glob("frame_*.png"))
    assert [p.name for p in ours] == [p.name for p in theirs] and len(ours) == 5
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(load_image(a), load_image(b))
    from videostyle.video_io import probe_video
    info = probe_video(job / "tiny_stylized.mp4")
    assert (info.n_frames, info.has_audio) == (5, True)

    # the share mounted elsewhere on this worker: the farm's path mapping rewrites the PATH parameters
    mounted = tmp_path / "mounted"
    mounted.mkdir()
    job.rename(mounted / "job")
    rules = json.dumps({"version": "pathmapping-1.0", "path_mapping_rules": [
        {"source_path_format": "POSIX", "source_path": "/mnt/share", "destination_path": str(mounted)}]})
    ran = openjd("run", tmp_path / "bundle" / "template.yaml", "--step", FINISH_STEP, "-p", "JobDir=/mnt/share/job",
                 "-p", "Output=/mnt/share/job/mapped.mp4", "--path-mapping-rules", rules, tmp_path=tmp_path)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert probe_video(mounted / "job" / "mapped.mp4").n_frames == 5


def test_openjd_progress_lines(capsys: pytest.CaptureFixture[str]) -> None:
    front = OpenJDProgress()
    front(StageEvent("work", 8))
    front(UnitProgress(Unit("pass_01/frame_00002", "stylize", (), (), lambda: None, label="pass 1/2 frame 2/4"),
                       3, 8, False, 1.0, None))
    front.ended("did 1 unit(s);\nevery unit done", job_done=True)
    assert capsys.readouterr().out.splitlines() == [
        "openjd_status: working on a job of 8 units",
        "openjd_progress: 37.5",
        "openjd_status: 3/8 units done; last pass 1/2 frame 2/4",
        "openjd_progress: 100.0",
        "openjd_status: did 1 unit(s); every unit done",
    ]


def test_an_openjd_session_gets_openjd_lines_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(OPENJD_SESSION_VARIABLE, raising=False)
    assert isinstance(worker_progress("auto"), TerminalProgress)
    monkeypatch.setenv(OPENJD_SESSION_VARIABLE, "/tmp/session")
    assert isinstance(worker_progress("auto"), OpenJDProgress)
    assert isinstance(worker_progress("bar"), TerminalProgress)
    assert isinstance(worker_progress("openjd"), OpenJDProgress)


def test_a_folder_with_its_own_template_is_not_written_over(tiny_clip: Path, tiny_style: Path,
                                                            tmp_path: Path) -> None:
    job = tmp_path / "job"
    plan(tiny_clip, tiny_style, job)
    folder = tmp_path / "studio"
    folder.mkdir()
    (folder / "template.yaml").write_text("specificationVersion: jobtemplate-2023-09\nname: comp\n")
    (folder / "parameter_values.yaml").write_text("mine\n")
    result = invoke("openjd", job, "-o", folder)
    assert result.exit_code == 2 and "that videostyle did not write" in result.output, result.output
    assert (folder / "template.yaml").read_text().endswith("name: comp\n")
    assert (folder / "parameter_values.yaml").read_text() == "mine\n"
    bundle(job, tmp_path / "ours")
    bundle(job, tmp_path / "ours")  # its own bundle is written again
