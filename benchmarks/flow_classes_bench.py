"""Optical flow per clip class: endpoint error against the exact flow, and what the reliability catches.

    python benchmarks/flow_classes_bench.py [--methods dis_dense,fused,rlof,dis_dense@x2,dis_dense@src2]
        [--clips pan,zoom] [--widths 128,192] [--frames 6] [--photos DIR] [--threads 1] [--no-temporal]
    python benchmarks/flow_classes_bench.py --gaps 2,3,5 --frames 12 --methods dis_dense,dis_dense+chain[+camera]

For every synthetic clip class of ``benchmarks/temporal_bench.py`` (``SYNTHETIC``: exact flow
from ``flow.synthetic.camera_clip``), at each width, every consecutive pair's flow t -> t-1 (the
one the stylizer warps with) is scored over the pixels frame t-1 shows too:

* ``EPE``: mean endpoint error, px;
* ``>1px``: share of those pixels off by more than 1 px (where warping visibly tears);
* ``caught``: share of the >1 px pixels the consistency check (flow t -> t-1 against t-1 -> t)
  marks unreliable (< 128 of 255), i.e. the temporal loss does not pull them;
* ``missed``: share of all visible pixels that are off by more than 1 px and yet marked reliable
  (what the temporal loss pulls towards a wrong place: ``>1px`` x (1 - ``caught``));
* ``lost``: share of the correct pixels (<= 1 px) it marks unreliable (what it throws away);
* ``occl``: share of the pixels frame t-1 does not show (occluded, outside, on a disc's rim) it
  marks unreliable (what must not be pulled);
* ``s/pair``: seconds for both flows of a pair (median over pairs).

With ``--temporal`` (the default), the same three for a reliability that also uses what the previous pair saw,
over the pairs after the first (the checker's own figures over those pairs beside them): a pixel
the checker marks as a motion boundary is reliable after all when its flow agrees within
``--temporal-tolerance`` px with the previous pair's flow t-1 -> t-2 taken at the point it maps
to (constant motion over three frames); disoccluded pixels stay unreliable.

Methods: every name of ``flow.available_methods()``; ``NAME@xK`` is method NAME on the frames
upsampled K times (``flow.estimators.UpsampledEstimator``); ``NAME@srcK`` is NAME on the clip
rendered K times larger (the source footage of a job worked at this width), its flow shrunk to
this width; and OpenCV methods the project does not offer, to show why: ``dis_ultrafast``,
``dis_fast`` (DIS presets), ``rlof`` (dense RLOF), ``pcaflow``, ``simpleflow``.

Measured (8 classes, 128 and 192 px, 6 frames, one thread; the tables in the flow issue's
report): ``fused`` leaves the fewest pixels off by more than 1 px on every class among the
methods on working-size frames; dense DIS on the frames upsampled 2x, or on the source at twice
the size, beats dense DIS on most classes at 128 px (``fast``: 1.22 and 1.47 px against 1.67)
for 4-5x its time, and on the source it is the most exact on rotation and zoom (``rotation``,
128 px: 0.044 px against fused 0.18, dense DIS 0.22). Left out of the project:
``dis_ultrafast`` / ``dis_fast`` (3-64% of pixels off by >1 px), ``pcaflow`` (5-80%), ``rlof``
(5-47%, 0.06-0.13 s a pair), ``simpleflow`` (worst class 4.7 px at 192 px, 0.3-0.4 s a pair);
farneback and tvl1 stay for what they were (worst classes 11.6 and 4.8 px at 192 px).
The temporal reliability (``--temporal``) throws away fewer correct pixels where the motion is
steady (``zoom`` 128 px, dense DIS: 8.9% -> 4.4%) but marks many fewer occluded pixels
(``slow``: 66% -> 33%, ``static``: 76% -> 61%) and catches fewer wrong ones (``slow``: 100% ->
30%): not worth making a setting.

With ``--gaps 2,3,5``, the pairs that far apart instead (the flows of the long-term terms), over the
pixels both frames show, split into those every frame between shows too (``seen``) and those one
of them hides (``revealed``: background behind a passing object, where the long-term terms
matter); ``NAME+chain`` fuses NAME's flow of the pair with the neighbours' flows (``--chain-of``,
default fused) composed along the way, as ``--long-term-chain`` does. Measured (6 classes, 128 px,
12 frames, one thread): ``seen`` 0.14-0.24 px with ``+chain`` against 0.6-2.7 px for dense DIS on
five classes (``fast``: 1.6-1.8 px for all); ``revealed`` on ``crossing`` dense DIS 12.8 px,
``dis_dense+chain`` 9.7, ``fused+chain`` 8.1; DeepFlow is lost on ``pan``'s long pairs (12-19 px).
``NAME+chain+camera`` also offers the composition's global motion where it breaks, as
``--long-term-camera`` does: ``revealed`` 0.9-3.2 px -> 0.2-0.5 px on pan, zoom, handheld, slow
and rotation (``dis_dense``, 8 classes, 128 px, 12 frames; ``flow/chain.py``).

Photos: ``--photos`` (default ``../shared/data/photos`` beside the repository, as
temporal_bench); where it is absent the clips fall back to analytic textures, which have no flat
regions and give other figures.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import temporal_bench  # noqa: E402
import flow  # noqa: E402
from flow.consistency import MOTION_BOUNDARY, RELIABLE, _classify, smooth_gaussian_like_checker  # noqa: E402
from flow.estimators import UpsampledEstimator, to_grey_uint8  # noqa: E402
from flow.synthetic import SyntheticClip  # noqa: E402

UNRELIABLE = 128
DEFAULT_METHODS = ("dis", "dis_fine", "dis_dense", "deepflow", "tvl1", "farneback", "dis_ultrafast", "dis_fast",
                   "rlof", "pcaflow", "simpleflow", "dis_dense@x2", "dis_dense@src2", "fused")


class _GreyOpenCV:
    """An OpenCV method the project does not offer, on 8-bit grey (3-channel where it insists)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._engine = {
            "dis_ultrafast": lambda: cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST),
            "dis_fast": lambda: cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST),
            "pcaflow": cv2.optflow.createOptFlow_PCAFlow,
        }.get(name, lambda: None)()

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.nan_to_num(self._compute(to_grey_uint8(a), to_grey_uint8(b)))  # SimpleFlow gives NaNs

    def _compute(self, grey_a: np.ndarray, grey_b: np.ndarray) -> np.ndarray:
        if self._engine is not None:
            return self._engine.calc(grey_a, grey_b, None)
        # Dense RLOF and SimpleFlow take 8-bit 3-channel frames only.
        colour = [cv2.cvtColor(g, cv2.COLOR_GRAY2BGR) for g in (grey_a, grey_b)]
        if self.name == "rlof":
            return cv2.optflow.calcOpticalFlowDenseRLOF(*colour, None)
        return cv2.optflow.calcOpticalFlowSF(*colour, 3, 2, 4)  # 3 levels, 2 px averaging block, 4 px max flow


