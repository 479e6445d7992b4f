"""Quality and speed of the three ways to stylize a clip, in one table, in one run.

    /work/venv/bin/python benchmarks/quality_bench.py [--frames 6] [--width 96] [--iterations 100]

Methods, each a full ``videostyle.pipeline.run`` in its own job folder (so every stage is timed):

* ``independent``  every frame from random noise, no temporal loss (the ``singlepass`` preset with
                   temporal weight 0 and random init for every frame): the flicker baseline;
* ``singlepass``   Ruder et al. single-pass (``singlepass`` preset): previous result warped as
                   init + temporal loss;
* ``multipass``    Ruder et al. multi-pass (``paper`` preset) with ``passes`` passes, alternating
                   direction, temporal loss from the middle pass on.

All three get the same optimisation budget per frame (``iterations``; multi-pass splits it over
its passes). Clip: the bundled ``samples/bunny.mp4``; styles: ``samples/swirls.png`` and, when
``../shared/data/paintings`` exists, one painting (``--paintings all`` for every painting).

Per style and method it prints: temporal warping error (``videostyle.metrics``, 0..255, flows of
the input computed once per clip and shared, so every row is measured against the same flow),
style distance, content distance, seconds per frame; the wall time split by stage (extract,
flow, stylize, assemble) and the share of stylize time spent inside VGG forward/backward, so
overhead around the network is visible. The input's own warping error is the floor.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from videostyle import evaluate  # noqa: E402
from videostyle.config import Settings, resolve_settings  # noqa: E402
from videostyle.frame.vgg import VGGFeatures  # noqa: E402
from videostyle.pipeline import RunRequest, StageEvent, run  # noqa: E402
from videostyle.units import UnitProgress  # noqa: E402

PAINTINGS = REPO.parent / "shared" / "data" / "paintings"
SAMPLE_CLIP = REPO / "samples" / "bunny.mp4"
SAMPLE_STYLE = REPO / "samples" / "swirls.png"
DEFAULT_PAINTING = "starry_night.jpg"
STAGES = ("extract", "flow", "stylize", "assemble")
METHODS = ("independent", "singlepass", "multipass")


@dataclass
class Timing:
    """Wall seconds per stage (from the pipeline's stage events) and VGG seconds inside them."""

    stages: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    total: float = 0.0
    cpu: float = 0.0  # process CPU seconds, all threads: less sensitive than wall time to other load
    vgg_forward: float = 0.0
    vgg_backward: float = 0.0
    vgg_calls: int = 0
    iterations: int = 0  # optimiser iterations the stylize units report
    frames_stylized: int = 0  # units run (not skipped)


class StageClock:
    """Event callback for ``pipeline.run``: a stage lasts until the next stage starts."""

    def __init__(self, timing: Timing) -> None:
        self.timing = timing
        self.current: str | None = None
        self.since = time.perf_counter()

    def __call__(self, event) -> None:
        if isinstance(event, StageEvent):
            self.stop()
            self.current, self.since = event.stage, time.perf_counter()
        elif isinstance(event, UnitProgress) and event.result is not None and event.unit.stage == "stylize":
            self.timing.iterations += event.result.iterations
            self.timing.frames_stylized += 1

    def stop(self) -> None:
        if self.current is not None:
            self.timing.stages[self.current] += time.perf_counter() - self.since
            self.current = None


class VGGClock:
    """Times every VGGFeatures forward, and the backward through it, with global module hooks.

    Backward through VGG runs from the first gradient reaching one of its outputs to the gradient
    reaching its input; the loss terms' own backward runs before (autograd walks the later-made
    nodes first), so it is not counted.
    """

    def __init__(self, timing: Timing) -> None:
        self.timing = timing
        self.started: dict[int, float] = {}

    def __enter__(self) -> "VGGClock":
        from torch.nn.modules.module import (register_module_forward_hook,
                                             register_module_forward_pre_hook)
        self.handles = [register_module_forward_pre_hook(self._before),
                        register_module_forward_hook(self._after)]
        return self

    def __exit__(self, *exc) -> None:
        for handle in self.handles:
            handle.remove()

    def _before(self, module, args) -> None:
        if isinstance(module, VGGFeatures):
            self.started[id(module)] = time.perf_counter()

    def _after(self, module, args, output) -> None:
        if not isinstance(module, VGGFeatures):
            return
        self.timing.vgg_forward += time.perf_counter() - self.started.pop(id(module))
        self.timing.vgg_calls += 1
        x = args[0] if args else None
        if not (torch.is_grad_enabled() and isinstance(x, torch.Tensor) and x.requires_grad):
            return
        backward_start: list[float] = []

        def output_grad(_grad):
            if not backward_start:
                backward_start.append(time.perf_counter())

        def input_grad(_grad):
            if backward_start:
                self.timing.vgg_backward += time.perf_counter() - backward_start.pop()

        for features in output.values():
            if features.requires_grad:
                features.register_hook(output_grad)
        x.register_hook(input_grad)


def method_settings(method: str, args) -> Settings:
    """The project's preset for ``method`` (``singlepass`` / ``paper``) at the bench's size and
    a fixed budget of ``args.iterations`` optimiser steps per frame (no early stopping)."""
    common = {"style": {"tol_loss_relative": 0.0},
              "flow": {"method": args.flow_method},
              "video": {"width": args.width, "device": "cpu", "seed": 0}}
    if method == "independent":
        preset = "singlepass"
        video = {"temporal_weight": 0.0, "init": "random", "init_rest": "random",
                 "iterations_first": args.iterations, "iterations_rest": args.iterations}
    elif method == "singlepass":
        preset = "singlepass"
        video = {"iterations_first": args.iterations, "iterations_rest": args.iterations}
    else:
        preset = "paper"
        # The paper turns the temporal loss on about halfway (pass 8 of 15).
        video = {"passes": args.passes, "iterations": max(1, args.iterations // args.passes),
                 "temporal_from": args.passes // 2 + 1}
    common["video"].update(video)
    return resolve_settings(preset, overrides=common)


def run_method(method: str, style: Path, job: Path, args) -> tuple[Timing, object]:
    settings = method_settings(method, args)
    job.mkdir(parents=True, exist_ok=True)  # the video goes inside the job folder
    request = RunRequest(input=SAMPLE_CLIP, styles=(style,), settings=settings, job_dir=job,
                         output=job / "out.mp4", frames=(1, args.frames))
    timing = Timing()
    clock = StageClock(timing)
    start, cpu_start = time.perf_counter(), time.process_time()
    with VGGClock(timing):
        result = run(request, on_event=clock)
    clock.stop()
    timing.total = time.perf_counter() - start
    timing.cpu = time.process_time() - cpu_start
    return timing, result


def evaluation_flows(jobs: dict[str, Path]) -> Path:
    """One flow folder all rows are measured with: a job's own flows of the (identical) input."""
    for job in jobs.values():
        folder = evaluate.job_flow_folder(job)
        if folder is not None:
            return folder
    raise SystemExit("no job computed flows; cannot measure temporal consistency")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=6, help="frames of the sample clip")
    parser.add_argument("--width", type=int, default=128, help="working width in pixels")
    parser.add_argument("--iterations", type=int, default=100, help="optimiser steps per frame")
    parser.add_argument("--passes", type=int, default=4, help="multi-pass: passes")
    parser.add_argument("--flow-method", default="deepflow")
    parser.add_argument("--paintings", choices=("one", "all", "none"), default="one",
                        help=f"paintings from {PAINTINGS} besides the sample style")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", type=Path, help="keep job folders here (default: temporary)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)

    styles = [SAMPLE_STYLE] + paintings(args.paintings)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="quality_bench_"))
    print(f"clip {SAMPLE_CLIP.name}, {args.frames} frames at width {args.width}; "
          f"{args.iterations} iterations per frame (multi-pass: {args.passes} passes x "
          f"{max(1, args.iterations // args.passes)}); flow {args.flow_method}; "
          f"{torch.get_num_threads()} threads; jobs in {workdir}", flush=True)

    load_before = os.getloadavg()[0]
    warm_up(args.width)
    rows, split_rows = [], []
    try:
        for style in styles:
            jobs, timings = {}, {}
            for method in METHODS:
                job = workdir / style.stem / method
                print(f"  running {style.stem} / {method} ...", flush=True)
                timings[method], _ = run_method(method, style, job, args)
                jobs[method] = job
            flows = evaluation_flows(jobs)
            stylizers: dict = {}
            for method in METHODS:
                report = evaluate.evaluate(jobs[method], styles=[style], flow_dir=flows,
                                           device="cpu",
                                           stylizer_factory=cached_stylizer_factory(stylizers))
                t = timings[method]
                n = report.n_frames
                rows.append([style.stem, method, f"{report.output_warping.mean_abs:.2f}",
                             f"{report.input_warping.mean_abs:.2f}",
                             f"{report.mean_style_distance:.3f}", f"{report.mean_content_distance:.3f}",
                             f"{t.total / n:.2f}"])
                stylize = t.stages.get("stylize", 0.0)
                vgg = t.vgg_forward + t.vgg_backward
                other = t.total - sum(t.stages.values())
                split_rows.append([style.stem, method, *[f"{t.stages.get(s, 0.0):.1f}" for s in STAGES],
                                   f"{other:.1f}", f"{t.total:.1f}", f"{t.cpu:.1f}",
                                   f"{t.iterations}", f"{t.vgg_calls}",
                                   f"{t.vgg_forward:.1f}", f"{t.vgg_backward:.1f}",
                                   f"{100 * vgg / stylize:.0f}%" if stylize else "-"])
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)

    print()
    print(evaluate.format_table_rows(
        ["style", "method", "warp err", "input floor", "style dist", "content dist", "s/frame"], rows))
    print()
    print("wall seconds by stage; VGG = forward/backward inside the stylize stage's network calls")
    print(evaluate.format_table_rows(
        ["style", "method", *STAGES, "other", "total", "cpu s", "iters", "VGG calls", "VGG fwd", "VGG bwd",
         "VGG/stylize"],
        split_rows))
    print()
    by_method = defaultdict(list)
    for row in rows:
        by_method[row[1]].append(float(row[2]))
    base = _mean(by_method["independent"])
    for method in ("singlepass", "multipass"):
        ratio = _mean(by_method[method]) / base if base else math.nan
        print(f"warping error {method} / independent: {ratio:.2f}")
    # Wall times mean little when other processes share the cores; say how busy they were.
    print(f"load average (1 min) before {load_before:.1f}, after {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores")


