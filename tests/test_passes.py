"""The temporal algorithms' wiring, with a stand-in stylizer that records what each frame got:
which frames are warped into which, blends, anchors, and that nothing crosses a scene cut."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import flow
from conftest import RecordingStylizer, make_clip
from videostyle.config import resolve_settings
from videostyle.passes import pass_order
from videostyle.pipeline import RunRequest, prepare, run
from videostyle.shots import Segment, detect_cuts, flow_pairs, plan_segments, previous_anchors


def _request(clip: Path, style: Path, tmp: Path, **video) -> RunRequest:
    settings = resolve_settings(None, None, {"flow": {"method": "dis"}, "video": video})
    return RunRequest(input=clip, styles=(style,), settings=settings, job_dir=tmp / "job", make_video=False)


def test_multipass_order_and_temporal_wiring(recorder: RecordingStylizer, tiny_clip: Path, tiny_style: Path,
                                             tmp_path: Path) -> None:
    plan = prepare(_request(tiny_clip, tiny_style, tmp_path, passes=3, iterations=2, temporal_from=2,
                            scene_cuts="off"))
    names = [u.name for u in plan.units if u.stage == "stylize"]
    assert names[:5] == [f"pass_01/frame_{i:05d}" for i in range(1, 6)]
    assert names[5:10] == [f"pass_02/frame_{i:05d}" for i in range(5, 0, -1)]  # backward pass
    run(plan.request)
    pass1, pass2 = recorder.calls[:5], recorder.calls[5:10]
    assert all(c.init == "random" and c.n_temporal == 0 for c in pass1)
    assert all(c.init == "array" for c in pass2)  # blended from the last pass and neighbours
    # pass 2 runs backward: frame 5 has no neighbour behind it, all others one
    assert [c.n_temporal for c in pass2] == [0, 1, 1, 1, 1]


def test_independent_mode_uses_no_flow(recorder: RecordingStylizer, tiny_clip: Path, tiny_style: Path,
                                       tmp_path: Path) -> None:
    run(_request(tiny_clip, tiny_style, tmp_path, passes=1, temporal_weight=0.0, init="random", iterations=2))
    assert len(recorder.calls) == 5
    assert all(c.init == "random" and c.n_temporal == 0 for c in recorder.calls)
    assert not (tmp_path / "job" / "flow").exists()


def test_cut_is_found_and_nothing_crosses_it(recorder: RecordingStylizer, tmp_path: Path,
                                             tiny_style: Path) -> None:
    from videostyle.video_io import ffmpeg_exe
    import subprocess
    a = make_clip(tmp_path / "a.mp4", audio=False)
    b = tmp_path / "b.mp4"
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi", "-i", "mandelbrot=size=64x48:rate=10",
                    "-t", "0.5", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(b)], check=True)
    joined = tmp_path / "joined.mp4"
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-i", str(a), "-i", str(b), "-filter_complex",
                    "[0:v][1:v]concat=n=2:v=1[v]", "-map", "[v]", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                    str(joined)], check=True)
    plan = prepare(_request(joined, tiny_style, tmp_path, passes=2, iterations=2, temporal_from=1))
    assert plan.cuts == (6,)
    pairs = [u.name for u in plan.units if u.stage == "flow"]
    assert "flow/5-6" not in pairs and len(pairs) == 8
    run(plan.request)
    flows = list((tmp_path / "job" / "flow").rglob("*.flo"))
    assert not [p for p in flows if p.name in ("forward_5_6.flo", "backward_6_5.flo")]
    # pass 1 (forward, temporal from pass 1): frames 1 and 6 each start a shot, so no temporal target
    assert [c.n_temporal for c in recorder.calls[:10]] == [0, 1, 1, 1, 1, 0, 1, 1, 1, 1]


def test_segments_anchor_first_then_both_sides(recorder: RecordingStylizer, tiny_clip: Path, tiny_style: Path,
                                               tmp_path: Path) -> None:
    plan = prepare(_request(tiny_clip, tiny_style, tmp_path, passes=2, iterations=3, segment_length=2,
                            scene_cuts="off"))
    stylize = [u for u in plan.units if u.stage == "stylize"]
    assert stylize[0].name == "anchors/frame_00003"
    by_name = {u.name: u for u in stylize}
    # pass 2 of frame 2 (backward) and of frame 4 (backward, after frame 5) lean on the anchor
    assert "anchors/frame_00003" in by_name["pass_02/frame_00002"].needs
    run(plan.request)
    assert recorder.calls[0].iterations == 6  # the anchor gets a whole run's iterations
    assert len(recorder.calls) == 1 + 2 * 4
    final = sorted((tmp_path / "job" / "final").glob("*.png"))
    assert len(final) == 5


def test_frames_beside_an_anchor_are_held_to_it_in_every_pass(recorder: RecordingStylizer, tiny_clip: Path,
                                                              tiny_style: Path, tmp_path: Path) -> None:
    # 5 frames, anchor 3: segments 1-2 and 4-5. An anchor never changes, so frames 2 and 4 are held
    # to it in forward and backward passes alike (besides their neighbour in the pass direction).
    plan = prepare(_request(tiny_clip, tiny_style, tmp_path, passes=2, iterations=3, segment_length=2,
                            temporal_from=1, scene_cuts="off"))
    by_name = {u.name: u for u in plan.units}
    assert "anchors/frame_00003" in by_name["pass_01/frame_00002"].needs
    assert "anchors/frame_00003" in by_name["pass_02/frame_00004"].needs
    run(plan.request)
    # The last pass runs away from the anchor: anchor; pass 1: 1, 2 then 5, 4; pass 2: 2, 1 then 4, 5
    assert [c.n_temporal for c in recorder.calls] == [0, 0, 2, 0, 2, 1, 1, 1, 1]


def test_anchors_are_chained_along_a_shot(recorder: RecordingStylizer, tiny_style: Path, tmp_path: Path) -> None:
    # 8 frames, segment length 2: anchors 3 and 6, segments 1-2, 4-5, 7-8. Anchor 6 starts from
    # anchor 3 warped and is held to it, so the two textures agree and frames 4-5 need not morph
    # one into the other.
    clip = make_clip(tmp_path / "eight.mp4", seconds=0.8, audio=False)
    plan = prepare(_request(clip, tiny_style, tmp_path, passes=2, iterations=3, segment_length=2,
                            scene_cuts="off"))
    assert plan.ctx.anchors == (3, 6)
    by_name = {u.name: u for u in plan.units}
    assert "flow/3-6" in by_name
    assert by_name["anchors/frame_00003"].needs == ()
    assert set(by_name["anchors/frame_00006"].needs) == {"anchors/frame_00003", "flow/3-6"}
    run(plan.request)
    first, second = recorder.calls[:2]
    assert (first.init, first.n_temporal) == ("random", 0)
    assert (second.init, second.n_temporal) == ("array", 1)


@pytest.mark.parametrize("algorithm", ["multipass", "singlepass"])
def test_every_unit_needs_the_flows_it_reads(recorder: RecordingStylizer, tiny_clip: Path, tiny_style: Path,
                                             tmp_path: Path, algorithm: str) -> None:
    # Ray and farm workers start a unit as soon as its needs are done: a frame that warps a
    # neighbour in must wait for that pair's flow, not only for the neighbour.
    plan = prepare(_request(tiny_clip, tiny_style, tmp_path, algorithm=algorithm, passes=3, iterations=2,
                            temporal_from=2, segment_length=2, scene_cuts="off"))
    position = {u.name: k for k, u in enumerate(plan.units)}
    for unit in plan.units:
        assert all(position[n] < position[unit.name] for n in unit.needs), unit.name
    by_name = {u.name: u for u in plan.units}
    if algorithm == "multipass":
        assert {"pass_02/frame_00005", "flow/4-5"} <= set(by_name["pass_02/frame_00004"].needs)
        assert {"anchors/frame_00003", "flow/2-3"} <= set(by_name["pass_02/frame_00002"].needs)
    else:
        assert {"pass_01/frame_00001", "flow/1-2"} <= set(by_name["pass_01/frame_00002"].needs)
        assert "flow/3-4" in by_name["pass_01/frame_00004"].needs


def test_last_pass_runs_away_from_anchors() -> None:
    free, after, before, both = Segment(1, 4), Segment(1, 4, None, 5), Segment(6, 9, 5, None), Segment(6, 11, 5, 12)
    assert [pass_order(free, p, 3) for p in (1, 2, 3)] == [[1, 2, 3, 4], [4, 3, 2, 1], [1, 2, 3, 4]]
    # still alternating, shifted so that the last pass leaves the anchor behind
    assert [pass_order(after, p, 3) for p in (1, 2, 3)] == [[4, 3, 2, 1], [1, 2, 3, 4], [4, 3, 2, 1]]
    assert [pass_order(before, p, 4) for p in (3, 4)] == [[9, 8, 7, 6], [6, 7, 8, 9]]
    # between two anchors the last pass runs in from both ends
    assert pass_order(both, 4, 4) == [6, 7, 8, 11, 10, 9]
    assert pass_order(both, 3, 4) == [6, 7, 8, 9, 10, 11]


def test_plan_segments_and_pairs() -> None:
    segments, anchors = plan_segments(25, [8], 10)
    assert anchors == [18]
    assert [(s.first, s.last, s.anchor_before, s.anchor_after) for s in segments] == [
        (1, 7, None, None), (8, 17, None, 18), (19, 25, 18, None)]
    pairs = flow_pairs(segments, [1, 2])
    assert (7, 8) not in pairs and (6, 8) not in pairs and (17, 18) in pairs and (16, 18) in pairs


def test_anchor_chain_stops_at_cuts() -> None:
    segments, anchors = plan_segments(30, [15], 5)
    assert anchors == [6, 12, 20, 26]
    assert previous_anchors(segments) == {12: 6, 26: 20}  # nothing links 20 to 12 across the cut
    pairs = flow_pairs(segments)
    assert (6, 12) in pairs and (20, 26) in pairs and (12, 20) not in pairs


def test_detect_cuts_on_static_and_changed_frames() -> None:
    rng = np.random.default_rng(1)
    a = (rng.random((48, 64, 3)) * 255).astype(np.uint8)
    b = np.full((48, 64, 3), (30, 200, 40), np.uint8)
    frames = {1: a, 2: a, 3: b, 4: b}
    assert detect_cuts(4, frames.__getitem__, 0.5) == [3]


def test_first_pass_propagates_the_frame_before_it(recorder: RecordingStylizer, tiny_clip: Path, tiny_style: Path,
                                                   tmp_path: Path) -> None:
    plan = prepare(_request(tiny_clip, tiny_style, tmp_path, passes=2, iterations=2, temporal_from=2,
                            first_pass="propagate", scene_cuts="off"))
    by_name = {u.name: u for u in plan.units}
    # Pass 1 reads frame 2's start from frame 1's pass-1 result and their flow.
    assert {"pass_01/frame_00001", "flow/1-2"} <= set(by_name["pass_01/frame_00002"].needs)
    assert by_name["pass_01/frame_00001"].needs == ()
    run(plan.request)
    pass1 = recorder.calls[:5]
    assert [c.init for c in pass1] == ["random", "array", "array", "array", "array"]
    assert all(c.n_temporal == 0 for c in pass1)  # the temporal loss still starts at pass 2


def test_propagated_start_is_the_warped_neighbour(recorder: RecordingStylizer, tiny_clip: Path,
                                                 tiny_style: Path, tmp_path: Path) -> None:
    from videostyle.passes import _propagated_init
    from videostyle.temporal import MEAN_PIXEL_RGB

    plan = prepare(_request(tiny_clip, tiny_style, tmp_path, passes=1, iterations=2, first_pass="propagate",
                            scene_cuts="off"))
    run(plan.request)
    ctx, seg = plan.ctx, plan.ctx.segments[0]
    forward = {i: i for i in range(1, 6)}
    start = _propagated_init(ctx, seg, forward, 3)
    np.testing.assert_array_equal(start, ctx.warped_result(1, 2, 3))
    assert not np.allclose(start, ctx.result(1, 2), atol=1.0)  # testsrc moves: the warp did something
    assert _propagated_init(ctx, seg, forward, 1) == "random"  # nothing before the first frame
    # Where the flow leaves the frame (on either axis) the start is the neutral mean pixel, as for the
    # authors' warps: with a flow of (+2.5, -1.5) px, the last 3 columns and the first 2 rows.
    h, w = start.shape[:2]
    shifted = np.zeros((h, w, 2), np.float32)
    shifted[..., 0], shifted[..., 1] = 2.5, -1.5
    flow.write_flo(ctx.flows.flow_path(3, 2), shifted)  # same size, so the job still trusts the file
    start = _propagated_init(ctx, seg, forward, 3)
    outside = np.zeros((h, w), bool)
    outside[:, w - 3:] = outside[:2] = True
    np.testing.assert_allclose(start[outside], np.broadcast_to(MEAN_PIXEL_RGB, start[outside].shape))
    np.testing.assert_allclose(start[~outside], flow.warp(ctx.result(1, 2), shifted)[~outside], atol=1e-4)


def test_coarse_passes_run_at_the_coarse_scale(recorder: RecordingStylizer, tiny_clip: Path, tiny_style: Path,
                                               tmp_path: Path) -> None:
    run(_request(tiny_clip, tiny_style, tmp_path, passes=3, iterations=2, coarse_passes=2, coarse_scale=0.5,
                 scene_cuts="off"))
    assert [c.scale for c in recorder.calls] == [0.5] * 10 + [1.0] * 5


@pytest.mark.parametrize("preset", ["preview", "default"])
def test_the_last_pass_is_at_the_working_size_whatever_the_coarse_passes(
        preset: str, recorder: RecordingStylizer, tiny_clip: Path, tiny_style: Path, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    # --passes 1 with a preset of coarse passes: the only pass would have run at half size.
    settings = resolve_settings(preset, None, {"flow": {"method": "dis"},
                                               "video": {"passes": 1, "iterations": 2, "width": 0,
                                                         "scene_cuts": "off"}})
    assert settings.video.coarse_passes >= 1
    with caplog.at_level("WARNING"):
        run(RunRequest(input=tiny_clip, styles=(tiny_style,), settings=settings, job_dir=tmp_path / "job",
                       make_video=False))
    assert [c.scale for c in recorder.calls] == [1.0] * 5
    assert any("the last pass runs at the working size, so 0 run(s) at 0.5 scale" in r.getMessage()
               for r in caplog.records)


def test_coarse_passes_are_clamped_to_all_but_the_last(recorder: RecordingStylizer, tiny_clip: Path,
                                                       tiny_style: Path, tmp_path: Path) -> None:
    run(_request(tiny_clip, tiny_style, tmp_path, passes=2, iterations=2, coarse_passes=5, scene_cuts="off"))
    assert [c.scale for c in recorder.calls] == [0.5] * 5 + [1.0] * 5


def test_journal_and_status_report_iterations_and_stop_reasons(recorder: RecordingStylizer, tiny_clip: Path,
                                                               tiny_style: Path, tmp_path: Path) -> None:
    from videostyle.status import job_status

    run(_request(tiny_clip, tiny_style, tmp_path, passes=2, iterations=3, scene_cuts="off"))
    lines = job_status(tmp_path / "job")
    assert "pass 1: 5/5 frames, 15 iterations (3.0 per frame), 0 stopped converged, 5 at the budget" in lines


def test_parallel_schedule_wiring(recorder: RecordingStylizer, tiny_clip: Path, tiny_style: Path,
                                  tmp_path: Path) -> None:
    # 5 frames: pass 1 propagates from frame 3 outwards at half size; pass 2 (p = 2, half size too)
    # does frames 1, 3, 5 first, held to their neighbours' pass-1 results, then 2 and 4, held to
    # the pass-2 results on both sides; pass 3 the other way round, at full size, so its first
    # frames are not held to the half-size results (enlarged, they are blurred targets).
    plan = prepare(_request(tiny_clip, tiny_style, tmp_path, passes=3, iterations=2, temporal_from=1,
                            first_pass="propagate", coarse_passes=2, schedule="parallel", propagate_scale=0.5,
                            scene_cuts="off"))
    needs = {u.name: set(u.needs) for u in plan.units if u.stage == "stylize"}
    f = "frame_{:05d}".format
    assert needs[f"pass_01/{f(3)}"] == set()
    assert needs[f"pass_01/{f(2)}"] == {f"pass_01/{f(3)}", "flow/2-3"}
    assert needs[f"pass_01/{f(1)}"] == {f"pass_01/{f(2)}", "flow/1-2"}
    assert needs[f"pass_02/{f(1)}"] == {f"pass_01/{f(1)}", f"pass_01/{f(2)}", "flow/1-2"}
    assert needs[f"pass_02/{f(3)}"] == {f"pass_01/{f(k)}" for k in (2, 3, 4)} | {"flow/2-3", "flow/3-4"}
    assert needs[f"pass_02/{f(2)}"] == {f"pass_01/{f(2)}", f"pass_02/{f(1)}", f"pass_02/{f(3)}", "flow/1-2",
                                        "flow/2-3"}
    assert needs[f"pass_03/{f(1)}"] == {f"pass_02/{f(1)}", f"pass_03/{f(2)}", "flow/1-2"}
    assert needs[f"pass_03/{f(2)}"] == {f"pass_02/{f(2)}"}  # a first frame of the full-size pass
    run(plan.request)
    assert [c.scale for c in recorder.calls] == [0.5] * 10 + [1.0] * 5
    # pass 1: frame 3 starts the chain from noise with every pass's iterations; the others from
    # the warped neighbour nearer the middle, held to it
    assert [(c.init, c.n_temporal, c.iterations) for c in recorder.calls[:5]] == [
        ("random", 0, 6), ("array", 1, 2), ("array", 1, 2), ("array", 1, 2), ("array", 1, 2)]
    # every later frame is held to both neighbours (one at the clip's ends), but for the first ones
    # of the full-size pass (2 and 4), held to none
    assert [c.n_temporal for c in recorder.calls[5:]] == [1, 2, 1, 2, 2] + [0, 0, 1, 2, 1]


def test_previous_pass_weight_scales_only_the_targets_the_previous_pass_left(
        recorder: RecordingStylizer, tiny_clip: Path, tiny_style: Path, tmp_path: Path) -> None:
    def targets(weight: float, name: str) -> list:
        recorder.calls.clear()
        run(_request(tiny_clip, tiny_style, tmp_path / name, passes=2, iterations=2, temporal_from=1,
                     first_pass="propagate", schedule="parallel", propagate_scale=1.0, scene_cuts="off",
                     previous_pass_weight=weight))
        return [c.targets for c in recorder.calls[5:]]  # pass 2: frames 1, 3, 5 first, then 2 and 4

    full, half = targets(1.0, "full"), targets(0.5, "half")
    for a, b in zip(full[:3], half[:3]):  # held to neighbours as pass 1 left them
        assert a and len(a) == len(b)
        for x, y in zip(a, b):
            np.testing.assert_allclose(y.weights, 0.5 * x.weights, atol=1e-6)
    for a, b in zip(full[3:], half[3:]):  # held to the results of this pass on both sides
        assert len(a) == len(b) == 2
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x.weights, y.weights)


def test_settle_passes_hold_the_last_passes_at_full_weight(
        recorder: RecordingStylizer, tiny_clip: Path, tiny_style: Path, tmp_path: Path) -> None:
    def weights(weight: float, settle: int, name: str) -> dict[int, list[list[np.ndarray]]]:
        recorder.calls.clear()
        run(_request(tiny_clip, tiny_style, tmp_path / name, passes=3, iterations=2, temporal_from=1,
                     first_pass="propagate", schedule="parallel", propagate_scale=1.0, scene_cuts="off",
                     previous_pass_weight=weight, settle_passes=settle))
        calls = recorder.calls[5:]  # after pass 1's chain: pass 2's five frames, then pass 3's
        return {p: [[t.weights for t in c.targets] for c in calls[5 * (p - 2):5 * (p - 1)]] for p in (2, 3)}

    full, settled, loose = weights(1.0, 0, "full"), weights(0.5, 1, "settled"), weights(0.5, 0, "loose")
    for a, b in zip(full[2][:3], settled[2][:3]):  # pass 2 is not a settle pass: held at half weight
        assert a and len(a) == len(b)
        for x, y in zip(a, b):
            np.testing.assert_allclose(y, 0.5 * x, atol=1e-6)
    assert any(len(c) for c in full[3])
    for a, b, c in zip(full[3], settled[3], loose[3]):  # the last pass: at full weight again
        assert len(a) == len(b) == len(c)
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(x, z) for a, c in zip(full[3], loose[3]) for x, z in zip(a, c))


def test_parallel_ranks_steps() -> None:
    from videostyle.passes import parallel_ranks

    seg = Segment(1, 12)
    assert [parallel_ranks(seg, 1, True)[i] for i in seg.frames()] == [5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6]
    two = [[parallel_ranks(seg, p, False)[i] for i in seg.frames()] for p in (2, 3)]
    assert two == [[0, 1] * 6, [1, 0] * 6]  # red-black, the parity alternating
    for spacing in (2, 3, 4, 5):
        for p in range(2, 6):
            for last in (8, 11, 12):
                ranks = parallel_ranks(Segment(1, last), p, False, spacing=spacing)
                assert max(ranks.values()) <= (spacing + 1) // 2  # the segment's ends included
                # no two neighbours in one step: one of every pair is fitted to the other's result
                assert all(ranks[i] != ranks[i + 1] for i in range(1, last)), (spacing, p, last, ranks)
    firsts = {p: {i for i, r in parallel_ranks(seg, p, False, spacing=4).items() if r == 0} for p in (2, 3)}
    assert firsts[2] & firsts[3] == set() and {3, 7, 11} <= firsts[2] | firsts[3]
    # a segment after an anchor propagates from it; between two anchors, in from both
    assert [parallel_ranks(Segment(6, 9, 5, None), 1, True)[i] for i in range(6, 10)] == [0, 1, 2, 3]
    assert [parallel_ranks(Segment(6, 10, 5, 11), 1, True)[i] for i in range(6, 11)] == [0, 1, 2, 1, 0]


@pytest.mark.parametrize("schedule", ["sequential", "parallel"])
def test_propagated_frames_take_the_propagate_iterations(schedule: str, recorder: RecordingStylizer,
                                                         tiny_clip: Path, tiny_style: Path, tmp_path: Path) -> None:
    # The frame that starts the chain keeps every pass's iterations; the frames it is handed on
    # to take --propagate-iterations in pass 1 only, and the plan weighs them so.
    plan = prepare(_request(tiny_clip, tiny_style, tmp_path, passes=3, iterations=4, propagate_iterations=1,
                            first_pass="propagate", temporal_from=1, schedule=schedule, propagate_scale=1.0,
                            scene_cuts="off"))
    pass1 = [u for u in plan.units if u.name.startswith("pass_01/")]
    start = "pass_01/frame_00003" if schedule == "parallel" else "pass_01/frame_00001"
    assert {u.name: u.effort for u in pass1} == {u.name: 12.0 if u.name == start else 1.0 for u in pass1}
    run(plan.request)
    assert sorted(c.iterations for c in recorder.calls[:5]) == [1, 1, 1, 1, 12]
    assert [c.iterations for c in recorder.calls[5:]] == [4] * 10
