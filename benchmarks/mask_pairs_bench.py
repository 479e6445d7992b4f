"""Style masks over every pair of the reference paintings: does each region look like its own?

    python benchmarks/mask_pairs_bench.py [--preset default] [--photo tubingen.jpg] [--size 128]
        [--pairs 0-20] [--threads 2] [--workdir DIR] [--label NAME] [--data DIR]

For each unordered pair of the seven paintings (in file-name order, the first on the left: one
orientation per pair, 21 pairs) a one-frame clip of the photo (``--size`` px on its long side) is
stylized as a user runs it (``videostyle.pipeline.run``, the preset's passes) with
``--style A --style B --style-mask left --style-mask right``, the border between the regions
``control_bench``'s wavy one. Each region's Gram distance (masked Gram, the evaluation's style
distance restricted to the region, as ``control_bench`` measures it) to its own painting and to
the other is printed with their ratio; the target is own / other <= 0.7 for every region of every
pair. Each pair's result (its PNG and a JSON of its distances) is kept in
``--workdir/<label>/``, so a rerun (or the next slice of ``--pairs``, to keep each command short)
skips the pairs done; ``--pairs`` selects by index (``3-9``, ``0,5,7``), and the table and the
worst region always cover every pair done so far.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from control_bench import scene_mask  # noqa: E402
from temporal_bench import SHARED  # noqa: E402
from videostyle.config import resolve_settings  # noqa: E402
from videostyle.frame.stylize import Stylizer  # noqa: E402
from videostyle.images import load_image, long_side_size, resize, save_image  # noqa: E402
from videostyle.pipeline import RunRequest, run  # noqa: E402

TARGET = 0.7  # the bound on own / other


def all_pairs(paintings: Path) -> list[tuple[str, str]]:
    names = sorted(p.stem for p in paintings.glob("*.jpg"))
    return list(itertools.combinations(names, 2))


def parse_indices(text: str, count: int) -> list[int]:
    chosen: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        first, _, last = part.partition("-")
        chosen += range(int(first), int(last or first) + 1)
    return [i for i in dict.fromkeys(chosen) if 0 <= i < count]


def make_inputs(root: Path, photo: Path, size: int) -> tuple[Path, np.ndarray, Path, Path]:
    """The one-frame clip, its left region (HxW in [0, 1]) and the two mask files."""
    source = load_image(photo)
    content = resize(source, long_side_size(source.shape, size))
    folder = root / f"input_{Path(photo).stem}_{size}"
    save_image(folder / "frames" / "0001.png", content)
    left = scene_mask(*content.shape[:2])
    save_image(folder / "left.png", left)
    save_image(folder / "right.png", 255 - left)
    return folder / "frames", left[..., 0].astype(np.float32) / 255.0, folder / "left.png", folder / "right.png"


def measure_pair(pair: tuple[str, str], paintings: Path, frames: Path, left: np.ndarray, masks: tuple[Path, Path],
                 preset: str, out: Path) -> dict:
    styles = tuple(paintings / f"{name}.jpg" for name in pair)
    job = out / f"job_{pair[0]}__{pair[1]}"
    settings = resolve_settings(preset, overrides={"video": {"scene_cuts": "off", "width": left.shape[1]}})
    started = time.perf_counter()
    result = run(RunRequest(input=frames, styles=styles, job_dir=job, output=job / "out.mp4", settings=settings,
                            style_masks=masks))
    seconds = time.perf_counter() - started
    image = load_image(next(iter(sorted(Path(result.final_dir).glob("frame_*.png")))))
    stylizer = Stylizer([load_image(p) for p in styles], settings.style, image.shape[:2], device="cpu")
    regions = (left, 1.0 - left)
    # distances[r][k]: region r's distance to painting k
    distances = [[stylizer.region_style_distance(image, regions[r], k) for k in (0, 1)] for r in (0, 1)]
    save_image(out / f"{pair[0]}__{pair[1]}.png", image)
    return {"pair": list(pair), "distances": distances, "seconds": seconds,
            "ratios": [distances[r][r] / distances[r][1 - r] for r in (0, 1)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--photo", default="tubingen.jpg")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--pairs", default="0-20", help="indices of the pairs to run (0-20)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--data", type=Path, default=SHARED, help="the reference data (photos/, paintings/)")
    parser.add_argument("--label", default="current", help="results of one version of the method")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    root = args.workdir or Path(tempfile.mkdtemp(prefix="mask_pairs_bench"))
    pairs = all_pairs(args.data / "paintings")
    frames, left, *masks = make_inputs(root, args.data / "photos" / args.photo, args.size)
    out = root / f"{args.label}_{args.preset}_{Path(args.photo).stem}_{args.size}"
    out.mkdir(parents=True, exist_ok=True)
    print(f"{args.photo} at {args.size} px, preset {args.preset}, {args.threads} threads; results in {out}")
    for index in parse_indices(args.pairs, len(pairs)):
        record = out / f"{pairs[index][0]}__{pairs[index][1]}.json"
        if not record.is_file():
            measured = measure_pair(pairs[index], args.data / "paintings", frames, left, (masks[0], masks[1]), args.preset, out)
            record.write_text(json.dumps(measured, indent=1))
            print(f"pair {index} {pairs[index][0]} / {pairs[index][1]}: {measured['seconds']:.1f} s", flush=True)

    done = [(i, json.loads(p.read_text())) for i, pair in enumerate(pairs)
            if (p := out / f"{pair[0]}__{pair[1]}.json").is_file()]
    print(f"\n{len(done)} of {len(pairs)} pairs; region distance to its own painting / to the other "
          f"(target <= {TARGET})")
    print("| # | left (A) | right (B) | A: own | A: other | A own/other | B: own | B: other | B own/other |")
    print("|---|---|---|---|---|---|---|---|---|")
    ratios = []
    for i, m in done:
        d, r = m["distances"], m["ratios"]
        print(f"| {i} | {m['pair'][0]} | {m['pair'][1]} | {d[0][0]:.3f} | {d[0][1]:.3f} | {r[0]:.2f} | "
              f"{d[1][1]:.3f} | {d[1][0]:.3f} | {r[1]:.2f} |")
        ratios += [(r[0], i, m["pair"][0], "A"), (r[1], i, m["pair"][1], "B")]
    if ratios:
        worst = max(ratios)
        misses = sum(r > TARGET for r, *_ in ratios)
        print(f"\nworst region: {worst[0]:.2f} (pair {worst[1]}, region {worst[3]}, {worst[2]}); "
              f"mean {np.mean([r for r, *_ in ratios]):.2f}; {misses} of {len(ratios)} regions above {TARGET}")


if __name__ == "__main__":
    main()
