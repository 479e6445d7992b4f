"""How a preset balances style, content and steadiness on each painting, under the ``paper`` and
the ``gram`` loss normalisation (see ``videostyle.frame.losses``).

    /work/venv/bin/python benchmarks/balance_bench.py [--preset default] [--size 128]
        [--iterations 60,40] [--data ../shared/data] [--save DIR]

For each painting: frame 1 (the photo, ``--size`` px on its long side) is stylized from the
authors' noise; frame 2 is the same photo seen by a camera panned ``--shift`` px to the right,
started from frame 1's result moved with it (exact flow: the column that comes into view is
unreliable) and held to it by the temporal loss, as a multi-pass or single-pass frame is. The
weighted terms of frame 2's result are the balance: style/content and temporal/style. Their
spread is the largest over the smallest across paintings; a preset whose weights mean the same on
every painting has a spread near 1.

``before`` is the preset as it was under ``paper`` (the paper's style weights and the preset's
old temporal weight, :data:`BEFORE_TEMPORAL`); ``after`` is the preset as shipped. Paintings are
split by a fixed rule: sorted by file name, even positions tune the presets, odd ones are held
out (:func:`split`). One torch thread; the figures are for comparing rows, not for timing.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from videostyle.config import Settings, load_preset, override, resolve_settings  # noqa: E402
from videostyle.evaluate import format_table_rows  # noqa: E402
from videostyle.frame.stylize import Stylizer, TemporalTarget  # noqa: E402
from videostyle.frame.vgg import load_weights  # noqa: E402
from videostyle.images import load_image, resize, save_image  # noqa: E402

# The presets' temporal weights under the paper's normalisation (before `gram`, commit 5f15481).
BEFORE_TEMPORAL = {"default": 1e4, "preview": 5e3, "singlepass": 1e3, "longterm": 1e3, "paper": 5e2}
PHOTO = "tubingen.jpg"
TERMS = ("style", "content", "temporal", "tv")
# Painting-independent measures of the look: relative Gram and relu4_2 distances (as `eval`), and
# how far frame 2 moved from frame 1's result where it was reliable (0..255).
LOOKS = ("style distance", "content distance", "drift")


def split(paintings: list[Path]) -> dict[Path, str]:
    """``tuning`` or ``held-out`` for each painting: by sorted file name, even positions tune."""
    return {p: ("tuning" if k % 2 == 0 else "held-out") for k, p in enumerate(sorted(paintings, key=lambda p: p.name))}


def before_settings(preset: str) -> Settings:
    """The preset as it ran under the paper's normalisation: the ``paper`` preset's loss weights."""
    settings = resolve_settings(preset)
    paper_style = load_preset("paper")["style"]
    style = override(settings.style, {**{k: paper_style[k] for k in ("content_weight", "style_weight", "tv_weight",
                                                                     "style_layers")},
                                      "normalization": "paper", "style_layer_weights": []})
    return replace(settings, style=style, video=override(settings.video, {"temporal_weight": BEFORE_TEMPORAL[preset]}))


@dataclass
class Row:
    painting: str
    part: str
    run: str
    terms: dict[str, float]

    @property
    def style_content(self) -> float:
        return self.terms["style"] / self.terms["content"]

    @property
    def temporal_style(self) -> float:
        return self.terms["temporal"] / self.terms["style"]


def camera_pair(photo: np.ndarray, size: int, shift: int) -> tuple[np.ndarray, np.ndarray]:
    """Two frames ``size`` px wide of a camera panning ``shift`` px to the right over ``photo``."""
    h, w = photo.shape[:2]
    wide = resize(photo.astype(np.float32), (size + shift, round(h * (size + shift) / w)))
    return wide[:, :size], wide[:, shift:shift + size]


def moved(image: np.ndarray, shift: int) -> TemporalTarget:
    """``image`` seen ``shift`` px further right: what the exact flow warps it to, and where it is reliable."""
    warped = np.empty_like(image)
    warped[:, :-shift] = image[:, shift:]
    warped[:, -shift:] = image[:, -shift:]  # what comes into view: not reliable
    weights = np.ones(image.shape[:2], np.float32)
    weights[:, -shift:] = 0.0
    return TemporalTarget(warped, weights)


def measure(painting: Path, settings: Settings, frames: tuple[np.ndarray, np.ndarray], shift: int,
            iterations: tuple[int, int], weights, save: Path | None, label: str) -> dict[str, float]:
    first, second = frames
    stylizer = Stylizer([load_image(painting)], settings.style, first.shape[:2], device="cpu", vgg_weights=weights)
    one = stylizer.stylize(first, iterations=iterations[0], seed=0)
    target = moved(one.image, shift)
    two = stylizer.stylize(second, iterations=iterations[1], init=target.image, temporal=[target],
                           temporal_weight=settings.video.temporal_weight, seed=1)
    if save is not None:
        save_image(save / f"{painting.stem}_{label}.png", two.image)
    reliable = target.weights > 0
    return {**{k: two.losses[k] for k in TERMS}, "style distance": stylizer.style_distance(two.image),
            "content distance": stylizer.content_distance(two.image, second),
            "drift": float(np.abs(two.image - target.image)[reliable].mean())}


def spread(values: list[float]) -> float:
    return max(values) / min(values) if values and min(values) > 0 else math.nan


def geometric_mean(values: list[float]) -> float:
    return float(np.exp(np.mean(np.log(values))))


def describe(values: list[float]) -> str:
    return f"{geometric_mean(values):.3g} ({spread(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="default", choices=sorted(BEFORE_TEMPORAL))
    parser.add_argument("--size", type=int, default=128, help="long side of the frames in px")
    parser.add_argument("--shift", type=int, default=4, help="camera pan between the frames in px")
    parser.add_argument("--iterations", default="60,40", help="frame 1, frame 2")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--paintings", default="all", help="comma-separated stems, or all")
    parser.add_argument("--runs", default="before,after", help="before, after, or both")
    parser.add_argument("--save", type=Path, help="write frame 2's results here as PNGs")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    every = sorted((args.data / "paintings").glob("*.jpg"))
    parts = split(every)
    chosen = every if args.paintings == "all" else [p for p in every if p.stem in args.paintings.split(",")]
    iterations = tuple(int(n) for n in args.iterations.split(","))
    frames = camera_pair(load_image(args.data / "photos" / PHOTO), args.size, args.shift)
    runs = {"before": before_settings(args.preset), "after": resolve_settings(args.preset)}
    runs = {name: runs[name] for name in args.runs.split(",")}
    if args.save is not None:
        args.save.mkdir(parents=True, exist_ok=True)
    weights = load_weights()
    rows = [Row(p.stem, parts[p], name, measure(p, settings, frames, args.shift, iterations, weights, args.save, name))
            for name, settings in runs.items() for p in chosen]
    print(f"preset {args.preset}, {PHOTO} {frames[0].shape[1]}x{frames[0].shape[0]}, pan {args.shift} px, "
          f"iterations {iterations[0]},{iterations[1]}, {args.threads} thread(s)")
    print(format_table_rows(["painting", "part", "run", *TERMS, "style/content", "temporal/style", *LOOKS],
                            [[r.painting, r.part, r.run, *(f"{r.terms[k]:.4g}" for k in TERMS),
                              f"{r.style_content:.3g}", f"{r.temporal_style:.3g}",
                              *(f"{r.terms[k]:.3f}" for k in LOOKS)] for r in rows]))
    print("\ngeometric mean (spread = max/min over the paintings)")
    summary = []
    measures = {"style/content": lambda r: r.style_content, "temporal/style": lambda r: r.temporal_style,
                **{k: (lambda r, k=k: r.terms[k]) for k in LOOKS}}
    for name in runs:
        for part in ("all", "tuning", "held-out"):
            members = [r for r in rows if r.run == name and part in ("all", r.part)]
            if members:
                summary.append([name, part, str(len(members)),
                                *(describe([f(r) for r in members]) for f in measures.values())])
    print(format_table_rows(["run", "paintings", "n", *measures], summary))


if __name__ == "__main__":
    main()
