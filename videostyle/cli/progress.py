"""How ``videostyle work`` reports: a progress bar in a terminal, or Open Job Description's progress
lines in a farm task.

An OpenJD runtime (``openjd run``, Deadline Cloud's worker agent) reads a task's stdout for lines
``openjd_progress: <0-100>`` and ``openjd_status: <text>`` and shows them as the task's progress;
a bar's carriage returns would only clutter its log. A worker's progress is the job's: the units
done out of all of them, whichever worker did them, since every worker task runs until the job is.
"""

from __future__ import annotations

import os
from typing import Protocol

import click

from videostyle.cli.run_cmds import ProgressPrinter
from videostyle.units import StageEvent, UnitProgress

PROGRESS_MODES = ("auto", "bar", "openjd", "none")
# set by openjd-sessions for every action it runs (its public interface), so by any OpenJD runtime
OPENJD_SESSION_VARIABLE = "OPENJD_SESSION_WORKING_DIR"
_STAGE_STATUS = {"work": "working on a job of {total} units", "assemble": "encoding the video",
                 "side-by-side": "encoding the side-by-side video"}


class WorkerProgress(Protocol):
    def __call__(self, event: StageEvent | UnitProgress) -> None: ...

    def close(self) -> None: ...

    def ended(self, summary: str, job_done: bool) -> None:
        """The worker's last words: what it did, and whether every unit of the job is done."""


def in_openjd_session() -> bool:
    return bool(os.environ.get(OPENJD_SESSION_VARIABLE))


def worker_progress(mode: str) -> WorkerProgress:
    """The front end for ``--progress MODE`` (``auto``: openjd inside an OpenJD session, else bar)."""
    if mode == "auto":
        mode = "openjd" if in_openjd_session() else "bar"
    return OpenJDProgress() if mode == "openjd" else TerminalProgress(quiet=mode == "none")


class TerminalProgress(ProgressPrinter):
    """The bar of ``videostyle run`` (none when ``quiet``), and the summary as a plain line."""

    def ended(self, summary: str, job_done: bool) -> None:
        click.echo(summary)


class OpenJDProgress:
    """``openjd_progress:`` and ``openjd_status:`` lines on stdout, flushed at once (the runtime
    reads them as they come)."""

    def __call__(self, event: StageEvent | UnitProgress) -> None:
        if isinstance(event, StageEvent):
            self._line("status", _STAGE_STATUS.get(event.stage, event.stage).format(total=event.total))
            return
        self._line("progress", f"{100.0 * event.done / max(event.total, 1):.1f}")
        self._line("status", f"{event.done}/{event.total} units done; last {event.unit.label or event.unit.name}")

    def close(self) -> None:
        """Nothing to close: every line is out already."""

    def ended(self, summary: str, job_done: bool) -> None:
        if job_done:
            self._line("progress", "100.0")
        self._line("status", summary)

    @staticmethod
    def _line(kind: str, text: str) -> None:
        click.echo(f"openjd_{kind}: {' '.join(text.split())}")  # one line, whatever the text held
