"""Long-term consistency: does background that a passing disc hid come back with its strokes?

    python benchmarks/longrange_bench.py [--presets default,preview] [--clips pan,handheld]
        [--paintings the_scream] [--frames 12] [--width 128] [--variants 'before=1;after=1,2,3,5,10']
        [--data ../shared/data] [--threads 2] [--workdir DIR]

Clips: the synthetic ones of ``temporal_bench.py`` (a photo filmed by a moving camera, a disc cut
from another photo sliding over it), whose exact flow between any two frames is known
(``SyntheticClip.flow_between``). Each variant runs every preset as a user runs it, with the
preset's own flow estimate: ``NAME=OFFSETS`` sets ``flow.long_term`` (``1``: short-term only, as
the presets were), ``:closest_first`` or ``:normalize`` after it ``video.long_term_combine``,
``:SECTION.KEY=VALUE`` sets any setting (e.g.
``:flow.long_term_method=fused``), and ``:exact`` gives the exact flows, the long-range ones included, through ``--flow-files``. Job
folders are kept in ``--workdir`` and reused.

Printed per run, from ``videostyle.metrics.long_range_errors`` (0..255, through the exact flow):
the warping error between frames t and t-k for k = 1..10 over the *revealed* pixels (frame t's
pixels that frame t-k shows and some frame between hides), at k = 1 over every visible pixel (the
usual, short-range warping error); the largest and the mean of the revealed errors as multiples
of the short-range one (the issue's target: at most 1.5x); the error at k = 10 over the pixels
every frame between shows (how far the texture drifts anyway); then the warping error, style and
content distance (``videostyle eval`` with the exact consecutive flows) as ratios to the first
variant's, seconds per frame of the whole run, and the seconds spent on the long-range flows.
The input's own errors are the floor.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO))

from flow.io import reliable_file_name  # noqa: E402
from flow.synthetic import write_long_range_flows  # noqa: E402
import temporal_bench  # noqa: E402
from temporal_bench import (SAMPLE_STYLE, SHARED, SYNTHETIC, has_native_bf16, make_synthetic, measure,  # noqa: E402
                            preset_settings, synthetic_clip, timed_stylize)
from videostyle import evaluate, metrics  # noqa: E402
from videostyle.journal import read_journal  # noqa: E402

MAX_OFFSET = 10
TARGET = 1.5  # long-range error at most this many times the short-range one


@dataclass
class Row:
    clip: str
    painting: str
    preset: str
    variant: str
    errors: list[metrics.LongRangeError]
    warp: float
    style: float
    content: float
    seconds_per_frame: float
    long_flow_seconds: float

    @property
    def short(self) -> float:
        return self.errors[0].steady

    def revealed(self) -> list[float]:
        return [e.revealed for e in self.errors[1:] if not math.isnan(e.revealed)]


@dataclass(frozen=True)
class Variant:
    name: str
    offsets: tuple[int, ...]  # flow.long_term
    exact: bool  # stylized with the exact flows
    combine: str | None  # video.long_term_combine (None: the preset's)
    sets: tuple[str, ...] = ()  # SECTION.KEY=VALUE


COMBINES = ("closest_first", "normalize")


def parse_variants(text: str) -> list[Variant]:
    """``before=1;after=1,5,10;exact=1,5,10:exact;norm=1,5,10:normalize``: a run of each preset per
    variant (``exact``: with the exact flows; ``closest_first``/``normalize``: video.long_term_combine;
    ``SECTION.KEY=VALUE``: any setting, TOML syntax)."""
    variants = []
    for item in text.split(";"):
        name, _, spec = item.partition("=")
        offsets, *flags = spec.split(":")
        sets = tuple(f for f in flags if "=" in f)
        if not set(flags) - set(sets) <= {"exact", *COMBINES}:
            raise SystemExit(f"variant {item!r}: NAME=OFFSETS[:exact][:{'|'.join(COMBINES)}]"
                             "[:SECTION.KEY=VALUE]")
        combine = next((f for f in flags if f in COMBINES), None)
        variants.append(Variant(name.strip(), tuple(int(j) for j in offsets.split(",")), "exact" in flags, combine,
                                sets))
    return variants


def long_flow_seconds(job: Path) -> float:
    """Seconds the job's flow units spent on pairs further apart than neighbours (journal)."""
    total = 0.0
    for record in read_journal(job):
        name = str(record.get("unit", ""))
        if name.startswith("flow/"):
            a, b = (int(x) for x in name.removeprefix("flow/").split("-"))
            total += float(record.get("seconds", 0.0)) if b - a > 1 else 0.0
    return total


