"""The job's journal: a record per finished unit, with the byte size of every file it wrote.

Each record is its own small JSON file in ``JOB/journal/``, written atomically under a name no
other worker uses (the unit and a random token): appends to one shared file from many NFS clients
are not atomic, while a whole file renamed into place is. ``job.json`` is rewritten whole and
would lose a concurrent worker's entry. A unit records its outputs while it still holds its lock
(and has checked it still does), so no other worker sees its files finished but unrecorded.
Readers list the folder and read only the records they have not read before. The latest record
naming a file wins (by the server's mtime, then name): a file that was damaged and redone is
recorded again. Jobs of older versions kept one ``journal.jsonl``; it is still read.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from flow.atomic import atomic_write_bytes
from videostyle.jobdir import JobDir, check_no_link_on_the_way


def record_done(job_root: Path, unit_name: str, seconds: float, outputs: Iterable[Path] = (),
                iterations: int = 0, stop_reason: str = "", each: Sequence[tuple[int, str]] = ()) -> None:
    """Write one record for ``unit_name``: who did it, how long it took, its files' byte sizes, and
    for a stylization unit its optimiser iterations and why they ended; ``each``: (iterations,
    stop reason) of each output of a unit of several frames, in ``outputs`` order."""
    outputs = list(outputs)
    sizes = {_relative(job_root, path): path.stat().st_size for path in outputs}
    entry: dict[str, Any] = {"unit": unit_name, "host": socket.gethostname(), "pid": os.getpid(),
                             "seconds": round(seconds, 3), "time": time.time(), "outputs": sizes}
    if iterations:
        entry.update(iterations=iterations, stop=stop_reason)
    if each:
        entry["frames"] = {_relative(job_root, path): {"iterations": it, "stop": stop}
                           for path, (it, stop) in zip(outputs, each)}
    folder = JobDir(job_root).journal_dir
    record = folder / f"{unit_name.replace('/', '__')}~{uuid.uuid4().hex[:12]}.json"
    check_no_link_on_the_way(job_root, record)
    atomic_write_bytes(record, (json.dumps(entry) + "\n").encode())


_TICK_SECONDS = 2.0  # the coarsest mtime granularity of a file system a job may live on (FAT, old NFS)
_RELIST_SECONDS = 0.05  # within that tick, a folder listed this recently is not listed again


class JournalReader:
    """The journal's records, read incrementally: a record file is read once, the legacy
    ``journal.jsonl`` again only when it changed. ``entries()`` lists them oldest first."""

    def __init__(self, job_root: Path) -> None:
        self.job = JobDir(job_root)
        self._records: dict[str, tuple[int, dict[str, Any]]] = {}  # file name -> (mtime_ns, record)
        self._legacy_stamp: tuple[int, int] | None = None
        self._legacy: list[dict[str, Any]] = []
        self._folder_stamp: int | None = None
        self._stamp_seen = 0.0
        self._listed = -1.0  # monotonic time of the last listing; below 0: list on the next refresh

    def read_again(self) -> None:
        """List the folder on the next refresh whatever its stamp says (after a claim, or after
        this process recorded a unit: what it must see at once)."""
        self._listed = -1.0

    def refresh(self) -> bool:
        """Read what is new; True when anything was."""
        changed = self._refresh_legacy()
        folder = self.job.journal_dir
        try:
            stamp = folder.stat().st_mtime_ns
        except FileNotFoundError:
            return changed
        # An unchanged folder mtime proves nothing new only once the clock has moved on past its
        # tick (a record renamed in during the same tick keeps it): for 2 s after a stamp is first
        # seen the folder is listed again (git's rule for racily clean index entries), but at most
        # every _RELIST_SECONDS, so a worker checking thousands of units does not list it for each;
        # what must be seen at once asks for it (read_again).
        now = time.monotonic()
        if stamp == self._folder_stamp and self._listed >= 0 and (
                now - self._stamp_seen > _TICK_SECONDS or now - self._listed < _RELIST_SECONDS):
            return changed
        if stamp != self._folder_stamp:
            self._folder_stamp, self._stamp_seen = stamp, now
        self._listed = now
        with os.scandir(folder) as listing:
            for item in listing:
                if item.name in self._records or not item.name.endswith(".json") or item.name.startswith("."):
                    continue
                record = _read_record(Path(item.path))
                if record is not None:
                    self._records[item.name] = (item.stat(follow_symlinks=False).st_mtime_ns, record)
                    changed = True
        return changed

    def entries(self) -> list[dict[str, Any]]:
        self.refresh()
        ordered = sorted(self._records.items(), key=lambda kv: (kv[1][0], kv[0]))
        return self._legacy + [record for _name, (_mtime, record) in ordered]

    def _refresh_legacy(self) -> bool:
        path = self.job.journal_path
        try:
            stat = path.stat()
        except FileNotFoundError:
            return False
        stamp = (stat.st_size, stat.st_mtime_ns)
        if stamp == self._legacy_stamp:
            return False
        self._legacy_stamp, self._legacy = stamp, _read_lines(path)
        return True


def _read_record(path: Path) -> dict[str, Any] | None:
    try:
        if path.stat().st_size > 1 << 20:  # a record is a few hundred bytes; a huge file is not one
            return None
        entry = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return entry if isinstance(entry, dict) else None


def _read_lines(path: Path) -> list[dict[str, Any]]:
    entries = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a worker died mid-line; the unit was never recorded done
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def read_journal(job_root: Path) -> list[dict[str, Any]]:
    """Every record of the job, oldest first."""
    return JournalReader(job_root).entries()


def _relative(job_root: Path, path: Path) -> str:
    return Path(os.path.relpath(path, job_root)).as_posix()


class Ledger:
    """The recorded byte size of each unit output, brought up to date from the new records."""

    def __init__(self, job_root: Path) -> None:
        self.job_root = job_root
        self._reader = JournalReader(job_root)
        self._sizes: dict[str, int] = {}

    def read_again(self) -> None:
        self._reader.read_again()

    def recorded_size(self, path: Path) -> int | None:
        if self._reader.refresh():
            sizes: dict[str, int] = {}
            for entry in self._reader.entries():
                outputs = entry.get("outputs")
                if isinstance(outputs, dict):
                    sizes.update({k: v for k, v in outputs.items() if isinstance(k, str) and isinstance(v, int)})
            self._sizes = sizes
        return self._sizes.get(_relative(self.job_root, path))


def stylize_records(job_root: Path, key: str) -> dict[Path, dict[str, Any]]:
    """The latest journal line of each stylized file of the style key ``key``, by its path, for
    the lines that hold iterations."""
    folder = JobDir(job_root).stylized_dir(key)
    records: dict[Path, dict[str, Any]] = {}
    for entry in read_journal(job_root):
        outputs = entry.get("outputs")
        if "iterations" in entry and isinstance(outputs, dict):
            each = entry.get("frames") if isinstance(entry.get("frames"), dict) else {}
            for name in outputs:
                path = job_root / name if isinstance(name, str) else None
                if path is not None and path.is_relative_to(folder):
                    own = each.get(name)
                    records[path] = {**entry, **own} if isinstance(own, dict) else entry
    return records
