"""Frames stylized together (``video.batch_frames``): each frame's own optimiser over one batched
call, the grouped units of a parallel pass (names, needs, costs, journal, resume, farm workers),
and the setting's bounds."""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import videostyle.pipeline as pipeline
from videostyle.cli import main
from videostyle.config import MAX_BATCH_FRAMES, StyleSettings, resolve_settings
from videostyle.errors import UserError
from videostyle.farm import work
from videostyle.frame.memory import estimate_bytes, frames_that_fit
from videostyle.frame.optimize import optimize, optimize_frames
from videostyle.frame.stylize import FrameTask, StylizeResult, Stylizer, TemporalTarget
from videostyle.journal import read_journal
from videostyle.looks import FrameLook
from videostyle.passes import batch_kind, kind_scale, split_batch_kind
from videostyle.pipeline import RunRequest, prepare, run
from videostyle.units import UnitProgress, cost_kind, is_done

# ---------------------------------------------------------------- the optimiser


def _quadratics(n: int):
    """n frames' objectives of different curvature, so their runs settle after different iterations."""
    gen = torch.Generator().manual_seed(0)
    targets = [torch.randn(1, 3, 4, 5, generator=gen) for _ in range(n)]
    scales = [1.0, 30.0, 0.01, 3.0][:n]

    def one(k: int):
        return lambda x: {"fit": scales[k] * ((x - targets[k]) ** 2).sum(), "reg": 0.1 * (x ** 4).sum()}

    starts = [torch.randn(1, 3, 4, 5, generator=gen) for _ in range(n)]
    return one, starts


def test_each_frame_of_a_batch_takes_the_path_it_takes_alone() -> None:
    one, starts = _quadratics(3)
    kw = dict(iterations=40, tol_loss_relative=1e-3, tol_loss_relative_interval=5)
    xs = [s.clone().requires_grad_(True) for s in starts]
    together = optimize_frames(xs, lambda px, which: [one(k)(px[j:j + 1]) for j, k in enumerate(which)], **kw)
    stops = []
    for k, start in enumerate(starts):
        x = start.clone().requires_grad_(True)
        alone = optimize(x, one(k), **kw)
        assert together[k].history == alone.history  # every evaluation, exactly
        assert (together[k].iterations, together[k].stop_reason) == (alone.iterations, alone.stop_reason)
        assert torch.equal(xs[k], x) and together[k].losses == alone.losses
        stops.append(alone.iterations)
    assert len(set(stops)) == 3  # each frame left the batch when its own loss settled


def test_a_frame_whose_loss_overflows_leaves_the_batch_and_the_others_go_on() -> None:
    one, starts = _quadratics(2)
    calls = Counter()

    def objective(px, which):
        terms = []
        for j, k in enumerate(which):
            calls[k] += 1
            t = one(k)(px[j:j + 1])
            terms.append({name: v * float("inf") for name, v in t.items()} if k == 0 and calls[0] == 3 else t)
        return terms

    xs = [s.clone().requires_grad_(True) for s in starts]
    outcomes = optimize_frames(xs, objective, iterations=10)
    assert (outcomes[0].iterations, outcomes[0].stop_reason) == (3, "non-finite")
    assert np.isfinite(outcomes[0].losses["total"]) and outcomes[0].losses["total"] == min(outcomes[0].history[:2])
    x = starts[1].clone().requires_grad_(True)
    alone = optimize(x, one(1), iterations=10)
    assert outcomes[1].history == alone.history and torch.equal(xs[1], x)
    assert calls == {0: 3, 1: 10}


# ---------------------------------------------------------------- the stylizer


@pytest.fixture(scope="module")
def two_styles() -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [rng.integers(0, 255, (48, 48, 3)).astype(np.float32) for _ in range(2)]


