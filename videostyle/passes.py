"""The two temporal algorithms of Ruder et al. as units of work: multi-pass and single-pass.

Every unit reads its inputs (content frame, earlier results, flows) from the job folder and
writes one PNG (a group of frames stylized together, ``batch_frames``, one per frame), so a run
can stop after any unit and resume with identical results: nothing is carried in memory from one
unit to the next.

Frames are stylized per segment (see ``videostyle.shots``): no warp, blend or temporal loss
reaches outside a segment except to its anchor frames, which are stylized first and then fixed.
A unit lists the units it reads from, flows included, so any engine may run it once they are done.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from videostyle.config import Settings
from videostyle.curvature import discard_curvature, load_curvature, save_curvature
from videostyle.flowstage import FlowStore, flow_unit_name
from videostyle.frame.optimize import CurvatureMemory
from videostyle.frame.stylize import FrameLook, FrameTask, StylizeResult, Stylizer, TemporalTarget
from videostyle.images import save_image
from videostyle.jobdir import JobDir, check_no_link_on_the_way
from videostyle.shots import Segment, previous_anchors
from videostyle.temporal import blend, combine_long_term, hold_beyond, warp_with_fill, weights_beyond
from videostyle.units import Unit, UnitResult
from videostyle.video_io import frame_name


def no_look(i: int) -> FrameLook | None:
    return None


@dataclass(frozen=True)
class PassContext:
    """What the stylization units of one job share."""

    job: JobDir
    style_key: str  # the results live in the job's stylized folder of this key
    flows: FlowStore | None
    n_frames: int
    settings: Settings
    stylizer: Callable[[], Stylizer]  # built on first use, then reused
    segments: tuple[Segment, ...]
    anchors: tuple[int, ...] = ()
    look: Callable[[int], FrameLook | None] = no_look  # frame i's style blend or masks

    def content(self, i: int) -> np.ndarray:
        return self.job.read_image(self.job.frame_path(i))

    def result_path(self, pass_index: int, i: int) -> Path:
        """Where frame i's result of a pass is; an anchor has one result for every pass."""
        if i in self.anchors:
            return self.job.anchors_dir(self.style_key) / frame_name(i)
        return self.job.pass_dir(self.style_key, pass_index) / frame_name(i)

    def result(self, pass_index: int, i: int) -> np.ndarray:
        return self.job.read_image(self.result_path(pass_index, i)).astype(np.float32)

    def warped_result(self, pass_index: int, source: int, target: int) -> np.ndarray:
        """Frame ``source`` of a pass, warped into frame ``target``."""
        assert self.flows is not None
        return warp_with_fill(self.result(pass_index, source), self.flows.flow(target, source))

    def final_path(self, i: int) -> Path:
        return self.result_path(last_pass(self.settings), i)

    def curvature_path(self, pass_index: int, i: int) -> Path:
        """Where frame i's L-BFGS curvature from a pass waits for its next pass (see videostyle.curvature)."""
        path = self.job.curvature_path(self.style_key, pass_index, frame_name(i))
        check_no_link_on_the_way(self.job.root, path)
        return path


def unit_name(ctx: PassContext, pass_index: int, i: int) -> str:
    """A unit is named by its result's place in the style key's folder: ``pass_02/frame_00005``."""
    result = ctx.result_path(pass_index, i).relative_to(ctx.job.stylized_dir(ctx.style_key))
    return result.with_suffix("").as_posix()


def frame_seed(seed: int, i: int, pass_index: int) -> int:
    """A distinct, reproducible seed per frame and pass."""
    return seed * 1_000_003 + pass_index * 100_003 + i


def last_pass(settings: Settings) -> int:
    return settings.video.passes if settings.video.algorithm == "multipass" else 1


def coarse_pass_count(settings: Settings) -> int:
    """How many passes run at ``coarse_scale``: at most all but the last, whose result is the
    output and so is always optimised at the working size (``--passes 1`` with a preset of one
    coarse pass would otherwise return a half-size result enlarged)."""
    v = settings.video
    return min(v.coarse_passes, v.passes - 1) if v.algorithm == "multipass" else 0


def coarse_passes_note(settings: Settings) -> str | None:
    """A note when the settings ask for more coarse passes than :func:`coarse_pass_count` runs."""
    v = settings.video
    if v.algorithm != "multipass" or v.coarse_passes <= coarse_pass_count(settings):
        return None
    runs = coarse_pass_count(settings)
    return (f"note: {v.coarse_passes} coarse pass(es) asked for with {v.passes} pass(es); the last pass runs at "
            f"the working size, so {runs} run(s) at {v.coarse_scale:g} scale")


