"""Farm workers on a shared job folder: list the units, claim the next free one, do it.

Any farm scheduler (Deadline, OpenCue, Flamenco, SLURM, a shell loop) runs N copies of
``videostyle work JOBDIR`` on machines that see the same folder. Locks expire when a worker dies,
so a lost worker costs only its unfinished unit; outputs are written atomically, so no worker
ever sees a half file. Every finished unit is appended to ``JOB/journal.jsonl``.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from videostyle.jobdir import JobDir, Lock, try_lock
from videostyle.pipeline import JobPlan, finish, output_is_valid, plan_from_job
from videostyle.scheduler import Progress, Unit, UnitResult, is_done

log = logging.getLogger(__name__)

JOURNAL = "journal.jsonl"
FINISH_UNIT = "finish"


@dataclass(frozen=True)
class UnitState:
    unit: Unit
    state: str  # done | running | ready | waiting


def unit_states(plan: JobPlan, lock_ttl: float = 600.0) -> list[UnitState]:
    """Each unit of the plan with what it is waiting for, read from the folder."""
    done = {u.name for u in plan.units if is_done(u, output_is_valid)}
    states = []
    for unit in plan.units:
        if unit.name in done:
            state = "done"
        elif _lock_is_live(plan.job, unit.name, lock_ttl):
            state = "running"
        elif all(n in done for n in unit.needs):
            state = "ready"
        else:
            state = "waiting"
        states.append(UnitState(unit, state))
    return states


def _lock_is_live(job: JobDir, name: str, ttl: float) -> bool:
    path = job.locks_dir / (name.replace("/", "__") + ".lock")
    try:
        return time.time() - path.stat().st_mtime <= ttl
    except FileNotFoundError:
        return False


def record_done(job: JobDir, unit: Unit, seconds: float) -> None:
    """Append one line to the journal (O_APPEND keeps concurrent small writes whole)."""
    line = json.dumps({"unit": unit.name, "host": socket.gethostname(), "pid": os.getpid(),
                       "seconds": round(seconds, 3), "time": time.time()}) + "\n"
    fd = os.open(job.root / JOURNAL, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def read_journal(job_dir: Path) -> list[dict]:
    path = job_dir / JOURNAL
    if not path.is_file():
        return []
    entries = []
    for line in path.read_text().splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue  # a worker died mid-line; the unit was never recorded done
    return entries


def claim_next(plan: JobPlan, lock_ttl: float, done: set[str] | None = None) -> tuple[Unit, Lock] | None:
    """Lock a unit that is not done and whose inputs are all done: the one with the longest chain
    of work waiting on it.

    ``done`` holds the units this worker has already seen done and is brought up to date; a
    worker that keeps it between claims reads each finished file back once, not once per claim.
    """
    done = set() if done is None else done
    done.update(unit.name for unit in plan.units if unit.name not in done and is_done(unit, output_is_valid))
    for unit in plan.units_by_critical_path:
        if unit.name in done or not all(n in done for n in unit.needs):
            continue
        lock = try_lock(plan.job.locks_dir, unit.name, lock_ttl)
        if lock is None:
            continue
        if is_done(unit, output_is_valid):  # another worker finished it just now
            lock.release()
            done.add(unit.name)
            continue
        return unit, lock
    return None


@dataclass
class WorkReport:
    units_done: int = 0
    finished: bool = False


def work(job_dir: Path, *, until_done: bool = False, lock_ttl: float = 600.0, poll_seconds: float = 2.0,
         on_progress: Callable[[Progress], None] | None = None) -> WorkReport:
    """Do one free unit (or, with ``until_done``, units until none is left), then return.

    When every unit is done, the worker that gets the ``finish`` lock publishes the final frames
    and encodes the video.
    """
    plan = plan_from_job(job_dir)
    report = WorkReport()
    done: set[str] = set()
    while True:
        claimed = claim_next(plan, lock_ttl, done)
        if claimed is not None:
            _do(plan, *claimed, report=report, on_progress=on_progress)
            if not until_done:
                return report
            continue
        if all(is_done(u, output_is_valid) for u in plan.units):
            report.finished = _finish_once(plan, lock_ttl)
            return report
        if report.units_done and not until_done:
            return report
        time.sleep(poll_seconds)  # every free unit is held by another worker or waits for one


def _do(plan: JobPlan, unit: Unit, lock: Lock, report: WorkReport,
        on_progress: Callable[[Progress], None] | None) -> None:
    start = time.monotonic()
    try:
        result = unit.work() or UnitResult()
    finally:
        lock.release()
    seconds = time.monotonic() - start
    record_done(plan.job, unit, seconds)
    report.units_done += 1
    if on_progress:
        total = len(plan.units)
        done = sum(is_done(u, output_is_valid) for u in plan.units)
        on_progress(Progress(unit, done, total, False, seconds, result))


def _finish_once(plan: JobPlan, lock_ttl: float) -> bool:
    lock = try_lock(plan.job.locks_dir, FINISH_UNIT, lock_ttl)
    if lock is None:
        return False
    try:
        finish(plan)
        return True
    finally:
        lock.release()
