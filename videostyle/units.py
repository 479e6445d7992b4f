"""The plan's vocabulary: units of work, what they report, and the events a run sends.

A run is planned as an ordered list of units (one flow pair, one frame of one pass), built by the
stages (``flowstage``, ``passes``). A unit is done when all its output files check out (see
``videostyle.verify``); since every file is written atomically, a killed run leaves only complete
files, and running the plan again simply skips them. Who runs the units is the executor's
business (``videostyle.executor``); this module names what they run and what they report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence


@dataclass(frozen=True)
class UnitResult:
    """What a unit reports when it finishes (losses and iterations for stylization units)."""

    losses: dict[str, float] = field(default_factory=dict)
    iterations: int = 0
    stop_reason: str = ""  # stylization: budget | converged | non-finite
    # A unit of several frames (``passes.batched_units``): each one's result, in ``Unit.outputs`` order.
    outputs: tuple[UnitResult, ...] = ()


@dataclass(frozen=True)
class Unit:
    name: str  # unique within a plan, its outputs' place: "flow/3-4", "pass_02/frame_00005"
    stage: str  # "flow", "stylize", ...
    outputs: tuple[Path, ...]
    needs: tuple[str, ...]  # names of units whose outputs this one reads
    work: Callable[[], UnitResult | None]
    label: str = ""  # for progress lines, e.g. "pass 2/10 frame 5/25"
    # Planned work in the stage's own measure, for estimates (``videostyle.workload``): a
    # stylization unit's iterations times its scale squared (full-size iterations), 1 otherwise.
    effort: float = 1.0
    kind: str = ""  # units of one kind cost the same per effort ("stylize 0.5x"); "" is the stage's


@dataclass(frozen=True)
class UnitProgress:
    """Sent after every unit, skipped or done."""

    unit: Unit
    done: int
    total: int
    skipped: bool
    seconds: float
    result: UnitResult | None


@dataclass(frozen=True)
class StageEvent:
    """Sent when a stage starts, so a front end can start a progress bar."""

    stage: str
    total: int


EventCallback = Callable[[StageEvent | UnitProgress], None]
OutputCheck = Callable[[Path], bool]


def ignore_events(event: StageEvent | UnitProgress) -> None:
    """The callback of a run nobody watches."""


def cost_kind(unit: Unit) -> str:
    return unit.kind or unit.stage


def read_again(check: OutputCheck) -> None:
    """A check that caches what it read of the journal (``verify.AsRecorded``) reads it afresh on
    its next call: after a claim, whose recheck must see a record made just before, and after this
    process recorded a unit. Plain callables have nothing to refresh."""
    refresh = getattr(check, "read_again", None)
    if refresh is not None:
        refresh()


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
