"""The job folder: where every stage's results live, the manifest, and expiring lock files.

``JobDir`` is the only code that knows this layout; everything else asks it for paths.
Layout (frames numbered from 1, flow files named as the authors' scripts name them)::

    JOB/job.json                                manifest: input, video info, settings, stage keys
    JOB/frames/frame_00001.png                  extracted input frames
    JOB/flow/<key>/forward_1_2.flo, backward_2_1.flo, reliable_2_1.pgm, ...
    JOB/stylized/<key>/pass_01/frame_00001.png  each pass's results
    JOB/stylized/<key>/anchors/frame_00003.png  anchor frames (one result for every pass)
    JOB/final/frame_00001.png, JOB/final.json   the frames of the finished video, their style key
    JOB/locks/<unit>/00000001.lock              who is working on what (numbered claims that expire);
                                                a unit is named by its output's place: pass_01/frame_00001
    JOB/styles/0_<digest>.jpg, JOB/audio.mka    the style images and the input's audio, for workers

    JOB/journal/<unit>~<token>.json             each finished unit and its files' byte sizes

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
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from flow.atomic import atomic_write_bytes
from videostyle.errors import UserError
from videostyle.images import load_image
from videostyle.video_io import frame_name

MANIFEST = "job.json"
# What ``config.stage_key`` makes: a recorded key names a folder in the job, so one read back from
# job.json (which anyone who can write a shared job folder can rewrite) must be nothing else.
_STAGE_KEY = re.compile(r"[0-9a-f]{16}")


def is_stage_key(value: object) -> bool:
    """Whether ``value``, read from a job folder, is a stage key: 16 hex digits, no path."""
    return isinstance(value, str) and _STAGE_KEY.fullmatch(value) is not None


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
    check_no_link_on_the_way(root, path)
    return path


def resolves_inside(path: Path, root: Path) -> bool:
    """``path``, symbolic links followed, is ``root`` or lies under it."""
    return path.resolve().is_relative_to(root.resolve())


def check_no_link_on_the_way(root: Path, path: Path) -> None:
    """Nothing between the job folder ``root`` and ``path`` (``path`` included) is a symbolic
    link: checked right before a write, so a link planted in a shared folder after the plan was
    checked still cannot send a worker's write elsewhere."""
    try:
        relative = Path(path).absolute().relative_to(Path(root).absolute())
    except ValueError:
        raise UserError(f"{path} is not inside the job folder {root}; refusing to write there") from None
    current = Path(root).absolute()
    for part in relative.parts:
        current = current / part
        if current.is_symlink():
            raise UserError(f"the job folder's {current.relative_to(root)} is a symbolic link; refusing to write "
                            "through it (remove it, or plan the job again)")


def check_tree_has_no_links(root: Path) -> None:
    """No entry anywhere in the job folder is a symbolic link (a frame, a pass folder, a flow):
    a job writes and reads only its own files."""
    for folder, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            path = Path(folder) / name
            if path.is_symlink():
                raise UserError(f"the job folder holds a symbolic link, {path.relative_to(root)} -> "
                                f"{os.readlink(path)}; a job folder holds only its own files (remove it)")


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
        check_no_link_on_the_way(self.root, self.manifest_path)
        manifest = self.read_manifest()
        manifest.update(entries)
        write_json(self.manifest_path, manifest)
        return manifest

    @property
    def journal_dir(self) -> Path:
        """A record file per finished unit with its files' sizes (see ``videostyle.journal``)."""
        return self.root / "journal"

    @property
    def journal_path(self) -> Path:
        """The one journal file of jobs made by older versions (read, never written)."""
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

    def read_image(self, path: Path) -> np.ndarray:
        """An image of the job folder, read only when no link on its way leads elsewhere (one
        planted after the plan was checked must not make a worker read any image it can)."""
        check_no_link_on_the_way(self.root, path)
        return load_image(path)

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
        """The folder of ``unit``'s claims (see ``try_lock``)."""
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

    def curvature_path(self, key: str, pass_index: int, frame_file: str) -> Path:
        """Where a frame's L-BFGS curvature from a pass waits for its next pass (see videostyle.curvature)."""
        return self.stylized_dir(key) / "curvature" / f"pass_{pass_index:02d}_{Path(frame_file).stem}.npz"

    def anchors_dir(self, key: str) -> Path:
        """Anchor frames have one result shared by every pass."""
        return self.stylized_dir(key) / "anchors"

    def pass_dirs(self, key_dir: Path) -> dict[int, Path]:
        """The pass folders found under a style key's folder, by pass number."""
        found = (re.fullmatch(r"pass_(\d+)", d.name) for d in sorted(key_dir.iterdir()) if d.is_dir())
        return {int(m[1]): key_dir / m[0] for m in found if m}

    def entries(self) -> tuple[Path, ...]:
        """Every entry the job writes into or deletes (for the check that none leads outside)."""
        return (self.manifest_path, self.journal_path, self.journal_dir, self.final_marker, self.frames_dir, self.flow_root,
                self.stylized_root, self.final_dir, self.locks_dir, self.styles_dir, self.audio_copy,
                self.masks_root)