EXTRA = ("dis_ultrafast", "dis_fast", "rlof", "pcaflow", "simpleflow")


def make_estimator(method: str) -> flow.FlowEstimator:
    if "@x" in method:
        base, factor = method.split("@x")
        return UpsampledEstimator(make_estimator(base), int(factor))
    if method in EXTRA:
        return _GreyOpenCV(method)
    return flow.create_estimator(method)


def source_scale(method: str) -> int:
    return int(method.split("@src")[1]) if "@src" in method else 1


@dataclass
class Verdicts:
    """A reliability's verdicts (True = unreliable) on the visible pixels, their errors, and on
    the pixels the other frame does not show; one array per pair."""

    errors: list[np.ndarray]
    visible: list[np.ndarray]
    hidden: list[np.ndarray]

    def add(self, err: np.ndarray, unreliable: np.ndarray, visible: np.ndarray) -> None:
        self.errors.append(err[visible])
        self.visible.append(unreliable[visible])
        self.hidden.append(unreliable[~visible])

    def caught_lost_occluded(self) -> tuple[float, float, float]:
        err, unrel, hidden = (np.concatenate(x) for x in (self.errors, self.visible, self.hidden))
        wrong = err > 1.0
        return _share(unrel[wrong]), _share(unrel[~wrong]), _share(hidden)


def _share(flags: np.ndarray) -> float:
    return float(flags.mean()) if flags.size else float("nan")


@dataclass
class Score:
    checker: Verdicts
    later_checker: Verdicts  # the checker over the pairs after the first
    temporal: Verdicts  # the temporal reliability over the same pairs
    seconds: list[float]

    def row(self) -> tuple[float, float, float, float, float, float, float]:
        err = np.concatenate(self.checker.errors)
        wrong = err > 1.0
        missed = float((wrong & ~np.concatenate(self.checker.visible)).mean())
        caught, lost, occluded = self.checker.caught_lost_occluded()
        return float(err.mean()), float(wrong.mean()), caught, missed, lost, occluded, statistics.median(self.seconds)