def fmt(value: float, digits: int = 2) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def print_rows(rows: list[Row], floors: dict[str, list[metrics.LongRangeError]]) -> None:
    first = {(r.clip, r.painting, r.preset): r for r in reversed(rows)}
    table = []
    for clip, errors in floors.items():
        revealed = [e.revealed for e in errors[1:] if not math.isnan(e.revealed)]
        table.append([clip, "input", "-", "-", *(fmt(e.steady if e.offset == 1 else e.revealed) for e in errors),
                      fmt(max(revealed) / errors[0].steady), fmt(float(np.mean(revealed)) / errors[0].steady),
                      fmt(errors[-1].steady), "-", "-", "-", "-", "-"])
    for r in rows:
        b = first[(r.clip, r.painting, r.preset)]
        revealed = r.revealed()
        table.append([r.clip, r.painting, r.preset, r.variant,
                      *(fmt(e.steady if e.offset == 1 else e.revealed) for e in r.errors),
                      fmt(max(revealed) / r.short), fmt(float(np.mean(revealed)) / r.short),
                      fmt(r.errors[-1].steady), fmt(r.warp / b.warp, 3), fmt(r.style / b.style, 3),
                      fmt(r.content / b.content, 3),
                      fmt(r.seconds_per_frame, 1), fmt(r.long_flow_seconds, 1)])
    header = ["clip", "painting", "preset", "run", *(f"k={k}" for k in range(1, MAX_OFFSET + 1)),
              "max/k1", "mean/k1", f"steady k={MAX_OFFSET}", "warp x", "style x", "content x", "s/frame", "long flow s"]
    print(evaluate.format_table_rows(header, table))
    pixels = {clip: [e.revealed_pixels for e in errors[1:]] for clip, errors in floors.items()}
    for clip, counts in pixels.items():
        print(f"revealed pixels of {clip} (k=2..{MAX_OFFSET}, all frames): {counts}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="default,preview")
    parser.add_argument("--clips", default="pan")
    parser.add_argument("--paintings", default="the_scream",
                        help="names in --data's paintings/ (swirls.png where absent)")
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--variants", default="before=1;after=1,2,3,5,10",
                        help="NAME=OFFSETS;...: flow.long_term of each run (1: the preset as it ships)")
    parser.add_argument("--data", type=Path, default=SHARED,
                        help="the reference data: photos/ and paintings/ (default: ../shared/data beside the repo)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", type=Path, help="job folders, kept and reused (default: temporary)")
    args = parser.parse_args()
    workdir = temporal_bench.start_run(args, "longrange_bench")
    variants = parse_variants(args.variants)
    # temporal_bench's clips read their photos from its PHOTOS folder
    temporal_bench.PHOTOS = args.data / "photos"
    paintings = args.data / "paintings"
    styles = [paintings / f"{p}.jpg" for p in args.paintings.split(",") if (paintings / f"{p}.jpg").is_file()]
    styles = styles or [SAMPLE_STYLE]
    print(f"{args.frames} frames at {args.width} px, {torch.get_num_threads()} threads; photos "
          f"{'from ' + str(temporal_bench.PHOTOS) if temporal_bench.PHOTOS.is_dir() else 'absent: textures'}; "
          f"jobs in {workdir}", flush=True)

    rows: list[Row] = []
    floors: dict[str, list[metrics.LongRangeError]] = {}
    stylizers: dict = {}
    for name in args.clips.split(","):
        if name not in SYNTHETIC:
            raise SystemExit(f"unknown clip {name!r}; choose from {', '.join(SYNTHETIC)}")
        started = time.perf_counter()
        made = synthetic_clip(name, args.frames, args.width)
        clip = make_synthetic(name, workdir, args.frames, args.width)
        # written once: the flows' key (and so the runs') follows the files' times
        missing = {j for v in variants if v.exact for j in v.offsets
                   if not (clip.exact_flows / reliable_file_name(args.frames, args.frames - j)).is_file()}
        write_long_range_flows(made, clip.exact_flows, missing)
        floors[name] = metrics.long_range_errors(made.frames, made.flow_between, MAX_OFFSET)
        print(f"  {name}: clip and its exact flows in {time.perf_counter() - started:.1f} s", flush=True)
        for style in styles:
            for preset in args.presets.split(","):
                for v in variants:
                    extra = temporal_bench.parse_sets(list(v.sets))
                    extra.setdefault("flow", {})["long_term"] = list(v.offsets)
                    if v.combine is not None:
                        extra.setdefault("video", {})["long_term_combine"] = v.combine
                    settings = preset_settings(preset, args.width, extra)
                    job = workdir / "jobs" / name / style.stem / f"{preset}_{v.name}"
                    print(f"  {name} / {style.stem} / {preset} / {v.name} ...", flush=True)
                    seconds = timed_stylize(clip, style, settings, job, clip.exact_flows if v.exact else None)
                    frames = list(evaluate.iter_frames(job))
                    errors = metrics.long_range_errors(frames, made.flow_between, MAX_OFFSET)
                    warp, _, style_d, content_d = measure(job, clip, style, stylizers)
                    rows.append(Row(name, style.stem, preset, v.name, errors, warp, style_d, content_d, seconds,
                                    long_flow_seconds(job)))
    print()
    print_rows(rows, floors)
    print(f"target: long-range (max over k=2..{MAX_OFFSET} of the revealed error) <= {TARGET}x short-range (k=1); "
          f"load average (1 min) {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
          f"native bfloat16: {'yes' if has_native_bf16() else 'no'}")


if __name__ == "__main__":
    main()
