"""How parallel a job is: list scheduling as farm workers claim units, the critical path, costs
from the journal, and ``videostyle plan --workers/--json``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from videostyle.cli import main
from videostyle.config import resolve_settings
from videostyle.journal import record_done
from videostyle.pipeline import RunRequest, prepare
from videostyle.units import cost_kind
from videostyle.workload import (Rate, Task, earliest_starts, forecast, list_schedule, peak_concurrency,
                                 plan_tasks, recorded_rates)

# c needs a and b; d is free. Costs 3, 2, 1, 2.
DIAMOND = [Task("a", (), 3.0), Task("b", (), 2.0), Task("c", ("a", "b"), 1.0), Task("d", (), 2.0)]


def test_list_schedule_takes_the_first_ready_task_in_order() -> None:
    assert list_schedule(DIAMOND, 1) == 8.0
    # b ends at 2 and d takes its worker (c still waits for a); a ends at 3, c runs 3..4
    assert list_schedule(DIAMOND, 2) == 4.0
    assert list_schedule(DIAMOND, 3) == 4.0
    # preferring d first delays b, and so c: the order is what the workers follow
    reordered = [DIAMOND[3], DIAMOND[0], DIAMOND[1], DIAMOND[2]]
    assert list_schedule(reordered, 2) == 5.0


def test_critical_path_and_useful_workers() -> None:
    result = forecast(DIAMOND, (1, 2))
    assert (result.total, result.remaining, result.critical_path) == (8.0, 8.0, 4.0)
    assert result.max_workers == 3  # a, b and d at once; c alone after
    assert result.wall == {1: 8.0, 2: 4.0}
    assert result.max_speedup == 2.0
    assert earliest_starts(DIAMOND) == {"a": 0.0, "b": 0.0, "c": 3.0, "d": 0.0}
    assert peak_concurrency([(0, 1), (1, 2), (0.5, 1.5), (3, 3)]) == 2  # touching ends do not overlap


def test_done_tasks_cost_nothing_and_free_their_users() -> None:
    tasks = [Task("a", (), 3.0, done=True), *DIAMOND[1:]]
    result = forecast(tasks, (1, 2))
    assert (result.total, result.remaining) == (8.0, 5.0)
    assert result.critical_path == 3.0  # b then c
    assert result.wall == {1: 5.0, 2: 3.0}


# Presets read from this checkout's configs/: the installed ones may be another checkout's.
CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _plan(clip: Path, style: Path, job: Path, **video):
    settings = resolve_settings(config_file=CONFIGS / "default.toml",
                                overrides={"flow": {"method": "dis"}, "video": {"scene_cuts": "off", **video}})
    return prepare(RunRequest(input=clip, styles=(style,), settings=settings, job_dir=job, make_video=False))


def _iteration_rates(plan) -> dict[str, Rate]:
    return {cost_kind(u): Rate(0.0 if u.stage == "flow" else 1.0, "assumed") for u in plan.units}


def test_the_parallel_schedule_shortens_the_critical_path(tiny_clip: Path, tiny_style: Path, tmp_path: Path) -> None:
    # 5 frames, default (5 passes x 40, the first two at half size), weighted in full-size iterations
    seq = _plan(tiny_clip, tiny_style, tmp_path / "seq")
    par = _plan(tiny_clip, tiny_style, tmp_path / "par", schedule="parallel")
    s = forecast(plan_tasks(seq, _iteration_rates(seq)), (1, 64))
    p = forecast(plan_tasks(par, _iteration_rates(par)), (1, 64))
    # sequential: every unit waits for the one before; frame 1 of pass 1 gets all 200 iterations
    assert s.total == s.critical_path == 200 * 0.25 + 4 * 40 * 0.25 + 5 * 40 * 0.25 + 3 * 5 * 40
    # parallel: pass 1 at a quarter size from frame 3 out (200, then 2 more frames), then two
    # steps per pass
    assert p.critical_path == pytest.approx((200 + 2 * 40) / 16 + 2 * 40 / 4 + 3 * 2 * 40)
    assert p.total == pytest.approx((200 + 4 * 40) / 16 + 5 * 40 / 4 + 3 * 5 * 40)
    assert p.wall[64] == pytest.approx(p.critical_path)


def test_plan_json_lists_every_unit_with_its_cost(tiny_clip: Path, tiny_style: Path, tmp_path: Path) -> None:
    plan = _plan(tiny_clip, tiny_style, tmp_path / "job", schedule="parallel")
    # a finished unit of each kind in the journal: its seconds per effort is the rate
    for kind, seconds in (("flow", 0.5), ("stylize 1x", 8.0), ("stylize 0.5x", 1.0), ("stylize 0.25x", 1.25)):
        unit = next(u for u in plan.units if cost_kind(u) == kind)
        record_done(plan.job.root, unit.name, seconds * unit.effort / (1 if kind == "flow" else 40))
    rates = recorded_rates(plan)
    assert {k: r.source for k, r in rates.items()} == dict.fromkeys(rates, "recorded")
    assert rates["stylize 1x"].seconds_per_effort == pytest.approx(0.2)

    out = CliRunner().invoke(main, ["plan", str(plan.job.root), "--workers", "2", "--json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    units = report["units"]
    assert {u["name"] for u in units} == {u.name for u in plan.units}
    assert sum(u["cost"] for u in units) == pytest.approx(report["total_seconds"])
    # the critical path again, from the listing alone
    cost = {u["name"]: u["cost"] for u in units}
    needs = {u["name"]: u["needs"] for u in units}
    finish: dict[str, float] = {}

    def end(name: str) -> float:
        if name not in finish:
            finish[name] = cost[name] + max((end(n) for n in needs[name]), default=0.0)
        return finish[name]

    assert max(end(n) for n in cost) == pytest.approx(report["critical_path_seconds"])
    assert report["wall_seconds"]["1"] == pytest.approx(report["total_seconds"])
    assert report["critical_path_seconds"] <= report["wall_seconds"]["2"] < report["total_seconds"]
    text = CliRunner().invoke(main, ["plan", str(plan.job.root), "--workers", "2"])
    assert text.exit_code == 0, text.output
    assert "expected wall time with 2 workers" in text.output and "from 1 finished unit(s)" in text.output


def test_kinds_not_in_the_journal_are_measured_once(tiny_clip: Path, tiny_style: Path, tmp_path: Path) -> None:
    from videostyle.workload import measure_unit, unit_rates

    plan = _plan(tiny_clip, tiny_style, tmp_path / "job", schedule="parallel")
    flow_unit = next(u for u in plan.units if u.stage == "flow")
    record_done(plan.job.root, flow_unit.name, 0.25)
    asked: list[str] = []

    def measure(job_plan, unit) -> float:
        asked.append(cost_kind(unit))
        return 2.0

    rates = unit_rates(plan, measure)
    # the long-term pairs, by an estimator of their own (the preset's dis_dense), are timed apart
    assert sorted(asked) == ["flow long-term", "stylize 0.25x", "stylize 0.5x", "stylize 1x"]
    assert rates["flow"] == Rate(0.25, "recorded", 1)
    assert rates["stylize 1x"] == Rate(2.0, "measured")
    seconds = measure_unit(plan, flow_unit)  # DIS on two 64x48 frames, here
    assert 0 < seconds < 5
    long_term = next(u for u in plan.units if cost_kind(u) == "flow long-term")
    assert 0 < measure_unit(plan, long_term) < 5


@pytest.mark.parametrize("preset, schedule, at_least", [("default", "sequential", 1.0), ("default", "parallel", 50.0),
                                                        ("farm", "parallel", 50.0)])
def test_a_240_frame_shot_on_64_workers(tmp_path: Path, preset: str, schedule: str, at_least: float) -> None:
    # The figure: a 10 s shot at 24 fps, units weighted in full-size iterations (flows
    # are left out: they need nothing and take a moment each).
    from videostyle.flowstage import FlowStore
    from videostyle.jobdir import JobDir
    from videostyle.passes import PassContext, stylize_units
    from videostyle.shots import plan_segments
    from videostyle.units import by_critical_path

    settings = resolve_settings(config_file=CONFIGS / f"{preset}.toml", overrides={"video": {"schedule": schedule}})
    segments, anchors = plan_segments(240, [], 0)
    ctx = PassContext(job=JobDir(tmp_path), style_key="k", flows=FlowStore(tmp_path / "flow"), n_frames=240,
                      settings=settings, stylizer=lambda: None, segments=tuple(segments), anchors=tuple(anchors))
    units = by_critical_path(stylize_units(ctx))
    result = forecast([Task(u.name, u.needs, u.effort) for u in units], (1, 64))
    assert result.max_speedup >= at_least
    if schedule == "parallel":
        assert result.wall[64] <= result.wall[1] / 40
    else:
        assert result.critical_path == result.total == pytest.approx(33_640)


def test_busy_machine_note_only_when_the_cores_are_taken() -> None:
    from videostyle.workload import busy_note

    assert busy_note(0.3, 2) is None and busy_note(1.4, 2) is None
    note = busy_note(1.9, 2)
    assert note is not None and "load 1.9 on 2 cores" in note
    assert busy_note(7.6, 8) is not None and busy_note(0.6, 1) is not None


def test_plan_warns_when_it_measures_costs_on_a_busy_machine(tiny_clip: Path, tiny_style: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from videostyle.cli import farm_cmds

    plan = _plan(tiny_clip, tiny_style, tmp_path / "job", schedule="parallel")
    monkeypatch.setattr(farm_cmds.os, "getloadavg", lambda: (3.9, 3.0, 2.0))
    monkeypatch.setattr(farm_cmds.os, "cpu_count", lambda: 4)
    for source, warned in (("measured", True), ("recorded", False)):
        monkeypatch.setattr(farm_cmds, "unit_rates", lambda p, s=source: {cost_kind(u): Rate(1.0, s, 1)
                                                                            for u in p.units})
        out = CliRunner().invoke(main, ["plan", str(plan.job.root)])
        assert out.exit_code == 0, out.output
        assert ("this machine is busy (load 3.9 on 4 cores)" in out.stderr) is warned, out.stderr
        assert "this machine is busy" not in out.stdout
