"""Frames stylized together (``batch_frames``) against one at a time, on any device: seconds per
frame and per-frame loss at the same iterations.

For each N (``--batch-sizes``), N distinct frames (windows of a photo panned across it, each
from its own noise) are stylized three ways with the ``--preset``'s style settings (no early
stop, so every frame runs the whole budget):

* alone: :meth:`Stylizer.stylize` on each frame, one after another;
* batched: :meth:`Stylizer.stylize_batch`, one VGG-19 call per iteration for all N, each frame
  with its own L-BFGS (what ``batch_frames`` runs);
* joint: one L-BFGS over the N frames' pixels together (the simplest batching, not used: its first
  step and its curvature pairs mix the frames), for comparison.

Reported per N: seconds per frame alone and batched, the speed-up, frames per second batched,
and each way's per-frame total loss against alone's (mean relative difference and the largest
one in absolute value). Timed after one untimed call per way (network and style targets built),
alone and batched interleaved ``--rounds`` times, the fastest of each kept (the machine may be
shared).

    python benchmarks/batch_bench.py [--device cpu] [--width 128] [--batch-sizes 1,2,4]
        [--iterations 20] [--threads 2] [--preset default] [--rounds 3] [--no-joint]

``benchmarks/gpu_bench.py`` runs it on CUDA (512 px, N = 1, 2, 4, 8).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
STYLE = ROOT / "samples" / "swirls.png"
CONTENT = ROOT.parent / "shared" / "data" / "photos" / "tubingen.jpg"


def panned_frames(width: int, height: int, n: int) -> list[np.ndarray]:
    """``n`` windows of ``width`` x ``height`` panned across the photo (the style image without it)."""
    from videostyle.images import load_image, resize

    source = load_image(CONTENT if CONTENT.exists() else STYLE)
    wide = resize(source, (width * 3 // 2, height)).astype(np.float32)
    step = max(1, (wide.shape[1] - width) // max(1, n))
    return [np.ascontiguousarray(wide[:, k * step:k * step + width]) for k in range(n)]


def make_stylizer(width: int, height: int, device: str, preset: str):
    from videostyle.config import resolve_settings
    from videostyle.frame.stylize import Stylizer
    from videostyle.images import load_image

    settings = dataclasses.replace(resolve_settings(preset).style, tol_loss_relative=0.0)
    return Stylizer([load_image(STYLE)], settings, (height, width), device=device)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def alone(stylizer, frames: list[np.ndarray], iterations: int) -> tuple[float, list[float]]:
    """Seconds per frame and each frame's total loss, one frame after another."""
    start = time.perf_counter()
    results = [stylizer.stylize(f, iterations=iterations, seed=k) for k, f in enumerate(frames)]
    _synchronize(stylizer.device)
    return (time.perf_counter() - start) / len(frames), [r.losses["total"] for r in results]


def batched(stylizer, frames: list[np.ndarray], iterations: int) -> tuple[float, list[float]]:
    """Seconds per frame and each frame's total loss, all frames in one batched call."""
    from videostyle.frame.stylize import FrameTask

    start = time.perf_counter()
    results = stylizer.stylize_batch([FrameTask(f, seed=k) for k, f in enumerate(frames)], iterations=iterations)
    _synchronize(stylizer.device)
    return (time.perf_counter() - start) / len(frames), [r.losses["total"] for r in results]


def joint(stylizer, frames: list[np.ndarray], iterations: int) -> tuple[float, list[float]]:
    """As :func:`batched`, with one L-BFGS over every frame's pixels (their summed loss)."""
    from videostyle.frame.losses import OBJECTIVE_SCALE
    from videostyle.frame.memory import lbfgs_history_size
    from videostyle.frame.objectives import together
    from videostyle.frame.optimize import optimize

    start = time.perf_counter()
    objectives = [stylizer._objective(f, (), 0.0, 0) for f in frames]
    each = together(objectives)
    x = torch.cat([stylizer._initial_pixels("random", f, k) for k, f in enumerate(frames)]).requires_grad_(True)

    def summed(pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        terms = each(pixels, range(len(frames)))
        return {kind: sum(t[kind] for t in terms) for kind in terms[0]}

    s = stylizer.settings
    optimize(x, summed, iterations=iterations, learning_rate=s.learning_rate,
             objective_scale=OBJECTIVE_SCALE[s.normalization], loss_scaling=stylizer.precision.loss_scaling,
             history_size=lbfgs_history_size(frames[0].shape[0] * frames[0].shape[1]))
    pixels = x.detach().clamp(0.0, 255.0)
    reports = stylizer._reports([o.in_network(stylizer._reference_net) for o in objectives],
                                [pixels[k:k + 1] for k in range(len(frames))])
    _synchronize(stylizer.device)
    return (time.perf_counter() - start) / len(frames), [r["total"] for r in reports]


def _against(losses: list[float], reference: list[float]) -> str:
    """Mean relative difference and the largest in absolute value, in percent."""
    diffs = [(a - b) / b for a, b in zip(losses, reference)]
    worst = max(diffs, key=abs)
    return f"{100 * statistics.mean(diffs):+7.2f}% {100 * worst:+7.2f}%"


def batch_table(device: str, width: int, batches: list[int], iterations: int, preset: str = "default",
                with_joint: bool = True, rounds: int = 3) -> None:
    height = width * 3 // 4
    stylizer = make_stylizer(width, height, device, preset)
    warm = panned_frames(width, height, 1)
    for way in (alone, batched) + ((joint,) if with_joint else ()):
        way(stylizer, warm, 1)
    print(f"{stylizer.device.type} {stylizer.precision.name}, {width}x{height}, {iterations} iterations, preset "
          f"{preset}, {torch.get_num_threads()} threads")
    print(f"{'N':>2} {'alone s/frame':>13} {'batched s/frame':>15} {'speed-up':>8} {'batched frames/s':>16} "
          f"{'batched loss vs alone: mean, worst':>34}" + (f" {'joint L-BFGS vs alone':>22}" if with_joint else ""))
    for n in batches:
        frames = panned_frames(width, height, n)
        try:
            timed = [(alone(stylizer, frames, iterations), batched(stylizer, frames, iterations))
                     for _ in range(rounds)]  # interleaved: load from other processes hits both alike
            one, together_seconds = min(t[0][0] for t in timed), min(t[1][0] for t in timed)
            reference, together_losses = timed[0][0][1], timed[0][1][1]
            shared = f" {_against(joint(stylizer, frames, iterations)[1], reference):>22}" if with_joint else ""
        except torch.cuda.OutOfMemoryError:
            print(f"{n:>2} out of GPU memory")
            torch.cuda.empty_cache()
            break
        print(f"{n:>2} {one:13.3f} {together_seconds:15.3f} {one / together_seconds:7.2f}x "
              f"{1 / together_seconds:16.2f} {_against(together_losses, reference):>34}{shared}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--batch-sizes", default="1,2,4")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--rounds", type=int, default=3, help="timings per way and N, the fastest kept")
    parser.add_argument("--no-joint", action="store_true", help="leave out the joint L-BFGS comparison")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    batch_table(args.device, args.width, [int(b) for b in args.batch_sizes.split(",")], args.iterations,
                args.preset, not args.no_joint, args.rounds)


if __name__ == "__main__":
    main()
