"""Farm workers on one shared job folder: 1 worker against 2, and whether the segment joins show.

    /work/venv/bin/python benchmarks/farm_bench.py [--width 128] [--segment-length 8] [--workers 2]
        [--schedule sequential|parallel] [--frames 1-12]

Two job folders are planned with the same settings (``videostyle run … --plan-only``): the
bundled clip, the ``preview`` preset, split into segments of ``--segment-length`` frames. Then,
in one run of this script:

* job A is done by one ``videostyle work --until-done --threads 1`` process;
* job B by ``--workers`` such processes started together on the same folder;
* unless ``--no-baseline``, the same clip without segments by one worker, for reference.

It prints both wall times and their ratio, checks that every unit was done exactly once (the
folder's journal) and that both jobs give the same final frames, then measures the temporal
warping error (``videostyle.metrics``, flow of the input estimated with DeepFlow, the same for
every pair) of job B's frames: at the joins (the pairs that touch an anchor frame) against the
mean inside the segments.

Issue 6's targets: wall time with 2 workers at most 0.6x of 1 worker (on 2 cores, 1 thread each),
warping error at the joins at most 1.2x the mean inside segments.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from videostyle import evaluate, images  # noqa: E402
from videostyle.journal import read_journal  # noqa: E402
from videostyle.jobdir import JobDir  # noqa: E402

SAMPLE_CLIP = REPO / "samples" / "bunny.mp4"
SAMPLE_STYLE = REPO / "samples" / "swirls.png"


def videostyle(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "videostyle", *args]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def check(proc: subprocess.Popen) -> None:
    _, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, proc.args))} failed:\n{err}")


def plan_job(job: Path, args: argparse.Namespace, segment_length: int) -> None:
    check(videostyle("run", str(args.clip), "--style", str(args.style), "--preset", "preview",
                     "--width", str(args.width), "--segment-length", str(segment_length),
                     "--schedule", args.schedule, *(["--frames", args.frames] if args.frames else []),
                     "--flow", args.flow, "--job-dir", str(job), "-o", str(job.with_suffix(".mp4")),
                     "--plan-only", "-q"))


def time_workers(job: Path, n: int) -> float:
    # One thread per worker, and nothing else in the process may take more (BLAS, OpenMP).
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    start = time.perf_counter()
    procs = [videostyle("work", str(job), "--until-done", "--threads", "1", env=env) for _ in range(n)]
    for proc in procs:
        check(proc)
    return time.perf_counter() - start


def units_done_once(job: Path) -> tuple[int, list[str]]:
    counts = Counter(entry["unit"] for entry in read_journal(job))
    return len(counts), sorted(name for name, k in counts.items() if k > 1)


def idle_seconds(job: Path, workers: int, wall: float) -> tuple[float, float]:
    """Worker-seconds spent on no unit (waiting for inputs, or done while another still works),
    and how long before the end the first worker ran out of work (from the journal)."""
    entries = read_journal(job)
    last_finish: dict[int, float] = {}
    for entry in entries:
        last_finish[entry["pid"]] = max(last_finish.get(entry["pid"], 0.0), entry["time"])
    busy = sum(entry["seconds"] for entry in entries)
    return workers * wall - busy, max(last_finish.values()) - min(last_finish.values())


def final_frames(job: Path) -> list[np.ndarray]:
    return [images.load_image(p) for p in evaluate.frame_paths(JobDir(job).final_dir)]


def pair_errors(job: Path, flow_method: str) -> dict[int, float]:
    """Warping error of each pair (t-1, t) of the job's final frames, keyed by t."""
    plain = Path(tempfile.mkdtemp()) / "final"  # outside the job: eval must not reuse its flows
    shutil.copytree(JobDir(job).final_dir, plain)
    report = evaluate.evaluate(plain, input=JobDir(job).frames_dir, flow_method=flow_method, distances=False)
    shutil.rmtree(plain.parent)
    return {p.frame: p.mean_abs for p in report.output_warping.pairs}


