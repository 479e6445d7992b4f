"""Farm workers on one job folder, and the Ray engine: every unit done once, same result."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from videostyle.journal import read_journal
from videostyle.images import load_image

FAST = ["--flow", "dis", "--passes", "2", "--iterations", "6", "--temporal-from", "2",
        "--style-layers", "relu1_1,relu2_1", "--content-layers", "relu2_2", "-q"]


def videostyle(*args: str | Path, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "videostyle", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def finished(proc: subprocess.Popen, timeout: float = 300) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err.decode()
    return out.decode()


def final_frames(job: Path) -> list[np.ndarray]:
    return [load_image(p) for p in sorted((job / "final").glob("frame_*.png"))]


def plan_job(clip: Path, style: Path, job: Path) -> None:
    finished(videostyle("run", clip, "--style", style, "--job-dir", job, "-o", job / "out.mp4",
                        "--segment-length", "2", "--plan-only", *FAST))


def _lock_of(job: Path, pid: int) -> bool:
    for lock in (job / "locks").glob("*/*.lock"):
        try:
            if json.loads(lock.read_text()).get("pid") == pid:
                return True
        except (OSError, ValueError):
            continue
    return False


def test_two_workers_one_killed_mid_unit(tiny_clip: Path, tiny_style: Path, tmp_path: Path) -> None:
    shared, alone = tmp_path / "shared", tmp_path / "alone"
    plan_job(tiny_clip, tiny_style, shared)
    plan_job(tiny_clip, tiny_style, alone)
    listing = finished(videostyle("plan", shared))
    assert "anchors/frame_00003" in listing and "ready" in listing

    doomed = videostyle("work", shared, "--until-done", "--lock-ttl", "2")
    survivor = videostyle("work", shared, "--until-done", "--lock-ttl", "2")
    deadline = time.time() + 120
    while time.time() < deadline and not (len(read_journal(shared)) >= 1 and _lock_of(shared, doomed.pid)):
        time.sleep(0.02)
    assert _lock_of(shared, doomed.pid), "the first worker never held a unit"
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    finished(survivor)

    journal = Counter(entry["unit"] for entry in read_journal(shared))
    assert journal and max(journal.values()) == 1, journal
    assert len(journal) == len([l for l in finished(videostyle("plan", shared, "--all")).splitlines()
                                if l.startswith("done")])
    assert (shared / "out.mp4").is_file()

    finished(videostyle("work", alone, "--until-done"))
    a, b = final_frames(shared), final_frames(alone)
    assert len(a) == len(b) == 5
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


@pytest.fixture()
def ray_with_a_gpu():
    """An embedded Ray that says it has a GPU (none is needed: Ray only counts it), shut down after."""
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
@pytest.mark.farm
def test_ray_engine_matches_local_and_gives_a_gpu_to_stylization_only(
        ray_with_a_gpu, tiny_clip: Path, tiny_style: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from click.testing import CliRunner
    from videostyle.cli import main

    common = ["--style", tiny_style, "--segment-length", "2", "--no-video", *FAST]
    caplog.set_level(logging.DEBUG, logger="videostyle.ray_engine")
    result = CliRunner().invoke(main, [str(a) for a in ("run", tiny_clip, "--job-dir", tmp_path / "ray",
                                                        "--engine", "ray", *common)])
    assert result.exit_code == 0, result.output
    finished(videostyle("run", tiny_clip, "--job-dir", tmp_path / "local", *common))
    journal = Counter(entry["unit"] for entry in read_journal(tmp_path / "ray"))
    assert journal and max(journal.values()) == 1
    for x, y in zip(final_frames(tmp_path / "ray"), final_frames(tmp_path / "local"), strict=True):
        np.testing.assert_array_equal(x, y)
    # what Ray gave each task, as the task itself saw it
    given = dict(m.groups() for m in map(RAN_ON_RAY.match, caplog.messages) if m)
    assert len(given) == len(journal)
    assert {given[name] for name in given if name.startswith("flow/")} == {"CPU 1"}
    assert {given[name] for name in given if not name.startswith("flow/")} == {"CPU 1, GPU 1"}


RAN_ON_RAY = re.compile(r"(\S+) ran on Ray with (.+)$")


def test_stylization_units_ask_for_the_gpus_the_device_needs_and_flow_units_for_none() -> None:
    from videostyle.ray_engine import stylize_gpus, unit_resources
    from videostyle.units import Unit

    assert stylize_gpus("cuda", None, cluster_gpus=4) == stylize_gpus("cuda:0", None, cluster_gpus=4) == 1
    assert stylize_gpus("auto", None, cluster_gpus=2) == 1  # Ray would hide the GPUs from a task asking none
    assert stylize_gpus("auto", None, cluster_gpus=0) == 0
    assert stylize_gpus("cpu", None, cluster_gpus=2) == 0
    assert stylize_gpus("auto", 0.5, cluster_gpus=2) == 0.5 and stylize_gpus("auto", 0, cluster_gpus=2) == 0
    flow = Unit("flow/1-2", "flow", (), (), lambda: None)
    frame = Unit("pass_01/frame_00001", "stylize", (), (), lambda: None)
    assert unit_resources(flow, 0.5) == {"num_cpus": 1, "num_gpus": 0}
    assert unit_resources(frame, 0.5) == {"num_cpus": 1, "num_gpus": 0.5}
    assert stylize_gpus("cuda:1", 2, cluster_gpus=4) == 2  # a task given two GPUs sees cuda:0 and cuda:1


@pytest.mark.parametrize("job_device, gpus, message", [
    ("cpu", "1", "error: --ray-gpus 1 asks a CUDA GPU for each stylization task, but --device cpu does not"),
    ("cuda", "0", "error: --ray-gpus 0 hides the GPUs from the tasks, but --device cuda stylizes on one"),
    ("cuda:1", "1", "error: --device cuda:1 names a GPU, but Ray shows each task only the 1 it is given"),
])
def test_ray_gpus_against_the_device_is_refused_before_any_work(tiny_clip: Path, tiny_style: Path, tmp_path: Path,
                                                               job_device: str, gpus: str, message: str) -> None:
    from click.testing import CliRunner
    from videostyle.cli import main

    result = CliRunner().invoke(main, ["run", str(tiny_clip), "--style", str(tiny_style), "--job-dir",
                                       str(tmp_path / "job"), "--engine", "ray", "--ray-gpus", gpus,
                                       "--device", job_device])
    assert result.exit_code == 2 and result.output.startswith(message), result.output
    assert result.output.count("\n") == 1 and not (tmp_path / "job").exists()


def test_ray_client_address_without_the_client_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    ray = pytest.importorskip("ray")
    from videostyle.errors import UserError
    from videostyle.ray_engine import connect

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.setitem(sys.modules, "grpc", None)  # as after a plain `pip install ray`
    with pytest.raises(UserError, match=r"videostyle\[ray\]"):
        connect("ray://head:10001", None)


def test_ray_client_uses_the_token_ray_init_would_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from videostyle.ray_engine import _use_token_auth_when_a_token_exists

    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "auth_token"))
    _use_token_auth_when_a_token_exists()
    assert "RAY_AUTH_MODE" not in os.environ  # no token: leave the cluster's default alone
    (tmp_path / "auth_token").write_text("secret")
    _use_token_auth_when_a_token_exists()
    assert os.environ["RAY_AUTH_MODE"] == "token"
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    _use_token_auth_when_a_token_exists()
    assert os.environ["RAY_AUTH_MODE"] == "disabled"  # an explicit choice wins


def test_a_worker_needs_only_the_job_folder(tiny_clip: Path, tiny_style: Path, tmp_path: Path) -> None:
    # Planned on one machine; the worker sees the share mounted elsewhere, and not the input,
    # the style image or the output's folder.
    from conftest import make_clip
    from videostyle.video_io import probe_video

    planner = tmp_path / "planner"
    planner.mkdir()
    clip, style = planner / "clip.mp4", planner / "style.png"
    make_clip(clip)
    style.write_bytes(tiny_style.read_bytes())
    plan_job(clip, style, planner / "job")
    reference = tmp_path / "reference"
    plan_job(clip, style, reference)
    finished(videostyle("work", reference, "--until-done"))

    moved = tmp_path / "mounted_elsewhere" / "job"
    moved.parent.mkdir()
    (planner / "job").rename(moved)
    clip.unlink()
    style.unlink()
    finished(videostyle("work", moved, "--until-done"))

    for x, y in zip(final_frames(moved), final_frames(reference), strict=True):
        np.testing.assert_array_equal(x, y)
    info = probe_video(moved / "out.mp4")  # its planned folder is gone: the video lands in the job
    assert (info.n_frames, info.has_audio) == (5, True)


def test_the_default_output_goes_into_the_job_folder_named_as_planned(tiny_clip: Path, tiny_style: Path,
                                                                     tmp_path: Path) -> None:
    """A worker writes only inside the job folder (or to its own -o), never where job.json points."""
    planned_from, worker_cwd = tmp_path / "planned_from", tmp_path / "worker"
    planned_from.mkdir()
    worker_cwd.mkdir()
    finished(videostyle("run", tiny_clip, "--style", tiny_style, "--job-dir", tmp_path / "job", "--plan-only",
                        *FAST, cwd=planned_from))
    finished(videostyle("work", tmp_path / "job", "--until-done", cwd=worker_cwd))
    assert (tmp_path / "job" / "tiny_stylized.mp4").is_file()
    assert not list(planned_from.iterdir()) and not list(worker_cwd.iterdir())


def test_a_waiting_worker_looks_again_soon_then_less_and_less_often(monkeypatch: pytest.MonkeyPatch) -> None:
    from videostyle import executor

    slept: list[float] = []
    looks = iter([False] * 6 + [True])  # the other worker finishes the unit after six looks
    monkeypatch.setattr(executor, "claim", lambda *a: None)
    monkeypatch.setattr(executor, "is_done", lambda *a: next(looks))
    monkeypatch.setattr(executor, "journal_moved", lambda job: None)  # nothing to watch: plain sleeps
    monkeypatch.setattr(executor.time, "sleep", slept.append)
    assert executor.run_when_free(None, None, None, 600.0, poll_seconds=1.0) is None  # type: ignore[arg-type]
    assert slept == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]

    backoff = executor.PollBackoff(2.0)
    assert [backoff.delay() for _ in range(3)] == [0.1, 0.2, 0.4]
    backoff.reset()  # work again: the next wait is short again
    assert backoff.delay() == 0.1


def test_a_waiting_worker_wakes_when_the_journal_moves(tmp_path: Path) -> None:
    from videostyle.executor import PollBackoff, journal_moved
    from videostyle.jobdir import JobDir

    job = JobDir(tmp_path)
    watch = journal_moved(job)
    assert watch() is None  # no journal yet
    job.journal_dir.mkdir()
    before = watch()
    backoff = PollBackoff(longest=30.0, first=30.0)
    started = time.monotonic()
    timer = threading.Timer(0.3, lambda: (job.journal_dir / "unit~1.json").write_text("{}"))
    timer.start()
    backoff.wait(watch)
    timer.join()
    assert time.monotonic() - started < 5.0  # woken by the new record, not after 30 s
    assert watch() != before
    assert backoff.delay() == 30.0  # and the backoff starts again from its first wait
