"""Memory per pixel of one frame's optimisation at steady state, and one 3840-px-wide frame end to end.

Per size, a fresh process (so no size inherits another's heap) loads videostyle, warms up on a
64x64 frame (the libraries the first optimisation loads lazily, about 180 MB, count as the
constant, not per pixel), resets its peak resident set (``/proc/self/clear_refs``), stylizes the
frame for ``history + 2`` iterations (so the L-BFGS history is full) and reads the peak
(``VmHWM``). Reported per size: the history kept, the peak added, bytes per pixel (peak added /
pixels), the marginal bytes per pixel against the next smaller size (what each extra pixel
costs), the estimate of :mod:`videostyle.frame.memory` and seconds per iteration.

Then, unless ``--no-uhd``: one ``--uhd-width`` x (9/16 of it) frame coarse-to-fine, as a user
would run it: ``--coarse-iterations`` at ``--coarse-scale``, then ``--fine-iterations`` at full
size from the enlarged coarse result; whole-process peak (VmHWM, nothing reset) and wall time.

    python benchmarks/memory_bench.py [--widths 256,512,1024,1920] [--threads 2] [--no-uhd]
        [--uhd-width 3840] [--coarse-scale 0.25] [--coarse-iterations 20] [--fine-iterations 6]
        [--tile PX] [--iterations N]

Measured (2-core CPU with AVX512-BF16, bfloat16, while another 2-thread benchmark shared the
cores): 3840x2160 end to end, 20 iterations at 0.25 scale (130 s) and 6 at full size (662 s,
5 history pairs full), whole-process peak 12.70 GB, 902 s in all.

``--tile PX`` evaluates every frame in tiles of PX (see ``videostyle.frame.tiles``), ``--tile 0`` never;
by default the memory plan decides (whole frames on a machine where they fit).
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing as mp
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONTENT = ROOT.parent / "shared" / "data" / "photos" / "tubingen.jpg"
STYLE = ROOT / "samples" / "swirls.png"
MB = 1e6


def _status_bytes(key: str) -> int:
    """A ``/proc/self/status`` field (kB) in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{key} not in /proc/self/status (Linux only)")


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS (Linux >= 4.0)


def _images(width: int, height: int):
    from videostyle.images import load_image, resize

    content = load_image(CONTENT) if CONTENT.exists() else load_image(STYLE)
    return resize(content, (width, height)), load_image(STYLE)


def _steady_state(width: int, height: int, threads: int, tile: int | None, iterations: int
                  ) -> dict[str, float]:
    """In a fresh process: peak bytes one frame adds with the optimiser's history full (with
    ``iterations`` 0; else after that many)."""
    import torch

    from videostyle.config import StyleSettings
    from videostyle.frame.memory import lbfgs_history_size
    from videostyle.frame.stylize import Stylizer

    torch.set_num_threads(threads)
    content, style = _images(width, height)
    settings = StyleSettings()
    warm_content, _ = _images(64, 64)
    Stylizer([style], settings, (64, 64), device="cpu").stylize(warm_content, iterations=3)
    stylizer = Stylizer([style], settings, (height, width), device="cpu", tile=tile)
    history = lbfgs_history_size(width * height)
    iterations = iterations or history + 2
    gc.collect()
    before = _status_bytes("VmRSS")
    _reset_peak()
    started = time.perf_counter()
    result = stylizer.stylize(content, iterations=iterations, seed=0)
    seconds = time.perf_counter() - started
    return {"history": history, "iterations": result.iterations, "added": _status_bytes("VmHWM") - before,
            "seconds_per_iteration": seconds / max(1, result.iterations), "precision": stylizer.precision.name,
            "tile": stylizer.tile_for((height, width))}


