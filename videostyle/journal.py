"""The job's journal: one line per finished unit, with the byte size of every file it wrote.

``JOB/journal.jsonl`` is append-only, so workers on several machines can record into it at once
(a small ``O_APPEND`` write stays whole); ``job.json`` is rewritten whole and would lose a
concurrent worker's entry. A unit records its outputs while it still holds its lock, so no other
worker sees its files finished but unrecorded. The latest line naming a file wins: a file that was
damaged and redone is recorded again.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from videostyle.jobdir import JobDir

def record_done(job_root: Path, unit_name: str, seconds: float, outputs: Iterable[Path] = (),
                iterations: int = 0, stop_reason: str = "") -> None:
    """Append one line for ``unit_name``: who did it, how long it took, its files' byte sizes, and
    for a stylization unit its optimiser iterations and why they ended."""
    sizes = {_relative(job_root, path): path.stat().st_size for path in outputs}
    entry: dict[str, Any] = {"unit": unit_name, "host": socket.gethostname(), "pid": os.getpid(),
                             "seconds": round(seconds, 3), "time": time.time(), "outputs": sizes}
    if iterations:
        entry.update(iterations=iterations, stop=stop_reason)
    line = json.dumps(entry) + "\n"
    fd = os.open(JobDir(job_root).journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def read_journal(job_root: Path) -> list[dict[str, Any]]:
    path = JobDir(job_root).journal_path
    if not path.is_file():
        return []
    entries = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a worker died mid-line; the unit was never recorded done
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def _relative(job_root: Path, path: Path) -> str:
    return Path(os.path.relpath(path, job_root)).as_posix()


class Ledger:
    """The recorded byte size of each unit output, read from the journal again whenever it grew."""

    def __init__(self, job_root: Path) -> None:
        self.job_root = job_root
        self._stamp: tuple[int, int] | None = None
        self._sizes: dict[str, int] = {}

    def recorded_size(self, path: Path) -> int | None:
        self._refresh()
        return self._sizes.get(_relative(self.job_root, path))

    def _refresh(self) -> None:
        try:
            stat = JobDir(self.job_root).journal_path.stat()
            stamp = (stat.st_size, stat.st_mtime_ns)
        except FileNotFoundError:
            stamp = (0, 0)
        if stamp == self._stamp:
            return
        sizes: dict[str, int] = {}
        for entry in read_journal(self.job_root):
            outputs = entry.get("outputs")
            if isinstance(outputs, dict):
                sizes.update({k: v for k, v in outputs.items() if isinstance(k, str) and isinstance(v, int)})
        self._stamp, self._sizes = stamp, sizes


def stylize_records(job_root: Path, key: str) -> dict[Path, dict[str, Any]]:
    """The latest journal line of each stylized file of the style key ``key``, by its path, for
    the lines that hold iterations."""
    folder = JobDir(job_root).stylized_dir(key)
    records: dict[Path, dict[str, Any]] = {}
    for entry in read_journal(job_root):
        outputs = entry.get("outputs")
        if "iterations" in entry and isinstance(outputs, dict):
            paths = (job_root / name for name in outputs if isinstance(name, str))
            records.update({path: entry for path in paths if path.is_relative_to(folder)})
    return records