# ---------------------------------------------------------------- locks
#
# A unit's lock is a folder ``locks/<unit>/`` of numbered claims: ``N.lock`` is claim number N,
# written once and then only touched by its holder's heartbeat; ``N.free`` says claim N was given
# back. The unit is held by the highest-numbered claim when that is a ``.lock`` still alive. To
# claim, a worker creates the next number with ``link()``, which fails when the name exists, on
# NFS as locally: of several workers that find the unit free (or its holder dead), exactly one
# gets the number, and there is no moment when two hold it. A holder that paused past its
# lifetime finds a higher number before it publishes, and gives up (``Lock.still_held``).
#
# Ages are measured on the file server's clock: a lock's age is the difference between its mtime
# and the mtime of a probe file the worker touches just then, both set by the server, so a client
# whose clock runs fast or slow neither takes live locks nor keeps dead ones. Each claim stores
# its own lifetime. The owner is a random token; the process id is only used to see at once that a
# holder in this very process namespace and boot is gone (so a killed local run resumes without
# waiting), never across hosts or containers, whose PIDs mean nothing here.


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _pid_namespace() -> str:
    try:
        stat = os.stat("/proc/self/ns/pid")
    except OSError:
        return ""
    return f"{stat.st_dev}:{stat.st_ino}"


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22): a PID reused
    by another process has another."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return ""
    return fields[19] if len(fields) > 19 else ""


def process_identity() -> dict[str, Any]:
    """Who this process is, well enough to tell on this machine whether it still runs."""
    return {"boot": _boot_id(), "pidns": _pid_namespace(), "pid": os.getpid(), "start": _start_time(os.getpid())}


def _identity_is_gone(holder: dict[str, Any]) -> bool:
    """The holder ran in this boot and PID namespace and its process no longer runs (with the
    same start time). Anything else (another host, another container) is not known to be gone."""
    here = process_identity()
    if not (here["boot"] and here["pidns"]) or (holder.get("boot"), holder.get("pidns")) != (here["boot"], here["pidns"]):
        return False
    pid = holder.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    return _start_time(pid) != holder.get("start")


def server_now(folder: Path) -> float:
    """The file server's time: the mtime of a probe file it has just created in ``folder``."""
    probe = folder / f".clock-{uuid.uuid4().hex}"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644))
        os.utime(probe)  # no times given: the server sets its own
        return probe.stat().st_mtime
    except OSError:
        return time.time()
    finally:
        probe.unlink(missing_ok=True)


_CLAIM = re.compile(r"(\d{8})\.(lock|free)")


def _claims(folder: Path) -> list[tuple[int, str]]:
    """The claims in a unit's lock folder, (number, "lock" | "free"), highest last."""
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted((int(m[1]), m[2]) for m in map(_CLAIM.fullmatch, names) if m)


