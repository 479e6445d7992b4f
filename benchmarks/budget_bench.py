"""What the presets cost against what they give: ``paper``, ``default`` and ``preview`` side by side.

    python benchmarks/budget_bench.py [--frames 6] [--width 128] [--paintings starry_night]
        [--clips bunny,handheld] [--threads 2] [--workdir DIR]

Every preset runs at the same size (``--width``) on the same frames, each a full
``videostyle.pipeline.run`` in its own job folder (kept in ``--workdir`` and reused). Clips: the
bundled ``samples/bunny.mp4`` (warping error measured with DeepFlow of its input frames, one flow
for every row) and a moving-camera clip with exact flow from ``temporal_bench`` (``handheld`` by
default). Printed per clip and painting: wall seconds of the whole run (flow included) and per
frame, Gram style distance, relu4_2 content distance, warping error, and each as a ratio to
``paper``'s; then the targets of the speed issue for ``default`` (style <= 1.05x, content <= 1.10x,
warping error <= 1.05x paper's, in <= 1/8 of its time).

Say which CPU the figures come from: ``lscpu | grep -o 'avx512_bf16\\|amx_bf16'`` prints nothing on
a machine without native bfloat16, where every row is about twice as slow.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import temporal_bench  # noqa: E402
from temporal_bench import (PAINTINGS, SAMPLE_STYLE, SYNTHETIC, Clip, has_native_bf16,  # noqa: E402
                            make_synthetic, measure, preset_settings, timed_stylize)

from videostyle import evaluate  # noqa: E402

PRESETS = ("paper", "default", "preview")
BUNNY = REPO / "samples" / "bunny.mp4"
TARGETS = {"seconds": 1 / 8, "style": 1.05, "content": 1.10, "warp": 1.05}


def bunny_clip(root: Path, n_frames: int, width: int) -> Clip:
    """The bundled clip; its metric flow is DeepFlow between its frames at the working size."""
    import flow
    from videostyle.images import resize

    folder = root / "clips" / f"bunny_{n_frames}x{width}"
    flows = folder / "flows"
    clip = Clip("bunny", "footage", BUNNY, flows, None, frames=(1, n_frames))
    if (flows / f"reliable_{n_frames}_{n_frames - 1}.pgm").is_file():
        return clip
    import imageio.v3 as iio

    frames = []
    for k, frame in enumerate(iio.imiter(BUNNY)):
        if k >= n_frames:
            break
        height = round(frame.shape[0] * width / frame.shape[1] / 2) * 2
        frames.append(resize(frame, (width, height)))
    for k in range(1, n_frames):
        backward = flow.estimate_flow(frames[k], frames[k - 1], "deepflow")
        forward = flow.estimate_flow(frames[k - 1], frames[k], "deepflow")
        flow.write_flo(flows / f"backward_{k + 1}_{k}.flo", backward)
        flow.write_pgm(flows / f"reliable_{k + 1}_{k}.pgm", flow.consistency_check(backward, forward))
    return clip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--paintings", default="starry_night")
    parser.add_argument("--clips", default="bunny,handheld")
    parser.add_argument("--presets", default=",".join(PRESETS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", type=Path, help="job folders, kept and reused (default: temporary)")
    args = parser.parse_args()
    workdir = temporal_bench.start_run(args, "budget_bench")
    styles = [PAINTINGS / f"{p}.jpg" for p in args.paintings.split(",") if (PAINTINGS / f"{p}.jpg").is_file()]
    styles = styles or [SAMPLE_STYLE]
    presets = args.presets.split(",")
    print(f"{args.frames} frames at {args.width} px, {torch.get_num_threads()} threads; jobs in {workdir}",
          flush=True)

    table, verdicts = [], []
    stylizers: dict = {}
    for name in args.clips.split(","):
        clip = (bunny_clip(workdir, args.frames, args.width) if name == "bunny"
                else make_synthetic(name, workdir, args.frames, args.width) if name in SYNTHETIC else None)
        if clip is None:
            raise SystemExit(f"unknown clip {name!r}; choose bunny or one of {', '.join(SYNTHETIC)}")
        for style in styles:
            results = {}
            for preset in presets:
                print(f"  {name} / {style.stem} / {preset} ...", flush=True)
                job = workdir / "jobs" / name / style.stem / preset
                seconds = timed_stylize(clip, style, preset_settings(preset, args.width, {}), job, None)
                warp, floor, style_d, content_d = measure(job, clip, style, stylizers)
                results[preset] = {"seconds": seconds, "style": style_d, "content": content_d, "warp": warp}
            base = results.get("paper")
            for preset, r in results.items():
                ratios = {k: r[k] / base[k] for k in r} if base else {}
                table.append([name, style.stem, preset, f"{r['seconds'] * args.frames:.0f}", f"{r['seconds']:.1f}",
                              f"{r['style']:.3f}", f"{r['content']:.3f}", f"{r['warp']:.2f}",
                              *(f"{ratios[k]:.3f}" if ratios else "-" for k in ("seconds", "style", "content", "warp"))])
                if preset == "default" and ratios:
                    verdicts.append((name, style.stem, {k: ratios[k] <= TARGETS[k] for k in TARGETS}))
    print()
    print(evaluate.format_table_rows(
        ["clip", "painting", "preset", "wall s", "s/frame", "style", "content", "warp err",
         "time x paper", "style x", "content x", "warp x"], table))
    print()
    for name, painting, ok in verdicts:
        met = ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in ok.items())
        print(f"default vs paper on {name}/{painting}: {met} (targets: time <= 1/8, style <= 1.05x, "
              f"content <= 1.10x, warp <= 1.05x)")
    print(f"load average (1 min) at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
          f"native bfloat16: {'yes' if has_native_bf16() else 'no'}")


if __name__ == "__main__":
    main()