def needs_flow(settings: Settings, n_frames: int) -> bool:
    v = settings.video
    if n_frames < 2:
        return False
    if v.algorithm == "multipass":
        return (v.passes > 1 or v.first_pass == "propagate"
                or (v.temporal_weight > 0 and v.temporal_from <= v.passes))
    return v.temporal_weight > 0 or v.init_rest == "prev_warped"


def stylize_units(ctx: PassContext) -> list[Unit]:
    """Anchors first, then every segment's frames by the configured algorithm."""
    units = anchor_units(ctx)
    if ctx.settings.video.algorithm == "multipass":
        return units + multipass_units(ctx)
    return units + [u for seg in ctx.segments for u in singlepass_units(ctx, seg)]


def frame_scale(ctx: PassContext, pass_index: int, i: int) -> float:
    """The size frame i is optimised at in a pass, relative to the working size."""
    if ctx.settings.video.algorithm != "multipass" or i in ctx.anchors:
        return 1.0
    return _pass_scale(ctx, pass_index)


def _pass_scale(ctx: PassContext, pass_index: int) -> float:
    """The size of a multi-pass pass's frames (anchors aside), relative to the working size."""
    v = ctx.settings.video
    if _parallel(ctx) and _propagates(ctx, pass_index):
        return v.propagate_scale
    return v.coarse_scale if pass_index <= coarse_pass_count(ctx.settings) else 1.0


def _effort(ctx: PassContext, pass_index: int, i: int, iterations: int) -> float:
    """Full-size iterations: an iteration costs about the pixels it optimises (see ``Unit.effort``)."""
    return iterations * frame_scale(ctx, pass_index, i) ** 2


STYLIZE_KIND = "stylize {:g}x"  # the cost kind of stylization units at one size (see ``Unit.kind``)


def _kind(ctx: PassContext, pass_index: int, i: int) -> str:
    """Units optimised at one size cost alike per iteration (smaller ones a little more per pixel)."""
    return STYLIZE_KIND.format(frame_scale(ctx, pass_index, i))


def kind_scale(kind: str) -> float | None:
    """The size a stylization unit of this cost kind is optimised at; None for other kinds."""
    kind, _frames = split_batch_kind(kind)
    prefix, _, suffix = STYLIZE_KIND.partition("{:g}")
    if not (kind.startswith(prefix) and kind.endswith(suffix)):
        return None
    return float(kind.removeprefix(prefix).removesuffix(suffix))


def _stylize(ctx: PassContext, i: int, iterations: int, init: np.ndarray | str,
             temporal: list[TemporalTarget], pass_index: int) -> UnitResult:
    task = _frame_task(ctx, i, init, temporal, pass_index)
    result = ctx.stylizer().stylize(task.content, iterations=iterations, init=task.init, temporal=task.temporal,
                                    temporal_weight=task.temporal_weight, seed=task.seed,
                                    scale=frame_scale(ctx, pass_index, i), look=task.look, memory=task.memory,
                                    keep_pairs=task.keep_pairs)
    _save_result(ctx, pass_index, i, result)
    return UnitResult(losses=result.losses, iterations=result.iterations, stop_reason=result.stop_reason)


def _frame_task(ctx: PassContext, i: int, init: np.ndarray | str, temporal: list[TemporalTarget],
                pass_index: int) -> FrameTask:
    v = ctx.settings.video
    return FrameTask(ctx.content(i), init=init, temporal=tuple(temporal),
                     temporal_weight=v.temporal_weight if temporal else 0.0, seed=frame_seed(v.seed, i, pass_index),
                     look=ctx.look(i), memory=_curvature_from_previous_pass(ctx, pass_index, i),
                     keep_pairs=v.curvature_pairs if _hands_on_curvature(ctx, pass_index, i) else 0)


def _save_result(ctx: PassContext, pass_index: int, i: int, result: StylizeResult) -> None:
    """Frame i's result of a pass, after the curvature its next pass starts from (so a unit redone
    after a kill finds what it started from the first time); then the curvature it used is let go."""
    if _hands_on_curvature(ctx, pass_index, i) and result.memory is not None:
        save_curvature(ctx.curvature_path(pass_index, i), result.memory)
    save_image(ctx.result_path(pass_index, i), result.image)
    if _hands_on_curvature(ctx, pass_index - 1, i):
        discard_curvature(ctx.curvature_path(pass_index - 1, i))


def _hands_on_curvature(ctx: PassContext, pass_index: int, i: int) -> bool:
    """Whether frame i's pass keeps its L-BFGS curvature for the frame's next pass: with
    ``curvature_pairs``, between multi-pass passes of one size (anchors have one unit)."""
    v = ctx.settings.video
    return (v.curvature_pairs > 0 and v.algorithm == "multipass" and i not in ctx.anchors
            and 1 <= pass_index < v.passes and frame_scale(ctx, pass_index, i) == frame_scale(ctx, pass_index + 1, i))