def _claim_path(folder: Path, number: int, kind: str = "lock") -> Path:
    return folder / f"{number:08d}.{kind}"


@dataclass
class Lock:
    """An exclusive claim on one unit of work, kept alive by a heartbeat until released."""

    folder: Path
    number: int
    token: str
    ttl: float
    _stop: threading.Event
    _thread: threading.Thread | None = None
    lost: bool = False

    @property
    def path(self) -> Path:
        return _claim_path(self.folder, self.number)

    def start_heartbeat(self) -> None:
        def beat() -> None:
            while not self._stop.wait(self.ttl / 4):
                try:
                    os.utime(self.path)
                except FileNotFoundError:
                    self.lost = True
                    return

        self._thread = threading.Thread(target=beat, daemon=True)
        self._thread.start()

    def still_held(self) -> bool:
        """This claim is still the unit's: its file holds our token and no later claim exists
        (a worker paused past its lifetime has been replaced, and must not publish)."""
        if self.lost or read_json(self.path).get("token") != self.token:
            return False
        return all(number <= self.number for number, _kind in _claims(self.folder))

    def release(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        if not self.still_held():
            return
        try:
            os.close(os.open(_claim_path(self.folder, self.number, "free"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            pass
        self.path.unlink(missing_ok=True)


def try_lock(locks_dir: Path, unit: str, ttl: float = 600.0) -> Lock | None:
    """Claim ``unit``, or return None if a live worker holds it (see the notes above)."""
    folder = lock_path(locks_dir, unit)
    check_no_link_on_the_way(locks_dir.parent, folder)
    folder.mkdir(parents=True, exist_ok=True)
    check_no_link_on_the_way(locks_dir.parent, folder)
    token = uuid.uuid4().hex
    claims = _claims(folder)
    top = claims[-1] if claims else (0, "free")
    if top[1] == "lock" and claim_is_live(_claim_path(folder, top[0]), ttl, server_now(folder)):
        return None
    number = top[0] + 1
    body = json.dumps({"token": token, "ttl": ttl, "time": time.time(), **process_identity()}).encode()
    draft = folder / f".draft-{token}"
    fd = os.open(draft, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o644)
    try:
        os.write(fd, body)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(draft, _claim_path(folder, number))  # fails when the name exists: one winner
    except FileExistsError:
        return None
    finally:
        draft.unlink(missing_ok=True)
    _forget_older_claims(folder, number)
    lock = Lock(folder=folder, number=number, token=token, ttl=ttl, _stop=threading.Event())
    lock.start_heartbeat()
    return lock


def _forget_older_claims(folder: Path, number: int) -> None:
    for older, kind in _claims(folder):
        if older < number:
            _claim_path(folder, older, kind).unlink(missing_ok=True)


def lock_path(locks_dir: Path, unit: str) -> Path:
    """The lock folder of ``unit`` (a unit's name may hold a ``/``)."""
    return locks_dir / unit.replace("/", "__")


def claim_is_live(path: Path, default_ttl: float, now: float) -> bool:
    """A claim's holder still works: its heartbeat touched the file within the lifetime the claim
    stores (``default_ttl`` for claims without one), on the server's clock ``now``, and it is
    not a process of this machine and namespace that is gone."""
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return False
    holder = read_json(path)
    ttl = holder.get("ttl", default_ttl)
    ttl = ttl if isinstance(ttl, (int, float)) and not isinstance(ttl, bool) and ttl > 0 else default_ttl
    if now - mtime > ttl:
        return False
    return not _identity_is_gone(holder)


def lock_is_live(locks_dir: Path, unit: str, ttl: float) -> bool:
    """The one rule for whether a unit is held (claiming and listing alike)."""
    folder = lock_path(locks_dir, unit)
    claims = _claims(folder)
    if not claims or claims[-1][1] != "lock":
        return False
    return claim_is_live(_claim_path(folder, claims[-1][0]), ttl, server_now(folder))
