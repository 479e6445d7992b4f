"""The CUDA path measured: seconds per iteration and peak GPU memory at 512 px, 1080p and 4K, frames
per minute of the ``default`` preset at 1080p, and whether batching frames in one VGG call helps.

* Per size (16:9 frames 512, 1920 and 3840 wide): a Stylizer with the default style settings in
  the device's fast precision (bfloat16 from compute capability 8, float16 with loss scaling
  below), ``--warmup`` iterations, then ``--iterations`` timed (the progress callback reads the
  losses, which synchronises the GPU). Peak memory: ``torch.cuda.max_memory_allocated`` (what
  tensors held) and ``max_memory_reserved`` (what the caching allocator took from the driver),
  beside :func:`videostyle.frame.memory.estimate_bytes`.
* ``default`` at 1080p: its passes x iterations, the coarse passes at its coarse scale, timed per
  iteration at both sizes; frames per minute of the stylization alone (optical flow runs on the
  CPU and is not counted).
* Batching (``video.batch_frames``): N distinct frames stylized together by
  ``Stylizer.stylize_batch`` (one VGG-19 forward + backward of N,3,H,W per iteration, each frame
  its own L-BFGS) against one at a time, N = 1, 2, 4, 8 (``--batch-sizes``) at ``--batch-width``
  (4:3), ``--iterations`` each: seconds per frame both ways, the speed-up, frames per second
  batched, and the batched frames' total losses against the unbatched ones (mean relative
  difference, largest). ``benchmarks/batch_bench.py`` does the same on any device.

    python benchmarks/gpu_bench.py [--device cuda] [--widths 512,1920,3840] [--iterations 20]
        [--warmup 3] [--batch-width 512] [--batch-sizes 1,2,4,8]

Without CUDA it prints one line and exits with status 1.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))  # batch_bench
STYLE = ROOT / "samples" / "swirls.png"
CONTENT = ROOT.parent / "shared" / "data" / "photos" / "tubingen.jpg"
GB = 1e9


def _frame(width: int, height: int) -> np.ndarray:
    from videostyle.images import load_image, resize

    return resize(load_image(CONTENT if CONTENT.exists() else STYLE), (width, height)).astype(np.float32)


def _stylizer(width: int, height: int, device: torch.device, preset: str | None = None):
    from videostyle.config import StyleSettings, resolve_settings
    from videostyle.images import load_image
    from videostyle.frame.stylize import Stylizer

    settings = resolve_settings(preset).style if preset else StyleSettings()
    return Stylizer([load_image(STYLE)], settings, (height, width), device=str(device))


def seconds_per_iteration(stylizer, frame: np.ndarray, iterations: int, warmup: int, scale: float = 1.0) -> float:
    """Wall seconds per iteration after ``warmup`` iterations (GPU synchronised by the callback)."""
    marks: dict[int, float] = {}
    stylizer.stylize(frame, iterations=warmup + iterations, scale=scale, seed=0,
                     callback=lambda p: marks.__setitem__(p.iteration, time.perf_counter()))
    return (marks[warmup + iterations] - marks[warmup]) / iterations


def size_table(widths: list[int], device: torch.device, iterations: int, warmup: int) -> None:
    from videostyle.config import StyleSettings
    from videostyle.frame.memory import estimate_bytes

    print(f"{'size':>10} {'precision':>24} {'s/it':>7} {'allocated GB':>12} {'reserved GB':>11} {'estimate GB':>11}")
    for width in widths:
        height = width * 9 // 16
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        stylizer = _stylizer(width, height, device)
        seconds = seconds_per_iteration(stylizer, _frame(width, height), iterations, warmup)
        estimate = estimate_bytes(height, width, StyleSettings(), device)
        allocated, reserved = torch.cuda.max_memory_allocated(device), torch.cuda.max_memory_reserved(device)
        print(f"{width:>5}x{height:<4} {stylizer.precision.name:>24} {seconds:7.3f} {allocated / GB:12.2f} "
              f"{reserved / GB:11.2f} {estimate / GB:11.2f}", flush=True)
        del stylizer


def default_frames_per_minute(device: torch.device, iterations: int, warmup: int) -> None:
    from videostyle.config import resolve_settings

    video = resolve_settings("default").video
    stylizer = _stylizer(1920, 1080, device, preset="default")
    frame = _frame(1920, 1080)
    full = seconds_per_iteration(stylizer, frame, iterations, warmup)
    coarse = seconds_per_iteration(stylizer, frame, iterations, warmup, scale=video.coarse_scale)
    per_frame = video.iterations * (video.coarse_passes * coarse + (video.passes - video.coarse_passes) * full)
    print(f"default at 1920x1080: {video.passes} passes x {video.iterations} iterations ({video.coarse_passes} at "
          f"{video.coarse_scale:g} scale): {full:.3f} s/it full, {coarse:.3f} s/it coarse, {per_frame:.1f} s per "
          f"frame, {60 / per_frame:.2f} frames per minute (stylization only)", flush=True)


def batching_table(device: torch.device, width: int, batches: list[int], iterations: int) -> None:
    """``batch_frames`` on this GPU: seconds per frame of frames stylized together (one VGG-19 call
    per iteration for all, each frame its own L-BFGS) against one at a time, and their per-frame
    losses (see ``benchmarks/batch_bench.py``)."""
    from batch_bench import batch_table

    batch_table(str(device), width, batches, iterations, with_joint=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--widths", default="512,1920,3840")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch-width", type=int, default=512)
    parser.add_argument("--batch-sizes", default="1,2,4,8")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("gpu_bench: CUDA is not available on this machine (torch.cuda.is_available() is False); "
                 "run it where a GPU is")
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device)
    print(f"{name}, compute capability {'.'.join(map(str, torch.cuda.get_device_capability(device)))}, "
          f"torch {torch.__version__}", flush=True)
    size_table([int(w) for w in args.widths.split(",")], device, args.iterations, args.warmup)
    default_frames_per_minute(device, args.iterations, args.warmup)
    batching_table(device, args.batch_width, [int(b) for b in args.batch_sizes.split(",")], args.iterations)


if __name__ == "__main__":
    main()
