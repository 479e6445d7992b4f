"""Does a preset hold where nobody tuned it? Clip classes x paintings, split into the paintings the
presets were tuned on and held-out ones, with the mean and the worst case of each.

    python benchmarks/heldout_bench.py [--presets default] [--clips pan,slow,bikes] [--paintings all]
        [--frames 6] [--width 128] [--threads 1] [--workdir DIR]

The runs and measurements are :mod:`temporal_bench`'s (a full pipeline run per clip, painting and
preset, beside independent frames of the same budget; flows for the metric apart from the run's
own). Paintings are split by :func:`balance_bench.split`: sorted by file name, even positions tune,
odd ones are held out. Printed per preset, clip class (synthetic / footage) and split: the mean and
the worst (largest) of the warping error, style distance and content distance as ratios to
independent frames'. A preset that holds has held-out means near the tuning ones and a worst case
not far from its mean.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import temporal_bench  # noqa: E402
from balance_bench import split  # noqa: E402
from temporal_bench import (FOOTAGE, SYNTHETIC, Row, independent_settings, make_footage,  # noqa: E402
                            make_synthetic, measure, preset_settings, ratio, timed_stylize)
from videostyle import evaluate  # noqa: E402

MEASURES = ("warp", "style", "content")


def run_matrix(clips, styles: list[Path], presets: list[str], width: int, workdir: Path) -> list[Row]:
    rows: list[Row] = []
    stylizers: dict = {}
    for clip in clips:
        for style in styles:
            for preset in presets:
                settings = preset_settings(preset, width, {})
                for variant, s in (("independent", independent_settings(settings)), ("own flow", settings)):
                    job = workdir / "jobs" / clip.name / style.stem / f"{preset}_{variant.replace(' ', '_')}"
                    print(f"  {clip.name} / {style.stem} / {preset} / {variant} ...", flush=True)
                    seconds = timed_stylize(clip, style, s, job, None)
                    warp, floor, style_d, content_d = measure(job, clip, style, stylizers)
                    rows.append(Row(clip.name, clip.kind, style.stem, preset, variant, warp, floor, style_d,
                                    content_d, seconds))
    return rows


def summary(rows: list[Row], parts: dict[str, str]) -> list[list[str]]:
    """Mean and worst ratio to independent per (preset, clip class, split), and over both splits."""
    base = {(r.clip, r.painting, r.preset): r for r in rows if r.variant == "independent"}
    groups: dict[tuple[str, str, str], list[Row]] = defaultdict(list)
    for r in rows:
        if r.variant != "independent":
            for part in (parts[r.painting], "all"):
                groups[(r.preset, r.kind, part)].append(r)
    table = []
    for (preset, kind, part), members in sorted(groups.items()):
        cells = []
        for attr in MEASURES:
            values = [ratio(getattr(m, attr), getattr(base[(m.clip, m.painting, m.preset)], attr)) for m in members]
            cells += [f"{np.mean(values):.3f}", f"{max(values):.3f}"]
        table.append([preset, kind, part, str(len(members)), *cells])
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="default")
    parser.add_argument("--clips", default="pan,slow,bikes")
    parser.add_argument("--paintings", default="all", help="names in DATA/paintings, or all")
    parser.add_argument("--data", type=Path, default=temporal_bench.SHARED, help="with paintings/ and photos/")
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workdir", type=Path, help="job folders, kept and reused (default: temporary)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="heldout_bench_"))
    temporal_bench.PHOTOS = args.data / "photos"  # the clips' pictures are read from there
    every = sorted((args.data / "paintings").glob("*.jpg"))
    if not every:
        raise SystemExit(f"no paintings in {args.data / 'paintings'}")
    parts = {p.stem: part for p, part in split(every).items()}
    styles = every if args.paintings == "all" else [p for p in every if p.stem in args.paintings.split(",")]
    clips = []
    for name in args.clips.split(","):
        if name not in (*SYNTHETIC, *FOOTAGE):
            raise SystemExit(f"unknown clip {name!r}; choose from {', '.join([*SYNTHETIC, *FOOTAGE])}")
        clip = make_synthetic(name, workdir, args.frames, args.width) if name in SYNTHETIC else \
            make_footage(name, workdir, args.frames, args.width)
        if clip is not None:
            clips.append(clip)
    print(f"{args.frames} frames at {args.width} px, {torch.get_num_threads()} thread(s); jobs in {workdir}")
    rows = run_matrix(clips, styles, args.presets.split(","), args.width, workdir)
    print()
    print(evaluate.format_table_rows(
        ["preset", "clips", "paintings", "n", "warp x indep", "worst", "style x", "worst", "content x", "worst"],
        summary(rows, parts)))


if __name__ == "__main__":
    main()
