"""Creative control on a moving-camera clip: two styles split by a mask that moves with the scene,
and a style that changes from one painting to the other over the clip.

    python benchmarks/control_bench.py [--preset preview] [--frames 8] [--width 192]
        [--paintings starry_night,the_scream] [--threads 2] [--workdir DIR]

The clip is ``temporal_bench``'s ``pan`` (a photograph filmed by a panning virtual camera, a disc
from another photograph sliding across, exact flow and visibility). Its masks are rendered by the
same camera: painting A on the scene's left part (a wavy border fixed in the scene, so it pans with
it), painting B on the rest and on the disc. Three runs, each ``videostyle.pipeline.run`` as a user
runs it (the preset's own flow), job folders kept in ``--workdir`` and reused:

* ``masked``: ``--style A --style B --style-mask A.seq --style-mask B.seq``;
* ``single``: painting A alone (the control for flicker near the border);
* ``blend``: ``--style-blend-keyframes 1:1,0;N:0,1`` (A at frame 1 fading to B at frame N).

Printed: each region's Gram distance (masked Gram, Gatys et al. 2017) to each painting; the
warping error (exact flow, visible pixels) in a band of 3 px on each side of the mask's border
against the error farther than 8 px from it, for the masked run, the single-style control and the
input; for the blend run, the style distance of its first and last frames to A and to B and its
warping error against the single-style run's.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import flow  # noqa: E402
from flow.synthetic import camera_clip, write_clip  # noqa: E402
from temporal_bench import PAINTINGS, SYNTHETIC, picture, synthetic_clip  # noqa: E402
from videostyle.config import resolve_settings  # noqa: E402
from videostyle.frame.stylize import Stylizer  # noqa: E402
from videostyle.images import load_image, save_image  # noqa: E402
from videostyle.looks import FrameLook, read_mask  # noqa: E402
from videostyle.pipeline import RunRequest, run  # noqa: E402

BAND, FAR = 3.0, 8.0  # px from the mask's border: the band, and what counts as inside a region


def scene_mask(height: int, width: int) -> np.ndarray:
    """HxWx3 uint8 in the photograph's coordinates: white left of a wavy vertical border."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    border = width * (0.5 + 0.08 * np.sin(ys / height * 2 * math.pi * 1.5))
    inside = np.clip((border - xs) / (0.004 * width) + 0.5, 0, 1)  # a few px of soft edge at frame size
    return np.repeat((inside * 255)[..., None], 3, axis=2).astype(np.uint8)


def make_clip(root: Path, n_frames: int, width: int) -> dict[str, object]:
    """Frames, exact flows and the two mask sequences (A's region, B's region) of the pan clip."""
    scene = synthetic_clip("pan", n_frames, width)
    path, background, _ = SYNTHETIC["pan"]
    # The same camera over the mask picture; the disc shows black (B's region).
    regions = camera_clip(scene_mask(*picture(background, 1).shape[:2]), np.zeros((64, 64, 3), np.uint8), n_frames,
                          scene.frames[0].shape[1::-1], path.scaled(width / 192), seed=3)
    folder = root / f"clip_{n_frames}x{width}"
    write_clip(scene, folder / "frames")
    for k in range(n_frames):
        a = regions.frames[k]
        save_image(folder / "mask_a" / f"{k + 1:04d}.png", a)
        save_image(folder / "mask_b" / f"{k + 1:04d}.png", 255 - a)
    return {"folder": folder, "backward": scene.backward, "visible": scene.visible}


def stylize(clip: dict, styles: tuple[Path, ...], job: Path, preset: str, masks: tuple[Path, ...] = (),
            keyframes: str = "") -> list[np.ndarray]:
    width = load_image(next(iter(sorted((clip["folder"] / "frames").glob("*.png"))))).shape[1]
    overrides = {"video": {"style_blend_keyframes": keyframes, "scene_cuts": "off", "width": width}}
    request = RunRequest(input=clip["folder"] / "frames", styles=styles, job_dir=job, output=job / "out.mp4",
                         settings=resolve_settings(preset, overrides=overrides), style_masks=masks)
    result = run(request)
    return [load_image(p) for p in sorted(Path(result.final_dir).glob("frame_*.png"))]


