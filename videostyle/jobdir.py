"""The job folder: where every stage's results live, the manifest, and expiring lock files.

``JobDir`` is the only code that knows this layout; everything else asks it for paths.
Layout (frames numbered from 1, flow files named as the authors' scripts name them)::

    JOB/job.json                                manifest: input, video info, settings, stage keys
    JOB/frames/frame_00001.png                  extracted input frames
    JOB/flow/<key>/forward_1_2.flo, backward_2_1.flo, reliable_2_1.pgm, ...
    JOB/stylized/<key>/pass_01/frame_00001.png  each pass's results
    JOB/stylized/<key>/anchors/frame_00003.png  anchor frames (one result for every pass)
    JOB/final/frame_00001.png, JOB/final.json   the frames of the finished video, their style key
    JOB/locks/<unit>.lock                       who is working on what (expires); a unit is named
                                                by its output's place: pass_01/frame_00001
    JOB/styles/0_<digest>.jpg, JOB/audio.mka    the style images and the input's audio, for workers

    JOB/journal.jsonl                           each finished unit and its files' byte sizes

Only data formats live here (images, .flo, .pgm, JSON, the audio stream as it was), so a folder
can be shared between machines.
Every file is written atomically, so a file that exists is complete. Still, nothing here is trusted
for itself: a file is used only when it checks out against what was recorded when it was written
(see ``videostyle.verify``), and is made again otherwise.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from flow.atomic import atomic_write_bytes
from videostyle.errors import UserError
from videostyle.video_io import frame_name

MANIFEST = "job.json"


def write_json(path: Path, data: Any) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; missing or corrupt reads as empty."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def inside_job(root: Path, name: str, what: str) -> Path:
    """``root / name`` for a ``name`` read from a job folder (which anyone with access to the share
    may have edited): refused, as one line, unless it is a relative name that stays inside ``root``
    (no absolute path, no ``..``, no symbolic link leading out)."""
    relative = PurePosixPath(name)
    if not name or "\\" in name or relative.is_absolute() or ".." in relative.parts:
        raise UserError(f"the job folder names a {what} {name!r} that is not a name inside it; refusing to use it")
    path = root / relative
    if not resolves_inside(path, root):
        raise UserError(f"the job folder's {what} {name} leads outside it (a symbolic link); refusing to use it")
    return path


def resolves_inside(path: Path, root: Path) -> bool:
    """``path``, symbolic links followed, is ``root`` or lies under it."""
    return path.resolve().is_relative_to(root.resolve())


STYLE_COPY = re.compile(r"styles/\d+_([0-9a-f]{16})\.[A-Za-z0-9]{1,5}")  # a style copy's name in the job
AUDIO_COPY = "audio.mka"


@dataclass(frozen=True)
class JobDir:
    """The job folder's layout: the only code that knows where anything lives in it."""

    root: Path

    @staticmethod
    def containing(path: Path, levels: int = 3) -> JobDir | None:
        """The job folder ``path`` is or lies in (the nearest one up to ``levels`` folders up)."""
        path = Path(path).resolve()
        for candidate in [path, *list(path.parents)[:levels]]:
            if JobDir(candidate).exists():
                return JobDir(candidate)
        return None

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    def exists(self) -> bool:
        return self.manifest_path.is_file()

    def read_manifest(self) -> dict[str, Any]:
        return read_json(self.manifest_path)

    def update_manifest(self, **entries: Any) -> dict[str, Any]:
        """Merge ``entries`` into the manifest (read, update, atomic write)."""
        manifest = self.read_manifest()
        manifest.update(entries)
        write_json(self.manifest_path, manifest)
        return manifest

    @property
    def journal_path(self) -> Path:
        """Append-only: a line per finished unit with its files' sizes (see ``videostyle.journal``)."""
        return self.root / "journal.jsonl"

    def create(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create job folder {self.root}: {exc.strerror}") from None
        if not os.access(self.root, os.W_OK):
            raise UserError(f"job folder {self.root} is not writable")

    @property
    def frames_dir(self) -> Path:
        return self.root / "frames"

    def frame_path(self, i: int) -> Path:
        """Extracted input frame i (from 1)."""
        return self.frames_dir / frame_name(i)

    @property
    def final_dir(self) -> Path:
        return self.root / "final"

    def final_path(self, i: int) -> Path:
        return self.final_dir / frame_name(i)

    @property
    def final_marker(self) -> Path:
        """Which style key ``final/`` was published from."""
        return self.root / "final.json"

    def final_staging_dir(self) -> Path:
        """Where ``final/`` is built before it replaces the old one (one per process)."""
        return self.root / f".final.tmp-{os.getpid()}"

    @property
    def locks_dir(self) -> Path:
        return self.root / "locks"

    def lock_path(self, unit: str) -> Path:
        return lock_path(self.locks_dir, unit)

    @property
    def styles_dir(self) -> Path:
        return self.root / "styles"

    def style_copy_name(self, index: int, digest: str, suffix: str) -> str:
        """The job folder's name of style image ``index``, by its content (see ``STYLE_COPY``)."""
        copy = self.styles_dir / f"{index}_{digest}{suffix.lower()}"
        return copy.relative_to(self.root).as_posix()

    @property
    def audio_copy(self) -> Path:
        """The input's audio stream as it was, for the worker that encodes where the input is not."""
        return self.root / AUDIO_COPY

    def flow_dir(self, key: str) -> Path:
        """The flows and masks of one flow key (see ``videostyle.flowstage``)."""
        return self.flow_root / key

    @property
    def flow_root(self) -> Path:
        return self.root / "flow"

    @property
    def masks_root(self) -> Path:
        return self.root / "masks"

    def masks_dir(self, key: str) -> Path:
        """The style masks of one key at the frames' size (see ``videostyle.maskstage``)."""
        return self.masks_root / key

    def stylized_dir(self, key: str) -> Path:
        return self.stylized_root / key

    @property
    def stylized_root(self) -> Path:
        """A folder per style key, holding a folder per pass and one for the anchors."""
        return self.root / "stylized"

    def pass_dir(self, key: str, pass_index: int) -> Path:
        return self.stylized_dir(key) / f"pass_{pass_index:02d}"

    def anchors_dir(self, key: str) -> Path:
        """Anchor frames have one result shared by every pass."""
        return self.stylized_dir(key) / "anchors"

    def pass_dirs(self, key_dir: Path) -> dict[int, Path]:
        """The pass folders found under a style key's folder, by pass number."""
        found = (re.fullmatch(r"pass_(\d+)", d.name) for d in sorted(key_dir.iterdir()) if d.is_dir())
        return {int(m[1]): key_dir / m[0] for m in found if m}

    def entries(self) -> tuple[Path, ...]:
        """Every entry the job writes into or deletes (for the check that none leads outside)."""
        return (self.manifest_path, self.journal_path, self.final_marker, self.frames_dir, self.flow_root,
                self.stylized_root, self.final_dir, self.locks_dir, self.styles_dir, self.audio_copy,
                self.masks_root)


@dataclass
class Lock:
    """An exclusive claim on one unit of work, kept alive by a heartbeat until released."""

    path: Path
    token: str
    ttl: float
    _stop: threading.Event
    _thread: threading.Thread | None = None

    def start_heartbeat(self) -> None:
        def beat() -> None:
            while not self._stop.wait(self.ttl / 3):
                try:
                    os.utime(self.path)
                except FileNotFoundError:
                    return

        self._thread = threading.Thread(target=beat, daemon=True)
        self._thread.start()

    def release(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        if read_json(self.path).get("token") == self.token:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass


def try_lock(locks_dir: Path, unit: str, ttl: float = 600.0) -> Lock | None:
    """Claim ``unit``, or return None if a live worker holds it.

    A lock whose file has not been touched for ``ttl`` seconds belongs to a dead worker: it is
    moved aside by rename (atomic, so only one of several contenders wins) and claimed afresh.
    """
    locks_dir.mkdir(parents=True, exist_ok=True)
    path = lock_path(locks_dir, unit)
    token = uuid.uuid4().hex
    body = json.dumps({"token": token, "host": socket.gethostname(), "pid": os.getpid(),
                       "time": time.time()}).encode()
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if lock_is_live(path, ttl):
                return None
            try:
                os.rename(path, path.with_name(f"{path.name}.stale-{token}"))
                os.unlink(path.with_name(f"{path.name}.stale-{token}"))
            except FileNotFoundError:
                pass  # another worker removed it first; try to create again
            continue
        with os.fdopen(fd, "wb") as fh:
            fh.write(body)
        lock = Lock(path=path, token=token, ttl=ttl, _stop=threading.Event())
        lock.start_heartbeat()
        return lock
    return None


def lock_path(locks_dir: Path, unit: str) -> Path:
    return locks_dir / (unit.replace("/", "__") + ".lock")


def lock_is_live(path: Path, ttl: float) -> bool:
    """The one rule for whether a lock's holder still works on its unit (claiming and listing
    alike): its heartbeat touched the file within ``ttl`` seconds, and, when it ran on this host,
    its process still exists (a killed local run resumes without waiting)."""
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return False
    if age > ttl:
        return False
    holder = read_json(path)
    if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int):
        return _process_alive(holder["pid"])
    return True


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
