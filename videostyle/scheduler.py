"""Units of work and their execution: skip what is done, claim the rest, report progress.

A run is planned as an ordered list of units (one flow pair, one frame of one pass). A unit is
done when all its output files exist and read back; since every file is written atomically, a
killed run leaves only complete files, and running the plan again simply skips them. Each unit is
claimed with an expiring lock, so several workers can share one job folder.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from videostyle.jobdir import try_lock

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UnitResult:
    """What a unit reports when it finishes (losses and iterations for stylization units)."""

    losses: dict[str, float] = field(default_factory=dict)
    iterations: int = 0
    stop_reason: str = ""  # stylization: budget | converged | non-finite


@dataclass(frozen=True)
class Unit:
    name: str  # unique within a plan, e.g. "flow/3-4" or "pass02/frame00005"
    stage: str  # "flow", "stylize", ...
    outputs: tuple[Path, ...]
    needs: tuple[str, ...]  # names of units whose outputs this one reads
    work: Callable[[], UnitResult | None]
    label: str = ""  # for progress lines, e.g. "pass 2/10 frame 5/25"


@dataclass(frozen=True)
class Progress:
    """Sent after every unit, skipped or done."""

    unit: Unit
    done: int
    total: int
    skipped: bool
    seconds: float
    result: UnitResult | None


ProgressCallback = Callable[[Progress], None]
OutputCheck = Callable[[Path], bool]


def is_done(unit: Unit, check: OutputCheck) -> bool:
    return all(check(path) for path in unit.outputs)


def by_critical_path(units: Sequence[Unit]) -> list[Unit]:
    """``units`` with the longest chain of work waiting on them first; ties keep plan order.

    For workers that pick any ready unit: plan order starts the units that finish early and
    leaves a long dependent chain (a segment's last pass, one frame after another) to one worker
    at the end while the others sit idle. ``units`` must be in plan order (needs before users);
    so is the result, since a unit's chain is always longer than the chain of any unit needing it.
    """
    users: dict[str, list[str]] = {}
    for unit in units:
        for need in unit.needs:
            users.setdefault(need, []).append(unit.name)
    chain: dict[str, int] = {}
    for unit in reversed(units):
        chain[unit.name] = 1 + max((chain[user] for user in users.get(unit.name, ())), default=0)
    return sorted(units, key=lambda unit: -chain[unit.name])


def execute(units: Sequence[Unit], locks_dir: Path, check: OutputCheck,
            on_progress: ProgressCallback | None = None, lock_ttl: float = 600.0,
            poll_seconds: float = 2.0) -> None:
    """Run ``units`` in order, skipping done ones; wait for units another worker holds.

    Units are listed in an order that respects ``needs``; a unit held by another live worker is
    waited for before any unit that needs it runs.
    """
    total = len(units)
    for done, unit in enumerate(units, start=1):
        if is_done(unit, check):
            _report(on_progress, Progress(unit, done, total, True, 0.0, None))
            continue
        start = time.monotonic()
        result = _run_claimed(unit, locks_dir, check, lock_ttl, poll_seconds)
        _report(on_progress, Progress(unit, done, total, result is None, time.monotonic() - start, result))


def _run_claimed(unit: Unit, locks_dir: Path, check: OutputCheck, ttl: float,
                 poll_seconds: float) -> UnitResult | None:
    """Do ``unit`` under its lock; if another worker holds it, wait until it is done (or the
    lock expires and we take over). Returns None when another worker did it."""
    while True:
        lock = try_lock(locks_dir, unit.name, ttl)
        if lock is not None:
            try:
                if is_done(unit, check):  # finished by another worker while we waited
                    return None
                log.debug("running %s", unit.name)
                return unit.work() or UnitResult()
            finally:
                lock.release()
        if is_done(unit, check):
            return None
        time.sleep(poll_seconds)


def _report(callback: ProgressCallback | None, progress: Progress) -> None:
    if callback is not None:
        callback(progress)