def error_maps(frames: list[np.ndarray], clip: dict) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per pair (t-1, t): |O_t − warp(O_t−1)| averaged over channels, and where it counts."""
    maps = []
    for t in range(1, len(frames)):
        backward, visible = clip["backward"][t], clip["visible"][t]
        warped = flow.warp(frames[t - 1].astype(np.float32), backward).reshape(frames[t].shape)
        maps.append((np.abs(frames[t].astype(np.float32) - warped).mean(axis=2), visible.astype(bool)))
    return maps


def border_distance(mask: np.ndarray) -> np.ndarray:
    """Pixels' distance to the border of the region ``mask`` > 0.5."""
    inside = (mask > 0.5).astype(np.uint8)
    # each transform is the distance to the other side for its own pixels, 0 elsewhere
    return np.maximum(cv2.distanceTransform(inside, cv2.DIST_L2, 5), cv2.distanceTransform(1 - inside, cv2.DIST_L2, 5))


def band_errors(frames: list[np.ndarray], clip: dict, masks_a: list[np.ndarray]) -> tuple[float, float]:
    near, far = [], []
    for t, (error, counts) in enumerate(error_maps(frames, clip), start=1):
        distance = border_distance(masks_a[t])
        near.append(error[counts & (distance <= BAND)].mean())
        far.append(error[counts & (distance > FAR)].mean())
    return float(np.mean(near)), float(np.mean(far))


def mean_error(frames: list[np.ndarray], clip: dict) -> float:
    return float(np.mean([error[counts].mean() for error, counts in error_maps(frames, clip)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="preview")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--width", type=int, default=192)
    parser.add_argument("--paintings", default="starry_night,the_scream")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    root = args.workdir or Path(tempfile.mkdtemp(prefix="control_bench"))
    names = args.paintings.split(",")
    styles = tuple(PAINTINGS / f"{name}.jpg" for name in names)
    clip = make_clip(root, args.frames, args.width)
    folder = clip["folder"]
    mask_paths = (folder / "mask_a", folder / "mask_b")
    print(f"{args.frames} frames at {args.width} px, preset {args.preset}, {args.threads} threads; jobs in {root}")

    tag = f"{args.preset}_{args.frames}x{args.width}_{'_'.join(names)}"
    masked = stylize(clip, styles, root / f"masked_{tag}", args.preset, masks=mask_paths)
    single = stylize(clip, styles[:1], root / f"single_{tag}", args.preset)
    blend = stylize(clip, styles, root / f"blend_{tag}", args.preset, keyframes=f"1:1,0;{args.frames}:0,1")
    contents = [load_image(p) for p in sorted((folder / "frames").glob("*.png"))]

    masks_a = [read_mask(p) for p in sorted(mask_paths[0].glob("*.png"))]
    settings = resolve_settings(args.preset).style
    stylizer = Stylizer([load_image(p) for p in styles], settings, masked[0].shape[:2], device="cpu")

    print(f"\nregions of the masked run: Gram distance to each painting (mean over {args.frames} frames)")
    print(f"| region | to {names[0]} | to {names[1]} | own / other |")
    print("|---|---|---|---|")
    for region, own in (("A", 0), ("B", 1)):
        distances = [np.mean([stylizer.region_style_distance(image, m if region == "A" else 1 - m, k)
                              for image, m in zip(masked, masks_a)]) for k in (0, 1)]
        print(f"| {region} ({names[own]}) | {distances[0]:.3f} | {distances[1]:.3f} | "
              f"{distances[own] / distances[1 - own]:.2f} |")

    print(f"\nwarping error near the mask's border (<= {BAND:.0f} px) and inside the regions (> {FAR:.0f} px)")
    print("| run | border band | inside | band / inside |")
    print("|---|---|---|---|")
    for label, frames in (("masked (2 styles)", masked), (f"single ({names[0]})", single), ("input", contents)):
        near, far = band_errors(frames, clip, masks_a)
        print(f"| {label} | {near:.2f} | {far:.2f} | {near / far:.2f} |")

    print(f"\nstyle change {names[0]} -> {names[1]} over frames 1..{args.frames} (blend keyframes)")
    only = [FrameLook(weights=(1.0, 0.0)), FrameLook(weights=(0.0, 1.0))]
    print(f"| frame | to {names[0]} | to {names[1]} |")
    print("|---|---|---|")
    for index in (0, len(blend) // 2, len(blend) - 1):
        d = [stylizer.style_distance(blend[index], look) for look in only]
        print(f"| {index + 1} | {d[0]:.3f} | {d[1]:.3f} |")
    print(f"warping error: blend {mean_error(blend, clip):.2f}, single-style {mean_error(single, clip):.2f}, "
          f"input {mean_error(contents, clip):.2f}")


if __name__ == "__main__":
    main()