def _curvature_from_previous_pass(ctx: PassContext, pass_index: int, i: int) -> CurvatureMemory | None:
    if not _hands_on_curvature(ctx, pass_index - 1, i):
        return None
    return load_curvature(ctx.curvature_path(pass_index - 1, i))


# ---------------------------------------------------------------- anchors


def anchor_units(ctx: PassContext) -> list[Unit]:
    """Anchor frames get the iterations a frame gets over a whole run. The first anchor of a shot
    starts like any first frame; each later one starts from the anchor before it, warped, and is
    held to it by the temporal loss (see ``shots.previous_anchors``)."""
    v = ctx.settings.video
    iterations = v.iterations * v.passes if v.algorithm == "multipass" else v.iterations_first
    chain = previous_anchors(ctx.segments) if ctx.flows is not None else {}
    units = []
    for i in ctx.anchors:
        before = chain.get(i)
        needs = () if before is None else (unit_name(ctx, 1, before), flow_unit_name(before, i))
        units.append(Unit(name=unit_name(ctx, 1, i), stage="stylize", outputs=(ctx.result_path(1, i),),
                          needs=needs, work=_anchor_work(ctx, i, before, iterations),
                          label=f"anchor frame {i}/{ctx.n_frames}", effort=_effort(ctx, 1, i, iterations),
                          kind=_kind(ctx, 1, i)))
    return units


def _anchor_work(ctx: PassContext, i: int, before: int | None, iterations: int) -> Callable[[], UnitResult]:
    def work() -> UnitResult:
        if before is None:
            return _stylize(ctx, i, iterations, ctx.settings.video.init, [], 1)
        assert ctx.flows is not None
        warped = ctx.warped_result(1, before, i)
        target = TemporalTarget(warped, ctx.flows.reliability(i, before))
        return _stylize(ctx, i, iterations, warped, [target], 1)

    return work


# ---------------------------------------------------------------- multi-pass


def multipass_units(ctx: PassContext) -> list[Unit]:
    """Passes alternate direction (see ``pass_order``); each frame after pass 1 starts from its
    last result blended with its warped neighbours, and from pass ``temporal_from`` on it is held
    to the neighbours already stylized in this pass (and to anchors) by the temporal loss. With
    ``schedule = parallel`` the frames of a pass come in the steps of ``parallel_ranks`` instead."""
    v = ctx.settings.video
    units = []
    for p in range(1, v.passes + 1):
        for seg in ctx.segments:
            rank = pass_ranks(ctx, seg, p)
            for i in sorted(rank, key=lambda frame: (rank[frame], frame)):
                iterations = _multipass_iterations(ctx, seg, rank, p, i)
                units.append(Unit(name=unit_name(ctx, p, i), stage="stylize", outputs=(ctx.result_path(p, i),),
                                  needs=_multipass_needs(ctx, seg, rank, p, i),
                                  work=_multipass_work(ctx, seg, rank, p, i),
                                  label=f"pass {p}/{v.passes} frame {i}/{ctx.n_frames}",
                                  effort=_effort(ctx, p, i, iterations), kind=_kind(ctx, p, i)))
    return batched_units(ctx, units) if _batches(ctx) else units


def pass_ranks(ctx: PassContext, seg: Segment, p: int) -> dict[int, int]:
    """Each frame of the segment with its step in pass p: a frame is held to (and starts from) the
    neighbours of lower rank as they are after this pass (see ``_settled``)."""
    if _parallel(ctx):
        return parallel_ranks(seg, p, propagate=_propagates(ctx, p), spacing=ctx.settings.video.parallel_spacing)
    return {frame: k for k, frame in enumerate(pass_order(seg, p, ctx.settings.video.passes))}


def _parallel(ctx: PassContext) -> bool:
    return ctx.settings.video.schedule == "parallel" and ctx.flows is not None