def warm_up(width: int) -> None:
    """A few untimed iterations, so the first timed run does not pay for the thread pools' and
    kernels' one-time set-up and the rows compare like with like."""
    import numpy as np

    from videostyle.config import StyleSettings
    from videostyle.frame.stylize import Stylizer

    height = max(32, width * 9 // 16)
    image = np.random.default_rng(0).uniform(0, 255, (height, width, 3)).astype(np.float32)
    Stylizer([image], StyleSettings(), (height, width), device="cpu").stylize(image, iterations=3)


def paintings(which: str) -> list[Path]:
    if which == "none" or not PAINTINGS.is_dir():
        return []
    found = sorted(p for p in PAINTINGS.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if which == "all":
        return found
    preferred = [p for p in found if p.name == DEFAULT_PAINTING]
    return preferred or found[:1]


def cached_stylizer_factory(cache: dict):
    """One Stylizer (VGG + style Grams) per style and frame shape, shared by the three rows."""
    from videostyle.frame.stylize import Stylizer

    def factory(styles, settings, shape, device):
        key = (tuple(hash(s.tobytes()) for s in styles), shape)
        if key not in cache:
            cache[key] = Stylizer(styles, settings, shape, device=device)
        return cache[key]

    return factory


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


if __name__ == "__main__":
    main()