def _end_to_end(width: int, height: int, threads: int, coarse_scale: float, coarse_iterations: int,
                fine_iterations: int, tile: int | None) -> dict[str, float]:
    """In a fresh process: a frame coarse-to-fine from loading to result; whole-process peak."""
    import torch

    from videostyle.config import StyleSettings
    from videostyle.frame.stylize import Stylizer

    torch.set_num_threads(threads)
    started = time.perf_counter()
    content, style = _images(width, height)
    stylizer = Stylizer([style], StyleSettings(), (height, width), device="cpu", tile=tile)
    coarse = stylizer.stylize(content, iterations=coarse_iterations, scale=coarse_scale, seed=0)
    fine = stylizer.stylize(content, iterations=fine_iterations, init=coarse.image, seed=0)
    return {"peak": _status_bytes("VmHWM"), "seconds": time.perf_counter() - started,
            "coarse_seconds": coarse.seconds, "fine_seconds": fine.seconds, "fine_iterations": fine.iterations,
            "style_distance": stylizer.style_distance(fine.image), "tile": stylizer.tile_for((height, width))}


def _in_fresh_process(function, *args):
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, args)


def steady_state_table(widths: list[int], threads: int, tile: int | None, iterations: int) -> None:
    from videostyle.config import StyleSettings
    from videostyle.frame.memory import CONSTANT_BYTES, estimate_bytes

    print(f"{'size':>10} {'Mpx':>6} {'pairs':>5} {'its':>4} {'added MB':>9} {'B/px':>6} {'marginal':>8} "
          f"{'est. B/px':>9} {'s/it':>6}", flush=True)
    previous: tuple[int, int] | None = None
    for width in widths:
        height = width * 3 // 4
        pixels = width * height
        row = _in_fresh_process(_steady_state, width, height, threads, tile, iterations)
        marginal = f"{(row['added'] - previous[1]) / (pixels - previous[0]):8.0f}" if previous else f"{'':>8}"
        estimate = (estimate_bytes(height, width, StyleSettings(), tile=row["tile"]) - CONSTANT_BYTES) / pixels
        print(f"{width:>5}x{height:<4} {pixels / 1e6:6.2f} {row['history']:5d} {row['iterations']:4d} "
              f"{row['added'] / MB:9.0f} {row['added'] / pixels:6.0f} {marginal} {estimate:9.0f} "
              f"{row['seconds_per_iteration']:6.2f}  {row['precision']}"
              f"{', tiles of %d px' % row['tile'] if row['tile'] else ''}", flush=True)
        previous = (pixels, row["added"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="256,512,1024,1920", help="frame widths (height 3/4 of each)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-uhd", action="store_true", help="skip the end-to-end 3840-px frame")
    parser.add_argument("--uhd-width", type=int, default=3840)
    parser.add_argument("--coarse-scale", type=float, default=0.25)
    parser.add_argument("--coarse-iterations", type=int, default=20)
    parser.add_argument("--fine-iterations", type=int, default=6)
    parser.add_argument("--tile", type=int, default=None, help="tile core in px for every frame (0: never; "
                        "default: as the memory plan decides)")
    parser.add_argument("--iterations", type=int, default=0, help="per size (default: history + 2)")
    args = parser.parse_args()
    widths = [int(w) for w in args.widths.split(",") if w.strip()]
    if widths:
        steady_state_table(widths, args.threads, args.tile, args.iterations)
    if not args.no_uhd:
        width, height = args.uhd_width, args.uhd_width * 9 // 16
        run = _in_fresh_process(_end_to_end, width, height, args.threads, args.coarse_scale,
                                args.coarse_iterations, args.fine_iterations, args.tile)
        print(f"{width}x{height} end to end: {args.coarse_iterations} iterations at {args.coarse_scale:g} scale "
              f"({run['coarse_seconds']:.0f} s), {run['fine_iterations']} at full size ({run['fine_seconds']:.0f} s); "
              f"whole-process peak {run['peak'] / 1e9:.2f} GB, {run['seconds']:.0f} s in all; "
              f"style distance {run['style_distance']:.3f}"
              f"{'; tiles of %d px' % run['tile'] if run['tile'] else ''}", flush=True)


if __name__ == "__main__":
    main()
