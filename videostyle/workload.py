"""How parallel a job is: its work, its critical path, and its wall time with W workers.

Each unit's cost in seconds is its planned effort (``Unit.effort``: full-size iterations for a
stylization unit) times a rate per unit kind (``units.cost_kind``: flow, or stylization at one
size). A rate comes from the journal when units of that kind are finished there (their seconds
over their effort), else from a short measurement on this machine. The wall time with W workers
is simulated as farm workers run (``farm.claim_next``): a free worker takes the first unit that is
ready in critical-path order (``JobPlan.units_by_critical_path``), so the figure is what a farm of
W such workers would see, barring the time to claim and to read and write files.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from videostyle.flowstage import LONG_TERM_FLOW_KIND, PairMethods
from videostyle.journal import read_journal
from videostyle.frame.stylize import FrameTask
from videostyle.passes import kind_scale, split_batch_kind
from videostyle.plan import JobPlan
from videostyle.units import Unit, cost_kind, is_done

MEASURE_ITERATIONS = 3  # optimiser iterations timed per stylization kind when nothing is recorded


@dataclass(frozen=True)
class Task:
    """A unit as the simulation sees it: a finished one is there from the start at no cost."""

    name: str
    needs: tuple[str, ...]
    cost: float  # estimated seconds
    done: bool = False


@dataclass(frozen=True)
class Rate:
    seconds_per_effort: float
    source: str  # "measured" | "recorded"
    samples: int = 0  # finished units behind a recorded rate


@dataclass(frozen=True)
class Forecast:
    total: float  # seconds of work of every unit, one worker, nothing done
    remaining: float  # of the units not done
    critical_path: float  # the longest chain of costs among the units not done
    max_workers: int  # more would never all be busy at once
    wall: dict[int, float]  # expected wall time (s) of the remaining units, by number of workers

    @property
    def max_speedup(self) -> float:
        return self.remaining / self.critical_path if self.critical_path else 1.0


# ---------------------------------------------------------------- costs


def recorded_rates(plan: JobPlan) -> dict[str, Rate]:
    """Seconds per effort of each unit kind, from this job's journal (its latest line per unit)."""
    units = {u.name: u for u in plan.units}
    latest: dict[str, float] = {}
    for entry in read_journal(plan.job.root):
        name, seconds = entry.get("unit"), entry.get("seconds")
        if name in units and isinstance(seconds, (int, float)):
            latest[name] = float(seconds)
    totals: dict[str, list[float]] = {}
    for name, seconds in latest.items():
        sums = totals.setdefault(cost_kind(units[name]), [0.0, 0.0, 0])
        sums[0] += seconds
        sums[1] += units[name].effort
        sums[2] += 1
    return {kind: Rate(s / effort, "recorded", int(n)) for kind, (s, effort, n) in totals.items() if effort > 0}


def unit_rates(plan: JobPlan, measure: Callable[[JobPlan, Unit], float] | None = None) -> dict[str, Rate]:
    """A rate for every unit kind of the plan: recorded where the journal has one, else measured
    (``measure``: seconds per effort of one unit of the kind, by default ``measure_unit``)."""
    rates = recorded_rates(plan)
    for unit in plan.units:
        kind = cost_kind(unit)
        if kind not in rates:
            rates[kind] = Rate((measure or measure_unit)(plan, unit), "measured")
    return rates


def measure_unit(plan: JobPlan, unit: Unit) -> float:
    """Seconds per effort of ``unit``'s kind on this machine, writing nothing to the job: a flow
    pair estimated between the first two frames (no other kind costs anything), or a few
    optimiser iterations of the first frame
    at the unit's size: the difference between 1 and 1 + MEASURE_ITERATIONS iterations, after one
    untimed call that builds the network and the style targets for that size. A unit of N frames
    stylized together (``passes.batched_units``) is timed as one call on N copies of it, and its
    seconds shared among them (its effort is theirs summed)."""
    kind = cost_kind(unit)
    scale = kind_scale(kind)
    if scale is None:
        return _flow_seconds(plan, unit) / max(unit.effort, 1e-9) if unit.stage == "flow" else 0.0
    _, frames = split_batch_kind(kind)
    stylizer = plan.ctx.stylizer()
    tasks = [FrameTask(plan.ctx.content(1))] * frames
    stylizer.stylize_batch(tasks, iterations=1, scale=scale)
    timed = []
    for iterations in (1, 1 + MEASURE_ITERATIONS):
        start = time.perf_counter()
        stylizer.stylize_batch(tasks, iterations=iterations, scale=scale)
        timed.append(time.perf_counter() - start)
    per_iteration = max(timed[1] - timed[0], 0.0) / MEASURE_ITERATIONS
    return per_iteration / (scale * scale * frames)