def anchors_of(job: Path) -> list[int]:
    return JobDir(job).read_manifest()["stylize"]["anchors"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", type=Path, default=SAMPLE_CLIP)
    parser.add_argument("--style", type=Path, default=SAMPLE_STYLE)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--segment-length", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--flow", default="dis", help="flow method of the job")
    parser.add_argument("--schedule", default="sequential", choices=("sequential", "parallel"),
                        help="the multi-pass schedule (parallel: try --segment-length 0)")
    parser.add_argument("--frames", default="", help="a frame range of the clip, e.g. 1-12")
    parser.add_argument("--eval-flow", default="deepflow", help="flow method of the measurement")
    parser.add_argument("--keep", type=Path, help="keep the job folders here")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the whole clip stylized without segments (one more 1-worker run)")
    args = parser.parse_args()

    root = args.keep or Path(tempfile.mkdtemp(prefix="farm_bench_"))
    root.mkdir(parents=True, exist_ok=True)
    one, many, whole = root / "one.vs", root / "many.vs", root / "whole.vs"
    for job in (one, many):
        shutil.rmtree(job, ignore_errors=True)
        plan_job(job, args, args.segment_length)

    t_one = time_workers(one, 1)
    t_many = time_workers(many, args.workers)
    n_one, twice_one = units_done_once(one)
    n_many, twice_many = units_done_once(many)
    a, b = final_frames(one), final_frames(many)
    same = len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))
    anchors = anchors_of(many)
    errors = pair_errors(many, args.eval_flow)
    join_frames = set(anchors) | {a + 1 for a in anchors}  # pairs (a-1, a) and (a, a+1)
    joins = [e for t, e in errors.items() if t in join_frames]
    inside = [e for t, e in errors.items() if t not in join_frames]

    print(f"clip {args.clip.name}, {len(a)} frames at width {args.width}, preset preview, "
          f"segment length {args.segment_length}, anchors {anchors}, {os.cpu_count()} cores")
    print(f"{'workers':>8} {'wall s':>8} {'units':>6} {'done twice':>10}")
    print(f"{1:>8} {t_one:8.1f} {n_one:6d} {len(twice_one):10d}")
    print(f"{args.workers:>8} {t_many:8.1f} {n_many:6d} {len(twice_many):10d}")
    print(f"wall time ratio {args.workers} workers / 1 worker: {t_many / t_one:.2f} (target <= 0.6)")
    idle, tail = idle_seconds(many, args.workers, t_many)
    print(f"{args.workers} workers: {idle:.1f} worker-s idle ({idle / (args.workers * t_many):.0%}), "
          f"the first ran out of work {tail:.1f} s before the last")
    print(f"same final frames from 1 and {args.workers} workers: {same}")
    mean_inside = float(np.nanmean(inside))
    if joins:
        mean_join = float(np.nanmean(joins))
        print(f"warping error (0..255, {args.eval_flow} flow of the input): joins {mean_join:.2f} "
              f"({len(joins)} pairs), inside segments {mean_inside:.2f} ({len(inside)} pairs), "
              f"ratio {mean_join / mean_inside:.2f} (target <= 1.2)")
        print("per join pair:", ", ".join(f"{e:.2f}" for e in joins))
    else:  # one shot without segments
        print(f"warping error (0..255, {args.eval_flow} flow of the input): {mean_inside:.2f} over "
              f"{len(inside)} pairs, no joins")
    if not args.no_baseline:
        shutil.rmtree(whole, ignore_errors=True)
        plan_job(whole, args, 0)
        t_whole = time_workers(whole, 1)
        base = pair_errors(whole, args.eval_flow)
        print(f"without segments (1 worker, {t_whole:.1f} s): warping error {np.nanmean(list(base.values())):.2f} "
              f"over all pairs; at the same pairs as the joins "
              f"{np.nanmean([e for t, e in base.items() if t in join_frames]):.2f}")
    if not args.keep:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