def parallel_ranks(seg: Segment, p: int, propagate: bool, spacing: int = 2) -> dict[int, int]:
    """The steps of pass p in the parallel schedule.

    A propagated pass 1 is the one chain: from the middle of a free segment outwards both ways
    (half the segment's length one after another), or in from its anchors, which already hold the
    texture. Every other pass first does every ``spacing``-th frame at once, each held to its
    neighbours as the previous pass left them; then, step by step, the frames next to those done,
    each held to the neighbours done before it in this pass (red-black Gauss-Seidel for a spacing
    of 2). Every pair of neighbours but those done in one step thus has one frame fitted to the
    other's result of this pass, as in a sequential pass, and what the first frames of a pass
    changed independently is spread over ``spacing`` pairs. The first frames move by half the
    spacing from pass to pass, so no pair is always the one between them; a pass takes at most
    ``(spacing + 1) // 2 + 1`` steps, and no two neighbours come in the same one.
    """
    frames = list(seg.frames())
    if not propagate:
        first = [frame for frame in frames if (frame - seg.first + p * (spacing // 2 or 1)) % spacing == 0]
        # an end further than half the spacing from those is one of them, so no pass takes longer
        first += [end for end in (seg.first, seg.last)
                  if min((abs(end - f) for f in first), default=spacing) > spacing // 2]
        return _steps_between(frames, sorted(set(first)))
    has_before, has_after = seg.anchor_before is not None, seg.anchor_after is not None
    if has_before and has_after:
        return {frame: min(frame - seg.first, seg.last - frame) for frame in frames}
    if has_before or has_after:
        return {frame: frame - seg.first if has_before else seg.last - frame for frame in frames}
    middle = (seg.first + seg.last) // 2
    return {frame: abs(frame - middle) for frame in frames}


def _steps_between(frames: list[int], first: list[int]) -> dict[int, int]:
    """Each frame's step when the ``first`` frames come first and the others follow from both
    sides: its distance to the nearer of them. In an odd gap the middle two frames would come
    in one step, neither fitted to the other's result (a pair that flickered 1.4x the clip's mean
    on the panning benchmark clip): there the side after the gap waits one step longer."""
    steps = {}
    for frame in frames:
        before = max((f for f in first if f <= frame), default=None)
        after = min((f for f in first if f >= frame), default=None)
        if before is None or after is None:
            steps[frame] = abs(frame - (after if before is None else before))
            continue
        odd = (after - before) % 2
        steps[frame] = min(frame - before, after - frame + odd)
    return steps


def pass_order(seg: Segment, p: int, passes: int) -> list[int]:
    """The frames of a segment in the order pass p visits them.

    Passes alternate direction, odd ones forward, as in the paper. A segment fixed to an anchor on
    one side is shifted so that its last pass runs away from the anchor: a pass carries what it
    starts from along, and where it ended against a fixed anchor their difference piled up on the
    frame next to it, which then flickered against both its neighbours. Between two anchors the
    last pass runs in from both ends and meets in the middle.
    """
    frames = list(seg.frames())
    has_before, has_after = seg.anchor_before is not None, seg.anchor_after is not None
    if has_before and has_after and p == passes:
        middle = (len(frames) + 1) // 2
        return frames[:middle] + frames[middle:][::-1]
    forward = p % 2 == 1
    if has_before != has_after:
        last_forward = has_before
        forward = last_forward == ((passes - p) % 2 == 0)
    return frames if forward else frames[::-1]


def _settled(ctx: PassContext, rank: Mapping[int, int], i: int, j: int) -> bool:
    """Whether neighbour j is final for this pass when frame i is stylized: it came earlier in the
    pass, or it is an anchor (which never changes, so the frames beside it are held to it in every
    pass, not only in the passes running away from it)."""
    return j in ctx.anchors or rank.get(j, len(rank)) < rank[i]


def _multipass_needs(ctx: PassContext, seg: Segment, rank: Mapping[int, int], p: int, i: int) -> tuple[str, ...]:
    needs = [unit_name(ctx, p - 1, i)] if p > 1 else []
    if ctx.flows is not None:
        for source_pass, j in _neighbour_sources(ctx, seg, rank, p, i) + _long_term_sources(ctx, seg, rank, p, i):
            needs += [unit_name(ctx, source_pass, j), flow_unit_name(i, j)]
    return tuple(dict.fromkeys(needs))


def _neighbour_sources(ctx: PassContext, seg: Segment, rank: Mapping[int, int], p: int,
                       i: int) -> list[tuple[int, int]]:
    """(pass, frame) of each neighbour result frame i reads: a settled neighbour's of this pass
    when anything uses it, the other's of the previous pass when it is blended in or (parallel
    schedule) held to."""
    sources = []
    for step in (-1, 1):
        j = seg.neighbour(i, step)
        if j is None:
            continue
        if _settled(ctx, rank, i, j):
            if p > 1 or _temporal_on(ctx, p) or _propagates(ctx, p):
                sources.append((p, j))
        elif p > 1 and (ctx.settings.video.blend_weight_other > 0 or _holds_to_previous(ctx, p)):
            sources.append((p - 1, j))
    return sources


def _holds_to_previous(ctx: PassContext, p: int) -> bool:
    """Parallel schedule: a frame is also held to the neighbours not yet done in this pass, as the
    previous pass left them (they are done at the same time as it, or after it), unless that pass
    ran at a smaller size. Its results, enlarged, are blurred targets, and a frame held to them
    keeps their blur: the first full-size pass of `farm` held to its half-size pass lost content
    (1.08-1.23x default's); not held, 1.06-1.18x, and style and warping error fell with it."""
    return (_parallel(ctx) and p > 1 and _temporal_on(ctx, p)
            and _pass_scale(ctx, p - 1) >= _pass_scale(ctx, p))


def _held_weight(ctx: PassContext, p: int, source_pass: int) -> float:
    """How hard a frame of pass p is held to a neighbour's result of ``source_pass``: fully to one
    of this pass, ``previous_pass_weight`` to one the previous pass left (parallel schedule), but
    fully in the last ``settle_passes`` passes."""
    v = ctx.settings.video
    return 1.0 if source_pass == p or p > v.passes - v.settle_passes else v.previous_pass_weight


def _settled_neighbours(ctx: PassContext, seg: Segment, rank: Mapping[int, int], i: int) -> list[int]:
    return [j for j in (seg.neighbour(i, -1), seg.neighbour(i, 1)) if j is not None and _settled(ctx, rank, i, j)]


def _temporal_on(ctx: PassContext, p: int) -> bool:
    v = ctx.settings.video
    return v.temporal_weight > 0 and p >= v.temporal_from and ctx.flows is not None


def _propagates(ctx: PassContext, p: int) -> bool:
    return p == 1 and ctx.settings.video.first_pass == "propagate" and ctx.flows is not None


Blended = tuple[np.ndarray, np.ndarray, float]  # (warped image, reliability, weight): temporal.blend's


def _multipass_init(ctx: PassContext, seg: Segment, rank: Mapping[int, int], p: int, i: int) -> np.ndarray | str:
    v = ctx.settings.video
    if _propagates(ctx, p):
        return _propagated_init(ctx, seg, rank, i)
    if p == 1 or ctx.flows is None:
        return v.init if p == 1 else ctx.result(p - 1, i)
    neighbours: list[Blended] = []
    for step in (-1, 1):
        j = seg.neighbour(i, step)
        if j is None:
            continue
        # A settled neighbour is done in this pass; the others only in the previous one.
        in_direction = _settled(ctx, rank, i, j)
        weight = v.blend_weight if in_direction else v.blend_weight_other
        if weight > 0:
            source_pass = p if in_direction else p - 1
            neighbours.append((ctx.warped_result(source_pass, j, i), ctx.flows.reliability(i, j), weight))
    return blend(ctx.result(p - 1, i), neighbours + _long_term_blend(ctx, seg, rank, p, i, neighbours))


def _long_term_blend(ctx: PassContext, seg: Segment, rank: Mapping[int, int], p: int, i: int,
                     neighbours: list[Blended]) -> list[Blended]:
    """The frames further away that frame i's start takes (``blend_long_term``), each where it is
    the nearest to see a pixel that the blended ``neighbours`` do not (c_long). A revealed region
    otherwise starts from the frame's previous pass, drawn from the side where it is seen next,
    and the long-term targets have to pull it across in one pass's iterations."""
    weight = ctx.settings.video.blend_long_term
    sources = _long_term_sources(ctx, seg, rank, p, i) if weight > 0 else []
    if not sources:
        return []
    assert ctx.flows is not None
    further = [ctx.flows.reliability(i, k) for _, k in sources]
    beyond = weights_beyond([reliability for _, reliability, _ in neighbours], further)
    return [(ctx.warped_result(q, k, i), w, weight) for (q, k), w in zip(sources, beyond)]


def _propagated_init(ctx: PassContext, seg: Segment, rank: Mapping[int, int], i: int) -> np.ndarray | str:
    """Pass 1 of ``first_pass = propagate``: the neighbour done before this frame in the pass,
    warped into it (the mean pixel where the flow leaves the frame), whatever the flow's
    reliability: the temporal loss trusts only reliable pixels, but a start that keeps the
    texture where the checker merely doubts it (motion boundaries) changes less. Measured on the
    hand-held benchmark clip (The Scream, DIS flow): warping error 4.47 against 4.76 when the
    unreliable pixels started from the frame's own init instead."""
    before = _settled_neighbours(ctx, seg, rank, i)
    return ctx.warped_result(1, before[0], i) if before else ctx.settings.video.init


def _multipass_work(ctx: PassContext, seg: Segment, rank: Mapping[int, int], p: int,
                    i: int) -> Callable[[], UnitResult]:
    def work() -> UnitResult:
        init, temporal = _multipass_start(ctx, seg, rank, p, i)
        return _stylize(ctx, i, _multipass_iterations(ctx, seg, rank, p, i), init, temporal, p)

    return work


def _multipass_start(ctx: PassContext, seg: Segment, rank: Mapping[int, int], p: int,
                     i: int) -> tuple[np.ndarray | str, list[TemporalTarget]]:
    """Frame i's start in pass p and the warped results it is held to."""
    temporal = []
    if _temporal_on(ctx, p):
        assert ctx.flows is not None
        held = (_neighbour_sources(ctx, seg, rank, p, i) if _holds_to_previous(ctx, p)
                else [(p, j) for j in _settled_neighbours(ctx, seg, rank, i)])
        temporal = [TemporalTarget(ctx.warped_result(q, j, i), ctx.flows.reliability(i, j)) for q, j in held]
        temporal = _with_long_term(ctx, seg, rank, p, i, temporal, [_held_weight(ctx, p, q) for q, _ in held])
    return _multipass_init(ctx, seg, rank, p, i), temporal


def _multipass_iterations(ctx: PassContext, seg: Segment, rank: Mapping[int, int], p: int, i: int) -> int:
    """A propagated first pass is only as good as the frame it starts from: the frame that starts
    the chain gets the iterations of all passes (as an anchor does), so the texture it hands on
    is converged and the frames after it only adapt it. With every frame at the same budget, each
    one went on optimising what it was handed and the texture drifted along the clip (hand-held
    benchmark clip, The Scream, ``preview``: pass-1 errors fell from 8.4 at its start to 5.2 at its
    end; with the longer start 5.4 to 4.5, and the final error 4.27 instead of 4.47)."""
    v = ctx.settings.video
    if not _propagates(ctx, p):
        return v.iterations
    if not _settled_neighbours(ctx, seg, rank, i):
        return v.iterations * v.passes
    return v.propagate_iterations or v.iterations


def most_temporal_targets(settings: Settings) -> int:
    """The most warped results one frame is held to: in multi-pass its neighbours and the long-term
    offsets on both sides; in single-pass the offsets behind it and the anchor after its segment."""
    v = settings.video
    if v.temporal_weight <= 0:
        return 0
    if v.algorithm == "multipass":
        return 2 * (1 + len(multipass_long_term_offsets(settings)))
    return len(set(settings.flow.long_term)) + 1


def multipass_long_term_offsets(settings: Settings) -> tuple[int, ...]:
    """The offsets of ``flow.long_term`` beyond the neighbours, which multi-pass holds to anyway."""
    return tuple(sorted({j for j in settings.flow.long_term if j > 1}))


def _long_term_sources(ctx: PassContext, seg: Segment, rank: Mapping[int, int], p: int,
                       i: int) -> list[tuple[int, int]]:
    """(pass, frame) of the frames at the long-term offsets that frame i is held to, nearest
    first: those already done in this pass. Only where the temporal loss is on."""
    if not _temporal_on(ctx, p):
        return []
    sources = []
    for j in multipass_long_term_offsets(ctx.settings):
        for step in (-1, 1):
            k = seg.neighbour(i, step * j)
            if k is not None and _settled(ctx, rank, i, k):
                sources.append((p, k))
    return sources


def _with_long_term(ctx: PassContext, seg: Segment, rank: Mapping[int, int], p: int, i: int,
                    held: list[TemporalTarget], scales: list[float]) -> list[TemporalTarget]:
    """Frame i's temporal targets ``held`` (its neighbours) and those at the long-term offsets.

    Multi-pass long-term consistency (Ruder et al. give it to single-pass only): with
    ``closest_first`` (c_long) a pixel that none of the neighbours sees, say background just
    uncovered by a passing object, is held to the nearest frame further away that does, so it
    comes back with the strokes it had before it was hidden; with ``normalize`` every pixel is
    held to every frame that sees it, their weights dividing its pull, so the texture also drifts
    less along the pass (see ``temporal.combine_long_term``).

    ``scales``: how hard each of ``held`` pulls (``_held_weight``), applied after the pixels are
    shared out by reliability, so a neighbour held less does not hand its pixels to frames further
    away.
    """
    sources = _long_term_sources(ctx, seg, rank, p, i)
    if not sources:
        return [TemporalTarget(t.image, t.weights * s) for t, s in zip(held, scales)]
    assert ctx.flows is not None
    further = [ctx.flows.reliability(i, k) for _, k in sources]
    if ctx.settings.video.long_term_combine == "closest_first":
        beyond = weights_beyond([t.weights for t in held], further)
        weights = [t.weights for t in held] + hold_beyond(beyond, further, ctx.settings.video.long_term_hold)
    else:
        weights = list(combine_long_term({n: w for n, w in enumerate([t.weights for t in held] + further, start=1)},
                                         "normalize").values())
    weights[:len(held)] = [w * s for w, s in zip(weights, scales)]
    images = [t.image for t in held] + [ctx.warped_result(q, k, i) for q, k in sources]
    criteria = [None] * len(held) + [long_term_criterion(ctx.settings)] * len(sources)
    return [TemporalTarget(image, w, c) for image, w, c in zip(images, weights, criteria) if w.any()]


def long_term_criterion(settings: Settings) -> str | None:
    """The criterion of the targets beyond the neighbours; None: the temporal loss's own."""
    chosen = settings.video.long_term_criterion
    return None if chosen == "same" else chosen


# ---------------------------------------------------------------- batched frames (parallel schedule)


def _batches(ctx: PassContext) -> bool:
    return _parallel(ctx) and ctx.settings.video.batch_frames > 1


def batch_frames_note(settings: Settings) -> str | None:
    """A note when ``batch_frames`` is asked for where no frames are stylized together."""
    v = settings.video
    if v.batch_frames <= 1 or (v.algorithm == "multipass" and v.schedule == "parallel"):
        return None
    return (f"note: batch_frames {v.batch_frames} applies to --schedule parallel only (frames of one step of a "
            "pass); each frame is stylized alone")


def frame_groups(ctx: PassContext) -> list[tuple[int, Segment, Mapping[int, int], tuple[int, ...]]]:
    """(pass, segment, its ranks, frames) of every group of frames stylized together: up to
    ``batch_frames`` frames of one step of a parallel pass in one segment (no two read each
    other's results: a frame reads only frames of earlier steps and passes), of one size and
    budget, in plan order. A group of one frame is the frame's own unit."""
    size = ctx.settings.video.batch_frames
    groups = []
    for p in range(1, ctx.settings.video.passes + 1):
        for seg in ctx.segments:
            rank = pass_ranks(ctx, seg, p)
            by_step: dict[tuple[int, float, int], list[int]] = {}
            for i in sorted(rank, key=lambda frame: (rank[frame], frame)):
                step = (rank[i], frame_scale(ctx, p, i), _multipass_iterations(ctx, seg, rank, p, i))
                by_step.setdefault(step, []).append(i)
            for step in sorted(by_step):
                frames = by_step[step]
                groups += [(p, seg, rank, tuple(frames[k:k + size])) for k in range(0, len(frames), size)]
    return groups


def batched_units(ctx: PassContext, units: list[Unit]) -> list[Unit]:
    """The multi-pass ``units`` with each group of :func:`frame_groups` as one unit in the place
    of its first frame's: its outputs are the frames' results (each written atomically, the unit
    done when all are), its needs those of its frames outside it, its effort theirs summed; any
    unit that needed one of its frames needs the group."""
    by_name = {u.name: u for u in units}
    group_of: dict[str, str] = {}
    grouped: dict[str, Unit] = {}
    for p, seg, rank, frames in frame_groups(ctx):
        if len(frames) < 2:
            continue
        members = [by_name[unit_name(ctx, p, i)] for i in frames]
        name = members[0].name + "".join(f"+{i:05d}" for i in frames[1:])
        group_of.update({m.name: name for m in members})
        grouped[members[0].name] = Unit(
            name=name, stage="stylize", outputs=tuple(o for m in members for o in m.outputs),
            needs=tuple(dict.fromkeys(n for m in members for n in m.needs)),
            work=_group_work(ctx, seg, rank, p, frames),
            label=f"pass {p}/{ctx.settings.video.passes} frames {','.join(map(str, frames))}/{ctx.n_frames}",
            effort=sum(m.effort for m in members), kind=batch_kind(members[0].kind, len(frames)))
    result = []
    for unit in units:
        if unit.name in group_of and unit.name not in grouped:
            continue  # in its group's unit, placed at the group's first frame
        unit = grouped.get(unit.name, unit)
        needs = tuple(dict.fromkeys(group_of.get(n, n) for n in unit.needs if group_of.get(n, n) != unit.name))
        result.append(replace(unit, needs=needs))
    return result


BATCH_KIND = "{}, {} frames a call"  # the cost kind of a group of frames of one kind (see ``Unit.kind``)
_BATCH_KIND = re.compile(r"(.+), (\d+) frames a call")


def batch_kind(kind: str, frames: int) -> str:
    """A group's cost kind: a batched call of N frames costs less per frame than N calls on a GPU."""
    return BATCH_KIND.format(kind, frames)


def split_batch_kind(kind: str) -> tuple[str, int]:
    """The kind of one frame of a unit of this cost kind, and how many frames a call stylizes (1
    for a frame's own unit)."""
    match = _BATCH_KIND.fullmatch(kind)
    return (match.group(1), int(match.group(2))) if match else (kind, 1)


def _group_work(ctx: PassContext, seg: Segment, rank: Mapping[int, int], p: int,
                frames: tuple[int, ...]) -> Callable[[], UnitResult]:
    def work() -> UnitResult:
        tasks = [_frame_task(ctx, i, *_multipass_start(ctx, seg, rank, p, i), p) for i in frames]
        # frame_groups puts frames of one size and budget together
        results = ctx.stylizer().stylize_batch(tasks, iterations=_multipass_iterations(ctx, seg, rank, p, frames[0]),
                                               scale=frame_scale(ctx, p, frames[0]))
        for i, result in zip(frames, results):
            _save_result(ctx, p, i, result)
        each = tuple(UnitResult(losses=r.losses, iterations=r.iterations, stop_reason=r.stop_reason) for r in results)
        return UnitResult(losses={k: sum(r.losses.get(k, 0.0) for r in each) for k in each[0].losses},
                          iterations=sum(r.iterations for r in each),
                          stop_reason=",".join(sorted({r.stop_reason for r in each})), outputs=each)

    return work


# ---------------------------------------------------------------- single-pass


def singlepass_units(ctx: PassContext, seg: Segment) -> list[Unit]:
    """Frames in order; each starts from the previous result warped by the flow and is held to
    the previous frames (offsets ``long_term``) by the temporal loss with c_long weights."""
    units = []
    for i in seg.frames():
        earlier = [i - j for j in ctx.settings.flow.long_term if _in_reach(seg, i - j)]
        if _in_reach(seg, i - 1):
            earlier.append(i - 1)
        if i == seg.last and seg.anchor_after is not None:
            earlier.append(seg.anchor_after)
        needs = [unit_name(ctx, 1, k) for k in earlier]
        if ctx.flows is not None:
            needs += [flow_unit_name(i, k) for k in earlier]
        units.append(Unit(name=unit_name(ctx, 1, i), stage="stylize", outputs=(ctx.result_path(1, i),),
                          needs=tuple(dict.fromkeys(needs)), work=_singlepass_work(ctx, seg, i),
                          label=f"frame {i}/{ctx.n_frames}",
                          effort=_effort(ctx, 1, i, _singlepass_iterations(ctx, seg, i)), kind=_kind(ctx, 1, i)))
    return units


def _in_reach(seg: Segment, k: int) -> bool:
    """Frame k is earlier in the segment or is its leading anchor."""
    return k >= 1 and (seg.first <= k or k == seg.anchor_before)


def _singlepass_init(ctx: PassContext, seg: Segment, i: int) -> np.ndarray | str:
    v = ctx.settings.video
    has_previous = _in_reach(seg, i - 1)
    if not has_previous:
        return v.init
    if v.init_rest == "prev_warped" and ctx.flows is not None:
        return ctx.warped_result(1, i - 1, i)
    if v.init_rest in ("prev", "prev_warped"):
        return ctx.result(1, i - 1)
    if v.init_rest == "first":
        return ctx.result(1, seg.anchor_before or seg.first) if i != seg.first else v.init
    return v.init_rest


def _singlepass_targets(ctx: PassContext, seg: Segment, i: int) -> list[TemporalTarget]:
    v = ctx.settings.video
    if v.temporal_weight <= 0 or ctx.flows is None:
        return []
    offsets = sorted(j for j in set(ctx.settings.flow.long_term) if _in_reach(seg, i - j))
    targets = []
    if offsets:
        weights = combine_long_term({j: ctx.flows.reliability(i, i - j) for j in offsets}, v.long_term_combine)
        far = long_term_criterion(ctx.settings)
        targets = [TemporalTarget(ctx.warped_result(1, i - j, i), weights[j], far if j > 1 else None)
                   for j in offsets]
    if i == seg.last and seg.anchor_after is not None:
        # The last frame of a segment is also held to the anchor that follows it, so the join
        # into the next segment is as smooth as the frames before it.
        k = seg.anchor_after
        targets.append(TemporalTarget(ctx.warped_result(1, k, i), ctx.flows.reliability(i, k)))
    return targets


def _singlepass_work(ctx: PassContext, seg: Segment, i: int) -> Callable[[], UnitResult]:
    def work() -> UnitResult:
        return _stylize(ctx, i, _singlepass_iterations(ctx, seg, i), _singlepass_init(ctx, seg, i),
                        _singlepass_targets(ctx, seg, i), 1)

    return work


def _singlepass_iterations(ctx: PassContext, seg: Segment, i: int) -> int:
    v = ctx.settings.video
    return v.iterations_rest if _in_reach(seg, i - 1) else v.iterations_first