def _flow_seconds(plan: JobPlan, unit: Unit) -> float:
    """One flow unit of ``unit``'s kind: both flows and the consistency check of frames 1 and 2, by
    the estimator of that kind (nothing to estimate when the job imports the user's flow files)."""
    import flow
    from videostyle.images import load_image

    if plan.request.flow_files is not None or plan.n_frames < 2:
        return 0.0
    a, b = (load_image(plan.job.frame_path(i)) for i in (1, 2))
    methods = PairMethods.of(plan.request.settings.flow)
    method = methods.beyond_neighbours if cost_kind(unit) == LONG_TERM_FLOW_KIND else methods.method
    estimator = flow.create_estimator(method, methods.upsample)
    start = time.perf_counter()
    forward, backward = estimator(a, b), estimator(b, a)
    if methods.chain and cost_kind(unit) == LONG_TERM_FLOW_KIND:
        # the fusion with the neighbours' flows composed; the pair's own flows stand in for those
        forward, backward = flow.fuse_with_chain(a, b, (forward, backward), (forward, backward))
    flow.consistency_check(backward, forward)
    flow.consistency_check(forward, backward)
    return time.perf_counter() - start


def plan_tasks(plan: JobPlan, rates: Mapping[str, Rate]) -> list[Task]:
    """The plan's units in critical-path order, each with its cost and whether it is done."""
    return [Task(u.name, u.needs, u.effort * rates[cost_kind(u)].seconds_per_effort, is_done(u, plan.check))
            for u in plan.units_by_critical_path]


# ---------------------------------------------------------------- the schedule


def forecast(tasks: Sequence[Task], workers: Iterable[int] = (1,)) -> Forecast:
    """The figures of ``tasks`` (in the workers' order of preference, needs before users)."""
    left = [t for t in tasks if not t.done]
    starts = earliest_starts(tasks)
    by_name = {t.name: t for t in tasks}
    critical = max((starts[t.name] + t.cost for t in left), default=0.0)
    wall = {w: list_schedule(tasks, w) for w in sorted(set(workers))}
    return Forecast(total=sum(t.cost for t in tasks), remaining=sum(t.cost for t in left), critical_path=critical,
                    max_workers=peak_concurrency([(starts[t.name], starts[t.name] + by_name[t.name].cost)
                                                  for t in left]), wall=wall)


def earliest_starts(tasks: Sequence[Task]) -> dict[str, float]:
    """When each task could start with as many workers as wanted (finished tasks: at 0, done)."""
    finish: dict[str, float] = {}
    starts: dict[str, float] = {}
    for task in _in_dependency_order(tasks):
        starts[task.name] = 0.0 if task.done else max((finish[n] for n in task.needs if n in finish), default=0.0)
        finish[task.name] = starts[task.name] + (0.0 if task.done else task.cost)
    return starts


def _in_dependency_order(tasks: Sequence[Task]) -> list[Task]:
    """``tasks`` with every task after the ones it needs (a plan lists them so, but the critical-
    path order need not keep equal chains in plan order)."""
    by_name = {t.name: t for t in tasks}
    ordered: list[Task] = []
    seen: set[str] = set()
    for root in tasks:
        stack = [(root, False)]
        while stack:
            task, expanded = stack.pop()
            if task.name in seen:
                continue
            if expanded:
                seen.add(task.name)
                ordered.append(task)
                continue
            stack.append((task, True))
            stack.extend((by_name[n], False) for n in task.needs if n in by_name and n not in seen)
    return ordered