def temporal_unreliable(backward: np.ndarray, forward: np.ndarray, previous: np.ndarray,
                        tolerance: float) -> np.ndarray:
    """The checker's verdict with its motion-boundary marks lifted where the flow t -> t-1 agrees
    with the previous pair's flow t-1 -> t-2 at the point it maps to."""
    raw = _classify(backward, forward)
    agrees = np.hypot(*(backward - flow.warp(previous, backward)).transpose(2, 0, 1)) <= tolerance
    lifted = (raw == MOTION_BOUNDARY) & (flow.lands_inside(backward) > 0) & agrees
    raw = np.where(lifted, np.float32(RELIABLE), raw)
    return np.clip(smooth_gaussian_like_checker(raw), 0, 255) < UNRELIABLE


def score(method: str, clip: SyntheticClip, source: SyntheticClip | None, tolerance: float) -> Score:
    estimator = make_estimator(method.split("@src")[0])
    frames = (source or clip).frames
    height, width = clip.frames[0].shape[:2]
    result = Score(Verdicts([], [], []), Verdicts([], [], []), Verdicts([], [], []), [])
    previous = None
    for k in range(1, len(frames)):
        start = time.perf_counter()
        backward = estimator(frames[k], frames[k - 1])
        forward = estimator(frames[k - 1], frames[k])
        result.seconds.append(time.perf_counter() - start)
        backward, forward = flow.resize_flow(backward, height, width), flow.resize_flow(forward, height, width)
        visible = clip.visible[k]
        err = np.hypot(*(backward - clip.backward[k]).transpose(2, 0, 1))
        unreliable = flow.consistency_check(backward, forward) < UNRELIABLE
        result.checker.add(err, unreliable, visible)
        if previous is not None and tolerance > 0:
            result.later_checker.add(err, unreliable, visible)
            result.temporal.add(err, temporal_unreliable(backward, forward, previous, tolerance), visible)
        previous = backward
    return result


@dataclass
class GapScore:
    """Errors of the flows t -> t-k over the pixels both frames show, split by whether every frame
    between shows them too (``seen``) or one hides them (``revealed``), and seconds per pair."""

    seen: list[np.ndarray]
    revealed: list[np.ndarray]
    seconds: list[float]

    def row(self) -> tuple[float, float, float, float, float]:
        seen, revealed = np.concatenate(self.seen), np.concatenate(self.revealed)
        return (float(seen.mean()), float((seen > 1).mean()), _mean(revealed), _share(revealed > 1),
                statistics.median(self.seconds))


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else float("nan")


CHAIN_SUFFIX = "+chain"
CAMERA_SUFFIX = "+camera"  # after +chain: with the composition's global motion too (--long-term-camera)


def score_gaps(method: str, clip: SyntheticClip, gaps: list[int],
               neighbours: dict[int, tuple[np.ndarray, np.ndarray]]) -> GapScore:
    """``method`` on the pairs ``gaps`` apart; ``NAME+chain`` fuses NAME's flow of each pair with
    the ``neighbours``' flows composed along the way (``flow.fuse_with_chain``, as a job with
    ``--long-term-chain`` does; ``NAME+chain+camera`` as ``--long-term-camera`` too)."""
    camera = method.endswith(CHAIN_SUFFIX + CAMERA_SUFFIX)
    method = method.removesuffix(CAMERA_SUFFIX) if camera else method
    chained = method.endswith(CHAIN_SUFFIX)
    estimator = make_estimator(method.removesuffix(CHAIN_SUFFIX))
    result = GapScore([], [], [])
    for k in gaps:
        for t in range(k, len(clip.frames)):
            s = t - k
            start = time.perf_counter()
            # both ways, as a job's flow unit makes them: s/pair compares with the other table's
            backward = estimator(clip.frames[t], clip.frames[s])
            forward = estimator(clip.frames[s], clip.frames[t])
            if chained:
                composed = (flow.compose_flows([neighbours[q][0] for q in range(t, s, -1)]),
                            flow.compose_flows([neighbours[q + 1][1] for q in range(s, t)]))
                backward, _ = flow.fuse_with_chain(clip.frames[t], clip.frames[s], (backward, forward), composed,
                                                   camera)
            result.seconds.append(time.perf_counter() - start)
            truth, visible = clip.flow_between(t, s)
            shown_between = visible.copy()
            for q in range(s + 1, t):
                shown_between &= clip.flow_between(t, q)[1]
            err = np.hypot(*(backward - truth).transpose(2, 0, 1))
            result.seen.append(err[shown_between])
            result.revealed.append(err[visible & ~shown_between])
    return result