def _tasks(shape=(32, 40)) -> list[FrameTask]:
    """Three frames with their own content, start, temporal targets and look."""
    rng = np.random.default_rng(2)
    h, w = shape
    image = lambda: rng.integers(0, 255, (h, w, 3)).astype(np.float32)  # noqa: E731
    mask = np.zeros((h, w), np.float32)
    mask[:, : w // 2] = 1.0
    return [FrameTask(image(), seed=1, look=FrameLook((1.0, 0.0), None)),
            FrameTask(image(), init=image(), temporal=(TemporalTarget(image(), rng.random((h, w)).astype(np.float32)),),
                      temporal_weight=50.0, seed=2, look=FrameLook(None, (mask, 1.0 - mask))),
            FrameTask(image(), init="content", temporal=(TemporalTarget(image(), np.ones((h, w), np.float32)),) * 2,
                      temporal_weight=5.0, seed=3)]


def _alone(stylizer: Stylizer, tasks: list[FrameTask], **kwargs) -> list[StylizeResult]:
    return [stylizer.stylize(t.content, init=t.init, temporal=t.temporal, temporal_weight=t.temporal_weight,
                             seed=t.seed, look=t.look, **kwargs) for t in tasks]


# Measured on the CPU (bfloat16 network): the batched frames' images equal the unbatched ones
# exactly and their losses differ by under 1e-7 (the float32 report summed in another order):
# 32x40, 8 iterations, and the tiny job below, every frame of 2 passes (losses equal there); at
# 128 px, 20 iterations, under 0.005% (benchmarks/batch_bench.py). Another device's batched
# convolutions may round otherwise, which L-BFGS carries on: the tolerance is for those.
LOSS_TOLERANCE = 1e-3


def test_a_batched_call_gives_each_frame_its_own_result(two_styles, vgg_weights, one_torch_thread,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    stylizer = Stylizer(two_styles, StyleSettings(), (32, 40), device="cpu", vgg_weights=vgg_weights)
    tasks = _tasks()
    alone = _alone(stylizer, tasks, iterations=8)
    assert not [r for r in caplog.records if "batch_frames" in r.getMessage()]
    with caplog.at_level(logging.WARNING):
        batched = stylizer.stylize_batch(tasks, iterations=8)
        stylizer.stylize_batch(tasks[:2], iterations=1)
    for a, b in zip(alone, batched):
        assert b.iterations == a.iterations == 8
        assert b.losses.keys() == a.losses.keys()
        for kind in a.losses:
            assert b.losses[kind] == pytest.approx(a.losses[kind], rel=LOSS_TOLERANCE, abs=1e-9)
        assert np.abs(b.image - a.image).mean() < 0.5  # 0..255 pixels
    assert alone[1].losses["temporal"] > 0 and alone[0].losses["temporal"] == 0  # the frames differ
    notes = [r for r in caplog.records if "batch_frames" in r.getMessage()]
    assert len(notes) == 1 and "on the CPU, where it gains nothing" in notes[0].getMessage()


def test_a_batch_at_a_reduced_size_and_split_where_memory_is_short(two_styles, vgg_weights, one_torch_thread,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import videostyle.frame.stylize as stylize_module

    stylizer = Stylizer(two_styles, StyleSettings(), (48, 64), device="cpu", vgg_weights=vgg_weights)
    tasks = _tasks((48, 64))
    alone = _alone(stylizer, tasks, iterations=3, scale=0.5)
    monkeypatch.setattr(stylize_module, "frames_that_fit", lambda *args, **kwargs: 2)  # 3 frames: calls of 2 and 1
    batched = stylizer.stylize_batch(tasks, iterations=3, scale=0.5)
    assert [r.image.shape for r in batched] == [(48, 64, 3)] * 3  # enlarged back to the content's size
    for a, b in zip(alone, batched):
        assert b.losses["total"] == pytest.approx(a.losses["total"], rel=LOSS_TOLERANCE)
    assert stylizer._batch_by_shape == {(24, 32, 3): 2}
    with pytest.raises(UserError, match="must all be of one size"):
        stylizer.stylize_batch([tasks[0], FrameTask(np.zeros((40, 64, 3), np.float32))], iterations=1)


def test_memory_for_frames_together() -> None:
    s = StyleSettings()
    one, four = estimate_bytes(512, 512, s), estimate_bytes(512, 512, s, frames=4)
    assert one < four < 4 * one  # the constant is paid once
    assert frames_that_fit(512, 512, s, "cpu", wanted=4, available=four) == 4
    assert frames_that_fit(512, 512, s, "cpu", wanted=4, available=four - 1) == 3
    assert frames_that_fit(512, 512, s, "cpu", wanted=4, available=0) == 1  # one frame is check_frame_fits' affair


# ---------------------------------------------------------------- units


@dataclass
class BatchRecorder:
    """A stand-in stylizer: the content shifted by a constant; records each call's frames."""

    calls: list[list[tuple]] = field(default_factory=list)

    def stylize(self, content, *, iterations, init="random", temporal=(), temporal_weight=0.0, seed=0,
                callback=None, scale=1.0, look=None, memory=None, keep_pairs=0):
        return self.stylize_batch([FrameTask(content, init, tuple(temporal), temporal_weight, seed, look, memory,
                                             keep_pairs)],
                                  iterations=iterations, scale=scale)[0]

    def stylize_batch(self, frames, *, iterations, scale=1.0, callback=None):
        self.calls.append([(round(float(f.content.mean()), 3), f.init if isinstance(f.init, str) else "array",
                            len(f.temporal), iterations, scale) for f in frames])
        return [StylizeResult(np.clip(f.content.astype(np.float32) * 0.5 + 60, 0, 255), {"total": 1.0, "style": 0.5},
                              iterations, 0.0) for f in frames]


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> BatchRecorder:
    rec = BatchRecorder()
    monkeypatch.setattr(pipeline, "Stylizer", lambda *args, **kwargs: rec)
    return rec


def _request(clip: Path, style: Path, job: Path, batch_frames: int, **video) -> RunRequest:
    video = {"passes": 3, "iterations": 2, "temporal_from": 1, "first_pass": "propagate", "coarse_passes": 2,
             "schedule": "parallel", "scene_cuts": "off", "batch_frames": batch_frames, **video}
    settings = resolve_settings(None, None, {"flow": {"method": "dis"}, "video": video})
    return RunRequest(input=clip, styles=(style,), settings=settings, job_dir=job, make_video=False)


def _stylize_units(plan):
    return [u for u in plan.units if u.stage == "stylize"]


def test_a_parallel_pass_groups_its_independent_frames(recorder: BatchRecorder, tiny_clip: Path, tiny_style: Path,
                                                       tmp_path: Path) -> None:
    single = prepare(_request(tiny_clip, tiny_style, tmp_path / "one", 1))
    plan = prepare(_request(tiny_clip, tiny_style, tmp_path / "two", 2))
    names = [u.name for u in _stylize_units(plan)]
    # pass 1 from frame 3 out (3 starts the chain with every pass's iterations, alone); pass 2
    # frames 1, 3, 5 then 2, 4; pass 3 frames 2, 4 then 1, 3, 5
    assert names == ["pass_01/frame_00003", "pass_01/frame_00002+00004", "pass_01/frame_00001+00005",
                     "pass_02/frame_00001+00003", "pass_02/frame_00005", "pass_02/frame_00002+00004",
                     "pass_03/frame_00002+00004", "pass_03/frame_00001+00003", "pass_03/frame_00005"]
    # every frame of every pass is the output of exactly one unit, as without batching
    def places(p, unit) -> set[Path]:
        return {o.relative_to(p.job.root) for o in unit.outputs}

    outputs = [o.relative_to(plan.job.root) for u in _stylize_units(plan) for o in u.outputs]
    assert sorted(outputs) == sorted(o.relative_to(single.job.root) for u in _stylize_units(single) for o in u.outputs)
    # a group needs what its frames need outside it, in terms of the plan's units
    group_of = {s.name: u.name for u in plan.units for s in single.units if places(single, s) <= places(plan, u)}
    for unit in plan.units:
        members = [s for s in single.units if group_of[s.name] == unit.name]
        expected = {group_of.get(n, n) for m in members for n in m.needs} - {unit.name}
        assert set(unit.needs) == expected, unit.name
        assert unit.effort == pytest.approx(sum(m.effort for m in members))
    by_name = {u.name: u for u in plan.units}
    assert set(by_name["pass_02/frame_00002+00004"].needs) == {
        "pass_01/frame_00002+00004", "pass_02/frame_00001+00003", "pass_02/frame_00005",
        "flow/1-2", "flow/2-3", "flow/3-4", "flow/4-5"}
    assert cost_kind(by_name["pass_02/frame_00002+00004"]) == "stylize 0.5x, 2 frames a call"
    assert cost_kind(by_name["pass_02/frame_00005"]) == "stylize 0.5x"

    run(single.request)
    alone, recorder.calls = recorder.calls, []
    events: list[UnitProgress] = []
    run(plan.request, on_event=lambda e: events.append(e) if isinstance(e, UnitProgress) else None)
    assert [len(call) for call in recorder.calls] == [1, 2, 2, 2, 1, 2, 2, 2, 1]
    # each frame got what it gets alone: content, start, targets, iterations, size
    assert sorted(f for call in recorder.calls for f in call) == sorted(f for call in alone for f in call)
    journal = Counter(entry["unit"] for entry in read_journal(plan.job.root))
    assert set(journal) == {u.name for u in plan.units} and max(journal.values()) == 1
    assert all(is_done(u, plan.check) for u in plan.units)
    assert len(list((plan.job.root / "final").glob("frame_*.png"))) == 5
    group = next(e.result for e in events if e.unit.name == "pass_02/frame_00002+00004")
    assert [r.iterations for r in group.outputs] == [2, 2] and group.losses["total"] == 2.0

    from videostyle.status import job_status
    lines = job_status(plan.job.root)
    assert "pass 2: 5/5 frames, 10 iterations (2.0 per frame), 0 stopped converged, 5 at the budget" in lines
    assert "pass 1: 5/5 frames, 14 iterations (2.8 per frame), 0 stopped converged, 5 at the budget" in lines


def test_plan_json_lists_the_grouped_units_with_their_needs_and_costs(recorder: BatchRecorder, tiny_clip: Path,
                                                                      tiny_style: Path, tmp_path: Path) -> None:
    from videostyle.journal import record_done

    plan = prepare(_request(tiny_clip, tiny_style, tmp_path / "job", 2))
    for unit in plan.units:  # every kind recorded: 1 s per effort
        kind = cost_kind(unit)
        if unit is next(u for u in plan.units if cost_kind(u) == kind):
            record_done(plan.job.root, unit.name, unit.effort)
    out = CliRunner().invoke(main, ["plan", str(plan.job.root), "--workers", "2", "--json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    listed = {u["name"]: u for u in report["units"]}
    assert listed.keys() == {u.name for u in plan.units}
    assert "pass_03/frame_00001+00003" in listed
    assert set(listed["pass_03/frame_00001+00003"]["needs"]) == {
        "pass_02/frame_00001+00003", "pass_03/frame_00002+00004", "flow/1-2", "flow/2-3", "flow/3-4"}
    assert report["rates"]["stylize 1x, 2 frames a call"]["seconds_per_effort"] == pytest.approx(1.0)
    cost = {name: u["cost"] for name, u in listed.items()}
    assert cost["pass_03/frame_00001+00003"] == pytest.approx(2 * 2)  # two frames of 2 full-size iterations
    finish: dict[str, float] = {}

    def end(name: str) -> float:
        if name not in finish:
            finish[name] = cost[name] + max((end(n) for n in listed[name]["needs"]), default=0.0)
        return finish[name]

    assert max(end(n) for n in cost) == pytest.approx(report["critical_path_seconds"])


def test_a_group_killed_between_its_outputs_is_redone_and_farm_workers_share_the_job(
        recorder: BatchRecorder, tiny_clip: Path, tiny_style: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import videostyle.passes as passes

    plan = prepare(_request(tiny_clip, tiny_style, tmp_path / "job", 2))
    group = next(u for u in plan.units if "+" in u.name)
    save = passes.save_image
    written: list[Path] = []

    def dies_after_one(path, image):
        if Path(path) == group.outputs[1]:
            raise KeyboardInterrupt  # the process dies with the group's first result written
        save(path, image)
        written.append(Path(path))

    monkeypatch.setattr(passes, "save_image", dies_after_one)
    with pytest.raises(KeyboardInterrupt):
        run(plan.request)
    assert group.outputs[0] in written and group.outputs[0].is_file()
    assert not is_done(group, plan.check)  # a result nobody recorded is not trusted
    monkeypatch.setattr(passes, "save_image", save)
    first = work(plan.job.root)  # one unit, as a farm worker
    assert first.units_done == 1
    rest = work(plan.job.root, until_done=True)
    assert rest.all_done and rest.finished
    journal = Counter(entry["unit"] for entry in read_journal(plan.job.root))
    assert set(journal) == {u.name for u in plan.units} and max(journal.values()) == 1
    assert len(list((plan.job.root / "final").glob("frame_*.png"))) == 5


def test_batch_frames_is_bounded_and_noted_where_it_does_nothing(tiny_clip: Path, tiny_style: Path,
                                                                  tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    assert resolve_settings(overrides={"video": {"batch_frames": MAX_BATCH_FRAMES}}).video.batch_frames == 16
    for bad, message in ((0, "at least 1 and at most 16"), (17, "at most 16"), (2.5, "a whole number")):
        with pytest.raises(UserError, match=message):
            resolve_settings(overrides={"video": {"batch_frames": bad}})
    out = CliRunner().invoke(main, ["run", str(tiny_clip), "--style", str(tiny_style), "--batch-frames", "17"])
    assert out.exit_code == 2 and "--batch-frames must be at most 16 (got 17)" in out.output
    assert resolve_settings("farm").video.batch_frames == 1 and resolve_settings().video.batch_frames == 1
    with caplog.at_level(logging.WARNING):
        plan = prepare(_request(tiny_clip, tiny_style, tmp_path / "job", 2, schedule="sequential"))
    assert not [u for u in plan.units if "+" in u.name]
    assert any("batch_frames 2 applies to --schedule parallel only" in r.getMessage() for r in caplog.records)


def test_batched_cost_kinds_read_back() -> None:
    assert batch_kind("stylize 0.5x", 4) == "stylize 0.5x, 4 frames a call"
    assert split_batch_kind("stylize 0.5x, 4 frames a call") == ("stylize 0.5x", 4)
    assert split_batch_kind("stylize 1x") == ("stylize 1x", 1)
    assert kind_scale("stylize 0.25x, 2 frames a call") == 0.25 and kind_scale("flow") is None


# ---------------------------------------------------------------- a real job


@pytest.mark.slow
def test_a_batched_job_ends_close_to_the_unbatched_one(tiny_clip: Path, tiny_style: Path, tmp_path: Path) -> None:
    from videostyle.images import load_image

    losses: dict[int, dict[Path, float]] = {}
    for n in (1, 2):
        request = _request(tiny_clip, tiny_style, tmp_path / f"job{n}", n, passes=2, iterations=3, coarse_passes=0)
        mine = losses.setdefault(n, {})

        def keep(event, mine=mine):
            if isinstance(event, UnitProgress) and event.unit.stage == "stylize" and event.result:
                each = event.result.outputs or (event.result,)
                mine.update({path.name + path.parent.name: r.losses["total"]
                             for path, r in zip(event.unit.outputs, each)})

        run(request, on_event=keep)
    assert losses[1].keys() == losses[2].keys() and len(losses[1]) == 10
    for key, alone in losses[1].items():
        assert losses[2][key] == pytest.approx(alone, rel=LOSS_TOLERANCE), key
    for k in range(1, 6):
        a, b = (load_image(tmp_path / f"job{n}" / "final" / f"frame_{k:05d}.png").astype(np.float32) for n in (1, 2))
        assert np.abs(a - b).mean() < 1.0


def test_a_batched_kind_is_measured_as_one_call_of_its_frames(tiny_clip: Path, tiny_style: Path, tmp_path: Path,
                                                              one_torch_thread) -> None:
    from videostyle.workload import measure_unit

    plan = prepare(_request(tiny_clip, tiny_style, tmp_path / "job", 2))
    group = next(u for u in plan.units if cost_kind(u) == "stylize 1x, 2 frames a call")
    seconds = measure_unit(plan, group)
    assert 0 < seconds < 5  # per full-size iteration of one frame, 64x48 here
    assert plan.ctx.stylizer()._batch_by_shape == {(48, 64, 2): 2}  # timed as one call of two frames