def peak_concurrency(intervals: Sequence[tuple[float, float]]) -> int:
    """Most intervals [start, end) open at once (empty ones never count)."""
    events = sorted([(end, -1) for start, end in intervals if end > start]
                    + [(start, 1) for start, end in intervals if end > start])
    peak = running = 0
    for _, step in events:  # at equal times ends (-1) come first
        running += step
        peak = max(peak, running)
    return peak


def list_schedule(tasks: Sequence[Task], workers: int) -> float:
    """Wall time of the tasks not done with ``workers`` workers that each, when free, take the
    first ready task in ``tasks``' order (a needed name that is no task counts as done; a done
    task is over as soon as what it needs is)."""
    if workers < 1:
        raise ValueError("at least one worker")
    names = {t.name for t in tasks}
    waiting = [sum(1 for n in set(t.needs) if n in names) for t in tasks]
    users: dict[str, list[int]] = {}
    for k, task in enumerate(tasks):
        for need in set(task.needs):
            users.setdefault(need, []).append(k)
    ready: list[int] = []
    running: list[tuple[float, int]] = []  # (finish time, task index)

    def finished(first: int) -> None:
        stack = [first]
        while stack:
            for user in users.get(tasks[stack.pop()].name, ()):
                waiting[user] -= 1
                if waiting[user] == 0:
                    release(user, stack)

    def release(k: int, stack: list[int]) -> None:
        if tasks[k].done:
            stack.append(k)
        else:
            heapq.heappush(ready, k)

    for k in range(len(tasks)):
        if waiting[k] == 0:
            pending: list[int] = []
            release(k, pending)
            for j in pending:
                finished(j)
    clock = 0.0
    while ready or running:
        while ready and len(running) < workers:
            k = heapq.heappop(ready)
            heapq.heappush(running, (clock + tasks[k].cost, k))
        clock, k = heapq.heappop(running)
        finished(k)
        while running and running[0][0] <= clock:
            finished(heapq.heappop(running)[1])
    return clock


# ---------------------------------------------------------------- reports


def forecast_json(tasks: Sequence[Task], result: Forecast, rates: Mapping[str, Rate]) -> dict[str, Any]:
    """What ``videostyle plan --json`` prints: the figures, the rates, and every unit with the
    cost the figures used, so they can be checked independently."""
    return {"total_seconds": result.total, "remaining_seconds": result.remaining,
            "critical_path_seconds": result.critical_path, "max_speedup": result.max_speedup,
            "max_useful_workers": result.max_workers,
            "wall_seconds": {str(w): s for w, s in result.wall.items()},
            "rates": {kind: {"seconds_per_effort": r.seconds_per_effort, "source": r.source, "units": r.samples}
                      for kind, r in sorted(rates.items())},
            "units": [{"name": t.name, "needs": list(t.needs), "cost": t.cost, "done": t.done} for t in tasks]}


def forecast_lines(result: Forecast, rates: Mapping[str, Rate]) -> list[str]:
    lines = [f"work: {duration(result.total)} in all, {duration(result.remaining)} left (one worker)",
             f"critical path: {duration(result.critical_path)} (at most {result.max_speedup:.1f}x faster than one "
             f"worker); at most {result.max_workers} workers are ever busy at once"]
    one = result.wall.get(1)
    for w, seconds in result.wall.items():
        gain = f" ({one / seconds:.1f}x one worker)" if one and seconds and w != 1 else ""
        lines.append(f"expected wall time with {w} worker{'s' if w != 1 else ''}: {duration(seconds)}{gain}")
    for kind, r in sorted(rates.items()):
        where = f"from {r.samples} finished unit(s)" if r.source == "recorded" else "measured on this machine"
        per = "full-size iteration" if kind.startswith("stylize") else "unit"
        lines.append(f"  {kind}: {r.seconds_per_effort:.4g} s per {per} ({where})")
    return lines


def busy_note(load: float, cores: int) -> str | None:
    """A warning when other processes already keep this machine's cores busy (``load``: the load
    average, ``cores``: how many it has), so that costs measured now come out slow: with one
    benchmark on each of two cores beside it, a plan's measured estimate was 16x the wall time
    its workers then took."""
    if load < cores - 0.5:
        return None
    return (f"note: this machine is busy (load {load:.1f} on {cores} core{'s' if cores != 1 else ''}): costs measured "
            "now may be too high; run `videostyle plan` again when it is idle, or after some units finish")


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
