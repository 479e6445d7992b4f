"""Who runs a plan's units: the executor interface, the one claim -> run -> record routine every
executor uses, and the local executor (units one after another, here).

A unit is claimed with an expiring lock (see ``videostyle.jobdir``), checked again under the lock
(another worker may have finished it meanwhile), run, recorded in the journal with its files'
byte sizes, and only then released: no worker ever sees a unit free whose files are not recorded,
and a file that is not recorded (or no longer has its recorded size) is redone. The Ray engine
(``videostyle.ray_engine``) and farm workers (``videostyle.farm``) run units through the same
routine, so several of them may share one job folder.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, Sequence

from videostyle.jobdir import JobDir, Lock, check_no_link_on_the_way, try_lock
from videostyle.journal import record_done
from videostyle.plan import JobPlan
from videostyle.units import (EventCallback, OutputCheck, StageEvent, Unit, UnitProgress, UnitResult, is_done,
                              read_again)

log = logging.getLogger(__name__)


class Executor(Protocol):
    """Runs the units of a plan that are not done yet, in an order that respects ``needs``: all of
    them (local, Ray), or a farm worker's share (``videostyle.farm.FarmWorker``)."""

    def run(self, plan: JobPlan, emit: EventCallback) -> None: ...


def claim(unit: Unit, job: JobDir, check: OutputCheck, lock_ttl: float) -> Lock | None:
    """The lock of ``unit`` when it is free and still to do; None when a live worker holds it or
    its outputs are done (checked again under the lock: another worker may have just finished)."""
    lock = try_lock(job.locks_dir, unit.name, lock_ttl)
    if lock is not None:
        read_again(check)  # the last holder recorded before it let go, maybe within the same tick
    if lock is not None and is_done(unit, check):
        lock.release()
        return None
    return lock


def run_claimed(unit: Unit, lock: Lock, job: JobDir, check: OutputCheck) -> UnitResult:
    """Do a claimed unit, record its outputs in the journal while it is still locked, release it.

    Its outputs are checked to lead nowhere outside the job just before it runs (the folder may
    have changed since the plan was made), and its claim is checked to be still its own before the
    record: a worker that paused past its lock's lifetime was replaced, and records nothing."""
    try:
        log.debug("running %s", unit.name)
        for path in unit.outputs:
            check_no_link_on_the_way(job.root, path)
        start = time.monotonic()
        result = unit.work() or UnitResult()
        if not lock.still_held():
            log.warning("%s: another worker took this unit over while this one worked (paused past the "
                        "lock's lifetime?); its result is not recorded", unit.name)
            return result
        record_done(job.root, unit.name, time.monotonic() - start, unit.outputs,
                    iterations=result.iterations, stop_reason=result.stop_reason,
                    each=[(r.iterations, r.stop_reason) for r in result.outputs])
        read_again(check)  # the units waiting on this one see it done at once
        return result
    finally:
        lock.release()


FIRST_POLL_SECONDS = 0.1
WATCH_SECONDS = 0.05  # how often a waiting worker looks at the journal folder's time


@dataclass
class PollBackoff:
    """The waits of a worker that has nothing to do until another one finishes: the first short,
    each next one twice as long, up to ``longest``; ``reset`` once there is work again.

    While it waits it watches ``changed`` (the journal folder's modification time, which every
    finished unit moves: one stat, not a look at every unit) and stops waiting when it moves. With
    a fixed 2 s wait, two local workers on a 25-frame parallel-schedule job sat idle 10% of the
    time: when the unit that starts the chain was done, the other worker slept on through the
    frames it freed. The doubling keeps long waits, and so few full looks at a shared folder,
    for a worker that has nothing to do for long."""

    longest: float
    first: float = FIRST_POLL_SECONDS
    _next: float = 0.0

    def delay(self) -> float:
        """The next wait, in seconds (and the one after it doubles)."""
        current = min(self._next or self.first, self.longest)
        self._next = min(current * 2, self.longest)
        return current

    def wait(self, changed: Callable[[], object] | None = None) -> None:
        """Sleep the next delay, or until ``changed()`` returns something else than at the start."""
        delay = self.delay()
        if changed is None:
            time.sleep(delay)
            return
        before, end = changed(), time.monotonic() + delay
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(WATCH_SECONDS, left))
            if changed() != before:
                self.reset()
                return

    def reset(self) -> None:
        self._next = 0.0


def journal_moved(job: JobDir) -> Callable[[], object]:
    """What ``PollBackoff.wait`` watches: the journal folder's modification time (None while the
    folder is missing)."""
    def mtime() -> object:
        try:
            return job.journal_dir.stat().st_mtime_ns
        except OSError:
            return None

    return mtime


def run_when_free(unit: Unit, job: JobDir, check: OutputCheck, lock_ttl: float,
                  poll_seconds: float) -> UnitResult | None:
    """Do ``unit``; if another worker holds it, wait until it is done (or its lock expires and we
    take over; waits back off up to ``poll_seconds``). Returns None when another worker did it."""
    backoff = PollBackoff(poll_seconds)
    while True:
        lock = claim(unit, job, check, lock_ttl)
        if lock is not None:
            return run_claimed(unit, lock, job, check)
        if is_done(unit, check):
            return None
        backoff.wait(journal_moved(job))


def run_in_order(units: Sequence[Unit], job: JobDir, check: OutputCheck, emit: EventCallback,
                 lock_ttl: float = 600.0, poll_seconds: float = 2.0) -> None:
    """Run ``units`` in plan order, skipping done ones; a unit another live worker holds is
    waited for before any unit that needs it runs."""
    total = len(units)
    for done, unit in enumerate(units, start=1):
        if is_done(unit, check):
            emit(UnitProgress(unit, done, total, True, 0.0, None))
            continue
        start = time.monotonic()
        result = run_when_free(unit, job, check, lock_ttl, poll_seconds)
        emit(UnitProgress(unit, done, total, result is None, time.monotonic() - start, result))


@dataclass(frozen=True)
class LocalExecutor:
    """The units here, one after another, stage by stage (``videostyle run --engine local``)."""

    lock_ttl: float = 600.0
    poll_seconds: float = 2.0

    def run(self, plan: JobPlan, emit: EventCallback) -> None:
        for stage in ("flow", "stylize"):
            units = [u for u in plan.units if u.stage == stage]
            if units:
                emit(StageEvent(stage, len(units)))
                run_in_order(units, plan.job, plan.check, emit, self.lock_ttl, self.poll_seconds)
