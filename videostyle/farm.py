"""Farm workers on a shared job folder: list the units, claim the next free one, do it.

Any farm scheduler (Deadline, OpenCue, Flamenco, SLURM, a shell loop) runs N copies of
``videostyle work JOBDIR`` on machines that see the same folder. Locks expire when a worker dies,
so a lost worker costs only its unfinished unit; outputs are written atomically, so no worker
ever sees a half file. Every finished unit is appended to ``JOB/journal.jsonl`` with its files'
byte sizes, and a file is trusted only with its recorded size (see ``videostyle.verify``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from videostyle.assemble import finish
from videostyle.executor import PollBackoff, claim, journal_moved, run_claimed
from videostyle.jobdir import Lock, lock_is_live, try_lock
from videostyle.pipeline import plan_from_job
from videostyle.plan import JobPlan
from videostyle.units import EventCallback, StageEvent, Unit, UnitProgress, ignore_events, is_done

log = logging.getLogger(__name__)

FINISH_UNIT = "finish"
WORK_STAGE = "work"  # the stage a worker announces: the job's units, of which others may do some


@dataclass(frozen=True)
class UnitState:
    unit: Unit
    state: str  # done | running | ready | waiting


def unit_states(plan: JobPlan, lock_ttl: float = 600.0) -> list[UnitState]:
    """Each unit of the plan with what it is waiting for, read from the folder."""
    done = {u.name for u in plan.units if is_done(u, plan.check)}
    states = []
    for unit in plan.units:
        if unit.name in done:
            state = "done"
        elif lock_is_live(plan.job.locks_dir, unit.name, lock_ttl):
            state = "running"
        elif all(n in done for n in unit.needs):
            state = "ready"
        else:
            state = "waiting"
        states.append(UnitState(unit, state))
    return states


def claim_next(plan: JobPlan, lock_ttl: float, done: set[str] | None = None) -> tuple[Unit, Lock] | None:
    """Lock a unit that is not done and whose inputs are all done: the one with the longest chain
    of work waiting on it.

    ``done`` holds the units this worker has already seen done and is brought up to date; a
    worker that keeps it between claims reads each finished file back once, not once per claim.
    """
    done = set() if done is None else done
    done.update(unit.name for unit in plan.units if unit.name not in done and is_done(unit, plan.check))
    for unit in plan.units_by_critical_path:
        if unit.name in done or not all(n in done for n in unit.needs):
            continue
        lock = claim(unit, plan.job, plan.check, lock_ttl)
        if lock is not None:
            return unit, lock
    return None


@dataclass
class WorkReport:
    units_done: int = 0
    all_done: bool = False  # every unit of the job is done
    finished: bool = False  # and this worker published the final frames and the video


@dataclass
class FarmWorker:
    """One farm worker as an executor: it claims the free unit with the longest chain of work
    behind it, does it and returns, or (``until_done``) goes on until no unit is left. A worker
    that finds every unit done publishes the final frames and encodes the video, if it gets the
    ``finish`` lock, unless ``finish`` is off (a farm job that ends with a step of its own for
    that, see ``videostyle.openjd``). What it did is kept in ``report``."""

    until_done: bool = False
    lock_ttl: float = 600.0
    poll_seconds: float = 2.0
    finish: bool = True
    report: WorkReport = field(default_factory=WorkReport)

    def run(self, plan: JobPlan, emit: EventCallback) -> None:
        emit(StageEvent(WORK_STAGE, len(plan.units)))
        done: set[str] = set()  # the units seen done, brought up to date by every claim
        backoff = PollBackoff(self.poll_seconds)
        while True:
            claimed = claim_next(plan, self.lock_ttl, done)
            if claimed is not None:
                backoff.reset()
                self._do(plan, *claimed, done=done, emit=emit)
                if not self.until_done:
                    return
                continue
            if all(is_done(u, plan.check) for u in plan.units):
                self.report.all_done = True
                self.report.finished = self.finish and _finish_once(plan, self.lock_ttl, emit)
                return
            if self.report.units_done and not self.until_done:
                return
            backoff.wait(journal_moved(plan.job))  # every free unit is held by another worker or waits for one

    def _do(self, plan: JobPlan, unit: Unit, lock: Lock, done: set[str], emit: EventCallback) -> None:
        start = time.monotonic()
        result = run_claimed(unit, lock, plan.job, plan.check)
        self.report.units_done += 1
        # what the next claim would read anyway: only the units not yet seen done are checked
        done.update(u.name for u in plan.units if u.name not in done and is_done(u, plan.check))
        emit(UnitProgress(unit, len(done), len(plan.units), False, time.monotonic() - start, result))


def work(job_dir: Path, *, until_done: bool = False, lock_ttl: float = 600.0, poll_seconds: float = 2.0,
         on_progress: EventCallback | None = None, output: Path | None = None, weights: Path | None = None,
         finish: bool = True, overwrite: bool = False) -> WorkReport:
    """``videostyle work``: one free unit of the job in ``job_dir`` (or, with ``until_done``, units
    until none is left), then the job's end if it is done and ``finish`` (see ``FarmWorker``).
    The video goes to ``output``, or into the job folder; ``weights`` is where this machine has
    the job's VGG-19 weights (see ``plan_from_job``); an existing ``output`` this job did not write
    is replaced only with ``overwrite``."""
    worker = FarmWorker(until_done=until_done, lock_ttl=lock_ttl, poll_seconds=poll_seconds, finish=finish)
    worker.run(plan_from_job(job_dir, output, weights, overwrite), on_progress or ignore_events)
    return worker.report


def _finish_once(plan: JobPlan, lock_ttl: float, emit: EventCallback) -> bool:
    lock = try_lock(plan.job.locks_dir, FINISH_UNIT, lock_ttl)
    if lock is None:
        return False
    try:
        finish(plan, emit)
        return True
    finally:
        lock.release()
