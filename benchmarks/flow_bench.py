"""Optical flow methods: seconds per field and endpoint error, in one run.

    /work/venv/bin/python benchmarks/flow_bench.py [--methods deepflow,dis] [--repeats 2]

For each method, on a 450x350 synthetic pair with known flow (flow.synthetic: rotating, shifting
background, 7-20 px motion, a disc moving over it): seconds per field (median of ``repeats``
timed runs after one warm-up), endpoint error (EPE) of the forward and backward flow over pixels
visible in both frames, EPE of the forward flow on the moving disc alone, and how the
consistency check built on that method's flows sorts pixels (share of truly occluded pixels
marked unreliable, share of visible pixels kept reliable).

When ../shared/data is present, also on the authors' five marple frames (450x350): EPE against
their DeepMatching+DeepFlow flows, and the IoU of the unreliable regions of our masks and theirs.
Finally the time of one consistency check and how exactly it reproduces the authors' 8 masks.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import flow  # noqa: E402
from flow.io import to_mask_uint8  # noqa: E402
from flow.synthetic import Motion, endpoint_error, make_pair  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "artistic-videos-example"
# Background 6-21 px, the disc 8 px and 18 px relative to the background behind it.
BENCH_MOTION = Motion(shift=(12.0, -6.0), rotation_deg=1.5, disc_radius=50.0,
                      disc_centre=(0.45, 0.5), disc_shift=(0.0, 8.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(flow.available_methods()))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--width", type=int, default=450)
    parser.add_argument("--height", type=int, default=350)
    args = parser.parse_args()
    methods = [m for m in args.methods.split(",") if m]

    print(f"OpenCV {cv2.__version__}, {cv2.getNumThreads()} OpenCV threads")
    pair = make_pair(args.height, args.width, BENCH_MOTION, seed=3)
    magnitude = np.hypot(pair.forward[..., 0], pair.forward[..., 1])
    print(f"synthetic {args.width}x{args.height}: motion "
          f"{magnitude.min():.1f}..{magnitude.max():.1f} px, "
          f"{pair.occluded_a.mean():.1%} of frame a occluded or leaving the image")
    marple = _marple_frames()
    print()
    header = (f"{'method':10s} {'s/field':>8s} {'EPE fwd':>8s} {'EPE bwd':>8s} {'EPE disc':>8s}"
              f" {'occl->unrel':>11s}"
              f" {'vis->rel':>8s}")
    if marple:
        header += f" {'marple EPE':>10s} {'mask IoU':>8s}"
    print(header)
    for method in methods:
        print(_method_row(method, pair, marple, args.repeats), flush=True)
    print()
    _consistency_report()


def _method_row(method: str, pair, marple, repeats: int) -> str:
    estimator = flow.create_estimator(method)
    estimator(pair.a, pair.b)  # warm-up: builds the OpenCV object
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        forward = estimator(pair.a, pair.b)
        times.append(time.perf_counter() - start)
    backward = estimator(pair.b, pair.a)
    visible_a, visible_b = ~pair.occluded_a, ~pair.occluded_b
    reliable = flow.consistency_check(forward, backward) >= 128
    row = (f"{method:10s} {statistics.median(times):8.3f}"
           f" {endpoint_error(forward, pair.forward, visible_a):8.3f}"
           f" {endpoint_error(backward, pair.backward, visible_b):8.3f}"
           f" {endpoint_error(forward, pair.forward, visible_a & pair.disc_a):8.3f}"
           f" {(~reliable[pair.occluded_a]).mean():11.1%} {reliable[visible_a].mean():8.1%}")
    if marple:
        epe, iou = _marple_scores(estimator, marple)
        row += f" {epe:10.3f} {iou:8.3f}"
    return row


def _marple_frames() -> list[np.ndarray]:
    if not SHARED.is_dir():
        print(f"({SHARED} absent: skipping the comparison with the authors' flows)")
        return []
    frames = []
    for i in range(1, 6):
        bgr = cv2.imread(str(SHARED / f"marple8_{i:02d}.ppm"), cv2.IMREAD_COLOR)
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return frames


def _marple_scores(estimator, frames: list[np.ndarray]) -> tuple[float, float]:
    """Mean EPE vs the authors' 8 flows, and mean IoU of unreliable regions vs their masks."""
    errors, ious = [], []
    deepflow_dir = SHARED / "deepflow"
    for i in range(1, len(frames)):
        j = i + 1
        forward = estimator(frames[i - 1], frames[j - 1])
        backward = estimator(frames[j - 1], frames[i - 1])
        for ours, name in ((forward, f"forward_{i}_{j}.flo"), (backward, f"backward_{j}_{i}.flo")):
            errors.append(endpoint_error(ours, flow.read_flo(deepflow_dir / name)))
        for ours, theirs in ((flow.consistency_check(forward, backward), f"reliable_{i}_{j}.pgm"),
                             (flow.consistency_check(backward, forward), f"reliable_{j}_{i}.pgm")):
            ious.append(_unreliable_iou(ours, flow.read_pgm(deepflow_dir / theirs)))
    return float(np.mean(errors)), float(np.mean(ious))


def _unreliable_iou(ours: np.ndarray, theirs: np.ndarray) -> float:
    a, b = ours < 128, theirs < 128
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0


def _consistency_report() -> None:
    rng = np.random.default_rng(0)
    w, w_hat = (rng.normal(0, 3, (350, 450, 2)).astype(np.float32) for _ in range(2))
    times = []
    for _ in range(5):
        start = time.perf_counter()
        flow.consistency_check(w, w_hat)
        times.append(time.perf_counter() - start)
    print(f"consistency_check 450x350: {statistics.median(times) * 1000:.1f} ms")
    if not SHARED.is_dir():
        return
    deepflow_dir = SHARED / "deepflow"
    exact = total = 0
    worst = 0.0
    for i in range(1, 5):
        j = i + 1
        fwd = flow.read_flo(deepflow_dir / f"forward_{i}_{j}.flo")
        bwd = flow.read_flo(deepflow_dir / f"backward_{j}_{i}.flo")
        for ours, name in ((flow.consistency_check(fwd, bwd), f"reliable_{i}_{j}.pgm"),
                           (flow.consistency_check(bwd, fwd), f"reliable_{j}_{i}.pgm")):
            theirs = flow.read_pgm(deepflow_dir / name).astype(int)
            diff = np.abs(to_mask_uint8(ours).astype(int) - theirs)
            exact += int((diff == 0).sum())
            total += diff.size
            worst = max(worst, float(diff.mean()))
    print(f"authors' 8 masks from their flows: {exact / total:.4%} of pixels identical, "
          f"worst mean abs difference {worst:.4f}")


if __name__ == "__main__":
    main()