def gaps_table(args: argparse.Namespace, methods: list[str], clips: list[str], gaps: list[int]) -> None:
    """Pairs further apart (the long-term terms' flows) per method and clip class."""
    for width in (int(w) for w in args.widths.split(",")):
        for name in clips:
            clip = temporal_bench.synthetic_clip(name, args.frames, width)
            between = make_estimator(args.chain_of)
            # frame q's flows to q-1 and from q-1, as the job's neighbour pairs hold them
            neighbours = {q: (between(clip.frames[q], clip.frames[q - 1]), between(clip.frames[q - 1], clip.frames[q]))
                          for q in range(1, len(clip.frames))}
            print(f"\n{name} at {width}x{clip.frames[0].shape[0]}, pairs {','.join(map(str, gaps))} apart"
                  f" ({args.chain_of} between neighbours for +chain)")
            print(f"  {'method':22s} {'seen EPE':>8s} {'>1px':>6s} {'revealed EPE':>12s} {'>1px':>6s} {'s/pair':>7s}")
            for method in methods:
                seen, seen_wrong, revealed, revealed_wrong, seconds = score_gaps(method, clip, gaps, neighbours).row()
                print(f"  {method:22s} {seen:8.3f} {seen_wrong:6.1%} {revealed:12.2f} {revealed_wrong:6.1%}"
                      f" {seconds:7.3f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    parser.add_argument("--clips", default=",".join(temporal_bench.SYNTHETIC))
    parser.add_argument("--widths", default="128,192")
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--photos", type=Path, default=temporal_bench.PHOTOS)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--temporal", action=argparse.BooleanOptionalAction, default=True,
                        help="also the reliability that uses the previous pair")
    parser.add_argument("--temporal-tolerance", type=float, default=0.5)
    parser.add_argument("--gaps", default="", help="e.g. 2,3,5: score the pairs that far apart instead "
                                                    "(the long-term pairs); NAME+chain fuses NAME with the "
                                                    "neighbours' flows composed")
    parser.add_argument("--chain-of", default="fused", help="with --gaps: the neighbours' method for +chain")
    args = parser.parse_args()
    cv2.setNumThreads(args.threads)
    temporal_bench.PHOTOS = args.photos
    methods = [m for m in args.methods.split(",") if m]
    clips = [c for c in args.clips.split(",") if c]
    print(f"OpenCV {cv2.__version__}, {args.threads} thread(s); photos from {args.photos}"
          f"{'' if args.photos.is_dir() else ' (absent: analytic textures)'}; {args.frames} frames per clip")
    if args.gaps:
        gaps_table(args, methods, clips, [int(k) for k in args.gaps.split(",")])
        return
    worst: dict[tuple[str, int], tuple[float, str]] = {}
    for width in (int(w) for w in args.widths.split(",")):
        for name in clips:
            clip = temporal_bench.synthetic_clip(name, args.frames, width)
            sources: dict[int, SyntheticClip] = {}
            print(f"\n{name} at {width}x{clip.frames[0].shape[0]}, {args.frames - 1} pairs")
            header = (f"  {'method':16s} {'EPE':>6s} {'>1px':>6s} {'caught':>7s} {'missed':>6s} {'lost':>6s}"
                      f" {'occl':>6s} {'s/pair':>7s}")
            if args.temporal:
                header += "   later pairs: checker caught/lost/occl   temporal caught/lost/occl"
            print(header)
            for method in methods:
                scale = source_scale(method)
                if scale > 1 and scale not in sources:
                    sources[scale] = temporal_bench.synthetic_clip(name, args.frames, width * scale)
                result = score(method, clip, sources.get(scale), args.temporal_tolerance if args.temporal else 0.0)
                epe, wrong, caught, missed, lost, occluded, seconds = result.row()
                line = (f"  {method:16s} {epe:6.3f} {wrong:6.1%} {caught:7.1%} {missed:6.2%} {lost:6.1%}"
                        f" {occluded:6.1%} {seconds:7.3f}")
                if args.temporal:
                    line += "   " + " / ".join(f"{x:.1%}" for x in result.later_checker.caught_lost_occluded())
                    line += "   " + " / ".join(f"{x:.1%}" for x in result.temporal.caught_lost_occluded())
                print(line, flush=True)
                key = (method, width)
                if epe > worst.get(key, (-1.0, ""))[0]:
                    worst[key] = (epe, name)
    print("\nworst class per method (mean EPE, px)")
    for (method, width), (epe, name) in sorted(worst.items(), key=lambda kv: (kv[0][1], kv[1][0])):
        print(f"  {width:4d} px  {method:16s} {epe:6.3f} ({name})")


if __name__ == "__main__":
    main()
