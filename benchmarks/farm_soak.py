"""Soak: workers on one job folder, one of them killed with SIGKILL every few seconds and restarted.

    /work/venv/bin/python benchmarks/farm_soak.py [--workers 4] [--kill-every 3] [--width 64]

Plans the bundled clip twice with the same settings (``videostyle run … --plan-only``, segments
so that many units are ready at once): job A is done by one ``videostyle work --until-done
--threads 1``; job B by ``--workers`` such workers, of which the first is killed with SIGKILL
every ``--kill-every`` seconds and started again, until the job is finished. It prints how many
kills landed, whether every unit of B was recorded exactly once in its journal, whether B's
final frames and video frames equal A's, and the wall times. Exits non-zero when any check fails.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from videostyle.images import load_image  # noqa: E402
from videostyle.journal import read_journal  # noqa: E402
from videostyle.pipeline import plan_from_job  # noqa: E402

SETTINGS = ["--preset", "preview", "--flow", "dis", "--passes", "2", "--coarse-passes", "0", "--iterations", "8",
            "--segment-length", "4", "-q"]


def videostyle(*args: str | Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "videostyle", *map(str, args)], env=env, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def plan(job: Path, width: int) -> None:
    proc = videostyle("run", REPO / "samples" / "bunny.mp4", "--style", REPO / "samples" / "swirls.png",
                      "--job-dir", job, "-o", job / "out.mp4", "--width", str(width), "--plan-only", *SETTINGS)
    if proc.wait() != 0:
        sys.exit(proc.stderr.read().decode())


def worker(job: Path) -> subprocess.Popen:
    return videostyle("work", job, "--until-done", "--threads", "1", "--lock-ttl", "20")


def finished(job: Path) -> bool:
    return (job / "out.mp4").is_file()


def soak(job: Path, workers: int, kill_every: float, timeout: float) -> tuple[int, float]:
    start = time.monotonic()
    procs = [worker(job) for _ in range(workers)]
    kills, last_kill = 0, time.monotonic()
    while not finished(job) and time.monotonic() - start < timeout:
        time.sleep(0.2)
        if time.monotonic() - last_kill >= kill_every and procs[0].poll() is None:
            os.killpg(procs[0].pid, signal.SIGKILL)
            procs[0].wait()
            kills += 1
            procs[0] = worker(job)
            last_kill = time.monotonic()
        for k, proc in enumerate(procs):  # a worker that found nothing left ends; that is fine
            if proc.poll() not in (None, 0):
                if k != 0:
                    sys.exit(f"worker {k} failed: {proc.stderr.read().decode()}")
    for proc in procs:
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    return kills, time.monotonic() - start


def frames(folder: Path) -> list[np.ndarray]:
    return [load_image(p) for p in sorted(folder.glob("frame_*.png"))]


def video_frames(path: Path) -> list[np.ndarray]:
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    return [np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in reader]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--kill-every", type=float, default=3.0)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="soak-"))
    alone, shared = root / "alone", root / "shared"
    plan(alone, args.width)
    plan(shared, args.width)
    t0 = time.monotonic()
    if worker(alone).wait() != 0:
        sys.exit("the single worker failed")
    single = time.monotonic() - t0
    kills, soaked = soak(shared, args.workers, args.kill_every, args.timeout)
    units = {u.name for u in plan_from_job(shared).units}
    counts = Counter(e["unit"] for e in read_journal(shared))
    once = all(counts[u] == 1 for u in units) and set(counts) == units
    same_final = all(np.array_equal(a, b) for a, b in zip(frames(alone / "final"), frames(shared / "final"), strict=True))
    same_video = all(np.array_equal(a, b) for a, b in zip(video_frames(alone / "out.mp4"),
                                                          video_frames(shared / "out.mp4"), strict=True))
    print(f"| units | kills | every unit recorded once | final frames equal | video frames equal | "
          f"1 worker (s) | {args.workers} workers, soaked (s) |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {len(units)} | {kills} | {once} | {same_final} | {same_video} | {single:.0f} | {soaked:.0f} |")
    if not once:
        print("journal counts off:", {u: counts[u] for u in units if counts[u] != 1})
    sys.exit(0 if once and same_final and same_video and kills > 0 else 1)


if __name__ == "__main__":
    main()
