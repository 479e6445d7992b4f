"""Does a preset hold where nobody tuned it? A matrix of clip classes x paintings, split into a
tuning half and a held-out half by a fixed rule, with the mean and the WORST case of each.

    python benchmarks/heldout_bench.py [--presets preview,default] [--split held-out|tuning|all]
        [--clips all] [--paintings all] [--paper] [--frames 6] [--width 128] [--threads 2]
        [--workdir DIR] [--set video.temporal_weight=600 ...]

The split (fixed, decided before any of these numbers were seen):

* paintings: :func:`balance_bench.split`, sorted by file name, even positions tune (escher_sphere,
  seated-nude, starry_night, woman-with-hat-matisse), odd ones are held out
  (picasso_selfport1907, shipwreck, the_scream);
* clip classes: those the presets were tuned on in earlier rounds (:data:`TUNING_CLIPS`: pan,
  zoom, handheld, slow and the bikes footage) tune; the classes added for this benchmark are held
  out (rotation, fast, crossing, static and the bigbuckbunny footage).

A cell is tuning when both its clip and its painting are, held-out when both are; the mixed cells
run only with ``--split all``. Tune with ``--split tuning --set ...``; report ``--split held-out``.

The runs and measurements are :mod:`temporal_bench`'s: a full pipeline run per clip, painting and
preset, beside independent frames of the same per-frame budget (from noise, no temporal loss),
measured with flows apart from the run's own (exact for synthetic clips, DeepFlow at 640 px for
footage). With ``--paper`` every ``default`` cell also runs the ``paper`` preset and reports
default's distances and time as ratios to paper's. Printed: every cell, then per preset, clip kind
and split the mean and the worst of each ratio and the seconds per frame (whole run, flow
included), against the issue's targets.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import temporal_bench  # noqa: E402
from balance_bench import split  # noqa: E402
from temporal_bench import (FOOTAGE, SYNTHETIC, Row, has_native_bf16, independent_settings,  # noqa: E402
                            make_footage, make_synthetic, measure, parse_sets, preset_settings, ratio,
                            timed_stylize)
from videostyle import evaluate  # noqa: E402

TUNING_CLIPS = ("bikes", "handheld", "pan", "slow", "zoom")
MEASURES = ("warp", "style", "content")
# worst-case targets of the presets issue: (warp, style, content) as ratios to independent frames
TARGETS = {"preview": (0.25, 1.1, 1.1), "default": (0.15, 1.1, 1.1)}
PAPER_TARGETS = (1.05, 1.05, 1.10, 1 / 8)  # default / paper: warp, style, content, time


def clip_part(name: str) -> str:
    return "tuning" if name in TUNING_CLIPS else "held-out"


def cell_part(clip: str, painting_part: str) -> str:
    part = clip_part(clip)
    return part if part == painting_part else "mixed"


def tag(extra: dict) -> str:
    """A short name for a set of overrides, so tuning runs keep their own job folders."""
    return hashlib.sha1(json.dumps(extra, sort_keys=True).encode()).hexdigest()[:8] if extra else "preset"


def run_cell(clip, style: Path, preset: str, variant: str, settings, workdir: Path, stylizers: dict,
             folder: str) -> Row:
    job = workdir / "jobs" / clip.name / style.stem / folder
    print(f"  {clip.name} / {style.stem} / {preset} / {variant} ...", flush=True)
    seconds = timed_stylize(clip, style, settings, job, None)
    warp, floor, style_d, content_d = measure(job, clip, style, stylizers)
    return Row(clip.name, clip.kind, style.stem, preset, variant, warp, floor, style_d, content_d, seconds)


def independent_run(preset: str, width: int, extra: dict):
    """The independent baseline of a preset run with overrides ``extra``, and its job folder's name.

    An independent run computes no flow and has no temporal loss, so an override of those alone
    (the flow method, the temporal weight or criterion) leaves it the preset's own and shares its
    folder instead of stylizing the same frames again."""
    unflowed = {k: v for k, v in extra.items() if k != "flow"}
    baseline = independent_settings(preset_settings(preset, width, unflowed))
    own = baseline == independent_settings(preset_settings(preset, width, {}))
    return baseline, f"{preset}_{tag({} if own else unflowed)}_independent"


def run_matrix(cells, presets: list[str], width: int, workdir: Path, extra: dict, with_paper: bool) -> list[Row]:
    rows: list[Row] = []
    stylizers: dict = {}
    for clip, style in cells:
        for preset in presets:
            settings = preset_settings(preset, width, extra)
            name = f"{preset}_{tag(extra)}"
            baseline, folder = independent_run(preset, width, extra)
            rows.append(run_cell(clip, style, preset, "independent", baseline, workdir, stylizers, folder))
            rows.append(run_cell(clip, style, preset, "own flow", settings, workdir, stylizers, f"{name}_own_flow"))
            if with_paper and preset == "default":
                rows.append(run_cell(clip, style, preset, "paper", preset_settings("paper", width, {}), workdir,
                                     stylizers, "paper"))
    return rows


def cell_table(rows: list[Row], parts: dict[tuple[str, str], str]) -> list[list[str]]:
    base = {(r.clip, r.painting, r.preset): r for r in rows if r.variant == "independent"}
    table = []
    for r in rows:
        if r.variant == "own flow":
            b = base[(r.clip, r.painting, r.preset)]
            table.append([r.clip, r.painting, parts[(r.clip, r.painting)], r.preset,
                          *(f"{ratio(getattr(r, m), getattr(b, m)):.3f}" for m in MEASURES),
                          f"{r.warp:.2f}", f"{b.warp:.2f}", f"{r.seconds_per_frame:.1f}"])
    return table


def summary(rows: list[Row], parts: dict[tuple[str, str], str]) -> list[list[str]]:
    """Mean and worst ratio to independent per (preset, clip kind, split)."""
    base = {(r.clip, r.painting, r.preset): r for r in rows if r.variant == "independent"}
    groups: dict[tuple[str, str, str], list[Row]] = defaultdict(list)
    for r in rows:
        if r.variant == "own flow":
            groups[(r.preset, parts[(r.clip, r.painting)], r.kind)].append(r)
            groups[(r.preset, parts[(r.clip, r.painting)], "all")].append(r)
    table = []
    for (preset, part, kind), members in sorted(groups.items()):
        cells = []
        for attr, target in zip(MEASURES, TARGETS.get(preset, (math.nan,) * 3)):
            values = [ratio(getattr(m, attr), getattr(base[(m.clip, m.painting, m.preset)], attr)) for m in members]
            mark = "" if math.isnan(target) else (" ok" if max(values) <= target else " MISS")
            cells += [f"{np.mean(values):.3f}", f"{max(values):.3f}{mark}"]
        table.append([preset, part, kind, str(len(members)), *cells,
                      f"{np.mean([m.seconds_per_frame for m in members]):.1f}"])
    return table


def paper_table(rows: list[Row], parts: dict[tuple[str, str], str]) -> list[list[str]]:
    """default against paper per cell: distances and time as ratios, with the issue's targets."""
    paper = {(r.clip, r.painting): r for r in rows if r.variant == "paper"}
    table = []
    for r in rows:
        p = paper.get((r.clip, r.painting))
        if r.variant == "own flow" and r.preset == "default" and p is not None:
            values = [ratio(getattr(r, m), getattr(p, m)) for m in MEASURES] + [
                ratio(r.seconds_per_frame, p.seconds_per_frame)]
            table.append([r.clip, r.painting, parts[(r.clip, r.painting)],
                          *(f"{v:.3f}{' ok' if v <= t else ' MISS'}" for v, t in zip(values, PAPER_TARGETS))])
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="preview,default")
    parser.add_argument("--split", choices=("held-out", "tuning", "all"), default="held-out")
    parser.add_argument("--clips", default="all", help=f"names from {', '.join([*SYNTHETIC, *FOOTAGE])}, or all")
    parser.add_argument("--paintings", default="all", help="names in DATA/paintings, or all")
    parser.add_argument("--paper", action="store_true", help="also run `paper` on every default cell")
    parser.add_argument("--data", type=Path, default=temporal_bench.SHARED, help="with paintings/ and photos/")
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", type=Path, help="job folders, kept and reused (default: temporary)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a setting of every preset run (tuning experiments)")
    args = parser.parse_args()
    workdir = temporal_bench.start_run(args, "heldout_bench")
    temporal_bench.PHOTOS = args.data / "photos"  # the clips' pictures are read from there
    every = sorted((args.data / "paintings").glob("*.jpg"))
    if not every:
        raise SystemExit(f"no paintings in {args.data / 'paintings'}")
    painting_parts = {p.stem: part for p, part in split(every).items()}
    styles = every if args.paintings == "all" else [p for p in every if p.stem in args.paintings.split(",")]
    names = [*SYNTHETIC, *FOOTAGE] if args.clips == "all" else args.clips.split(",")
    unknown = [n for n in names if n not in (*SYNTHETIC, *FOOTAGE)]
    if unknown:
        raise SystemExit(f"unknown clip {unknown[0]!r}; choose from {', '.join([*SYNTHETIC, *FOOTAGE])}")
    wanted = ("tuning", "held-out", "mixed") if args.split == "all" else (args.split,)
    parts = {(c, s.stem): cell_part(c, painting_parts[s.stem]) for c in names for s in styles}
    cells = []
    for name in names:
        chosen = [s for s in styles if parts[(name, s.stem)] in wanted]
        if not chosen:
            continue
        clip = make_synthetic(name, workdir, args.frames, args.width) if name in SYNTHETIC else \
            make_footage(name, workdir, args.frames, args.width)
        if clip is not None:
            cells += [(clip, s) for s in chosen]
    extra = parse_sets(args.set)
    print(f"{len(cells)} cells ({args.split}), {args.frames} frames at {args.width} px, "
          f"{torch.get_num_threads()} thread(s), native bfloat16: {has_native_bf16()}; overrides {dict(extra)}; "
          f"jobs in {workdir}")
    rows = run_matrix(cells, args.presets.split(","), args.width, workdir, extra, args.paper)
    print()
    print(evaluate.format_table_rows(
        ["clip", "painting", "split", "preset", "warp x indep", "style x", "content x", "warp", "indep warp",
         "s/frame"], cell_table(rows, parts)))
    print()
    print(evaluate.format_table_rows(
        ["preset", "split", "clips", "n", "warp x indep", "worst", "style x", "worst", "content x", "worst",
         "s/frame"], summary(rows, parts)))
    if args.paper:
        print()
        print(evaluate.format_table_rows(
            ["clip", "painting", "split", "warp x paper", "style x paper", "content x paper", "time x paper"],
            paper_table(rows, parts)))


if __name__ == "__main__":
    main()
