"""The flows stage of a job: a unit per frame pair that needs flow, and their files in the job folder.

Files are named as the authors' ``makeOptFlow.sh`` names them (``flow.flow_file_name``), frames
numbered from 1: ``forward_a_b.flo`` is the flow a -> b for a < b, ``backward_b_a.flo`` the flow
b -> a, and ``reliable_t_s.pgm`` the consistency-checked reliability of the flow t -> s (255 =
reliable). To bring frame s into frame t, warp it with the flow t -> s and weight by
``reliable_t_s``.

The flows are keyed by the frames and where the flows come from (a method, or the user's files)
only: pairs added later (longer offsets) land beside the ones already computed.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

import flow
from videostyle.config import SAME_METHOD, FlowSettings, stage_key
from videostyle.errors import UserError
from videostyle.frame.memory import CONSTANT_BYTES, GB, available_bytes
from videostyle.jobdir import JobDir
from videostyle.units import Unit, UnitResult


# Optical flow of one frame pair, both directions, with the consistency check: peak resident
# memory over the process's own measured 251 B/px (dis_dense) and 232 B/px (deepflow) at 1024x768
# on one thread; the frames, both flows and the check's arrays come on top.
FLOW_BYTES_PER_PIXEL = 400
# ``fused`` keeps its four members' flows both ways and runs one of them on frames twice the size:
# 1691 B/px measured the same way (dense DIS 413 in that run).
FUSED_BYTES_PER_PIXEL = 1800


def flow_bytes_per_pixel(method: str) -> int:
    return FUSED_BYTES_PER_PIXEL if method == "fused" else FLOW_BYTES_PER_PIXEL


def check_flow_fits(width: int, height: int, available: int | None = None, method: str = "") -> None:
    """A frame pair's flow by ``method`` fits in memory, or one line saying what size does (never
    OpenCV's "Insufficient memory" traceback)."""
    room = available_bytes("cpu") if available is None else available
    per_pixel = flow_bytes_per_pixel(method)
    needed = per_pixel * width * height + CONSTANT_BYTES
    if needed <= room:
        return
    scale = math.sqrt(max(0, room - CONSTANT_BYTES) / (per_pixel * width * height))
    fits = f"{int(width * scale) // 2 * 2}x{int(height * scale) // 2 * 2} or smaller fits" if scale * min(width, height) >= 16 \
        else "no frame fits; free some memory"
    by = f" by {method}" if method else ""
    raise UserError(f"optical flow{by} of {width}x{height} frames needs about {needed / GB:.1f} GB, "
                    f"{room / GB:.1f} GB available; {fits}")


def flow_unit_name(a: int, b: int) -> str:
    """Name of the unit that makes the flows and masks between frames a and b, either way round."""
    return f"flow/{min(a, b)}-{max(a, b)}"


@dataclass(frozen=True)
class FlowStore:
    """The flows and reliability masks of one job, in one folder."""

    root: Path

    def flow_path(self, t: int, s: int) -> Path:
        return self.root / flow.flow_file_name(t, s)

    def reliable_path(self, t: int, s: int) -> Path:
        return self.root / flow.reliable_file_name(t, s)

    def flow(self, t: int, s: int) -> np.ndarray:
        """HxWx2 float32 flow from frame t to frame s."""
        return flow.read_flo(self.flow_path(t, s))

    def reliability(self, t: int, s: int) -> np.ndarray:
        """HxW float32 weights in 0..1 for frame s warped into frame t."""
        return flow.read_pgm(self.reliable_path(t, s)).astype(np.float32) / 255.0

    def pair_outputs(self, a: int, b: int) -> tuple[Path, ...]:
        return (self.flow_path(a, b), self.flow_path(b, a), self.reliable_path(b, a), self.reliable_path(a, b))


FrameLoader = Callable[[int], np.ndarray]


@dataclass(frozen=True)
class FlowPlan:
    """The flows a job needs: where they live, the units that make them, and the manifest's record."""

    store: FlowStore
    units: list[Unit]
    record: dict[str, Any]  # job.json's "flow" entry, written by the planner


def plan_flows(job: JobDir, frames_key: str, source: str, pairs: list[tuple[int, int]], methods: PairMethods,
               flow_files: Path | None) -> FlowPlan:
    """The units that make the flows and masks of ``pairs`` from the job's frames (or bring the
    user's ``flow_files``); ``source`` says which (see ``planned_source``, ``recorded_source``)."""
    key = stage_key("flow", frames_key, source)
    store = FlowStore(job.flow_dir(key))
    units = flow_units(store, pairs, lambda i: job.read_image(job.frame_path(i)), methods, flow_files)
    return FlowPlan(store, units, {"key": key, "method": source, "pairs": [list(p) for p in pairs]})


# The kind of a flow unit between frames further apart than neighbours when those have an estimator
# of their own (``flow.long_term_method``), so that the plan's estimates time it apart.
LONG_TERM_FLOW_KIND = "flow long-term"


@dataclass(frozen=True)
class PairMethods:
    """Which estimator makes each pair's flow: ``method`` between neighbours, ``long_term`` (or
    ``method``, when ``same``) between frames further apart; each on frames ``upsample`` times larger.
    With ``chain``, a pair further apart takes per pixel its own flow or the neighbours' flows along
    the way composed (``flow.chain``), and with ``camera`` too the composition's global motion
    where the composition loses a pixel."""

    method: str
    long_term: str = SAME_METHOD
    upsample: int = 1
    chain: bool = False
    camera: bool = False

    @classmethod
    def of(cls, settings: FlowSettings) -> PairMethods:
        """The settings' methods; with no long-term offsets there is no long-term pair, and the
        flows are those (and have the key) of ``method`` alone."""
        has_long_term = any(offset > 1 for offset in settings.long_term)
        chain = settings.long_term_chain and has_long_term
        return cls(settings.method, settings.long_term_method if has_long_term else SAME_METHOD, settings.upsample,
                   chain, chain and settings.long_term_camera)

    @property
    def differ(self) -> bool:
        return self.long_term not in (SAME_METHOD, self.method)

    @property
    def beyond_neighbours(self) -> str:
        """The estimator of the pairs of frames further apart than neighbours."""
        return self.long_term if self.differ else self.method

    def for_pair(self, a: int, b: int) -> str:
        return self.beyond_neighbours if abs(a - b) > 1 else self.method

    def kind(self, a: int, b: int) -> str:
        return LONG_TERM_FLOW_KIND if (self.differ or self.chain) and abs(a - b) > 1 else ""

    def chained(self, a: int, b: int) -> bool:
        return self.chain and abs(a - b) > 1

    @property
    def source(self) -> str:
        """The methods as job.json records them and the flows' key holds them: ``dis_dense@x2``
        upsampled, ``fused+long:dis_dense`` with an estimator of their own for the long-term pairs
        (the flows of a job without one keep the key they always had), ``+chain`` with ``chain``,
        then ``+camera`` with ``camera``."""
        text = self.method if self.upsample == 1 else f"{self.method}@x{self.upsample}"
        text = f"{text}{LONG_TERM_MARK}{self.long_term}" if self.differ else text
        text = f"{text}{CHAIN_MARK}" if self.chain else text
        return f"{text}{CAMERA_MARK}" if self.camera else text


def long_term_camera_note(settings: FlowSettings) -> str | None:
    """A note when ``long_term_camera`` is asked for where no long-term pair is fused with a chain."""
    if not settings.long_term_camera or PairMethods.of(settings).camera:
        return None
    return ("note: --long-term-camera applies to long-term pairs fused with the neighbours' flows "
            "(--long-term beyond 1 and --long-term-chain); this run has none, so it changes nothing")


LONG_TERM_MARK = "+long:"
CHAIN_MARK = "+chain"
CAMERA_MARK = "+camera"


def recorded_method(source: str) -> str:
    """The neighbours' estimator of a recorded flow source (``fused@x2+long:dis_dense``: fused)."""
    return source.split(LONG_TERM_MARK)[0].split(CHAIN_MARK)[0].split("@x")[0]


def planned_source(methods: PairMethods, flow_files: Path | None) -> str:
    """What the planner's flows come from: the methods, or the user's files as they are now."""
    if flow_files is None:
        return methods.source
    return f"files:{file_tree_digest(flow_files)}"


def recorded_source(job: JobDir, methods: PairMethods, flow_files: Path | None) -> str:
    """What a worker's flows come from: the planner's record (the worker may not see the user's
    folder, and needs it only for flows not made yet); a folder it does see must hold the same files."""
    if flow_files is None:
        return methods.source
    recorded = job.read_manifest().get("flow", {}).get("method")
    if not (isinstance(recorded, str) and recorded.startswith("files:")):
        raise UserError("the job folder does not record which flow files it was planned with; "
                        "run `videostyle run` again")
    if flow_files.exists() and (not flow_files.is_dir() or f"files:{file_tree_digest(flow_files)}" != recorded):
        raise UserError(f"the flow files in {flow_files} differ from those the job was planned with; "
                        "run `videostyle run` again to plan with these")
    return recorded


def file_tree_digest(folder: Path) -> str:
    if not folder.is_dir():  # a worker's view: the folder the planner named is not on this machine
        raise UserError(f"flow folder not found: {folder}")
    h = hashlib.sha256()
    for path in sorted(folder.glob("*.flo")) + sorted(folder.glob("*.pgm")):
        h.update(path.name.encode())
        stat = path.stat()
        h.update(f"{stat.st_size}:{stat.st_mtime_ns};".encode())
    return h.hexdigest()[:16]


def flow_units(store: FlowStore, pairs: list[tuple[int, int]], load_frame: FrameLoader,
               methods: PairMethods, external: Path | None = None) -> list[Unit]:
    """One unit per pair (a, b), a < b: both flows and both reliability masks. A pair made with
    the neighbours' flows along the way (``methods.chain``) waits for their units; where one of those
    pairs is not planned (a scene cut between), it is made from the frames alone. A plan lists
    every unit after those it needs: the chained pairs come last."""
    planned = set(pairs)
    units, chained_units = [], []
    for a, b in pairs:
        steps = list(zip(range(a, b), range(a + 1, b + 1)))
        chained = external is None and methods.chained(a, b) and all(step in planned for step in steps)
        unit = Unit(name=flow_unit_name(a, b), stage="flow", outputs=store.pair_outputs(a, b),
                    needs=tuple(flow_unit_name(*step) for step in steps) if chained else (),
                    work=_pair_work(store, a, b, load_frame, methods.for_pair(a, b), external, methods.upsample,
                                    chained, methods.camera),
                    label=f"flow {a}<->{b}", kind="" if external is not None else methods.kind(a, b))
        (chained_units if chained else units).append(unit)
    return units + chained_units


def _pair_work(store: FlowStore, a: int, b: int, load_frame: FrameLoader, method: str,
               external: Path | None, upsample: int = 1, chained: bool = False,
               camera: bool = False) -> Callable[[], UnitResult]:
    def work() -> UnitResult:
        frame_a = load_frame(a)
        if external is not None:
            forward, backward = _external_pair(store, external, a, b, frame_a.shape[:2])
        else:
            frame_b = load_frame(b)
            # One estimator both ways: a fused one reuses its members' flows for the second.
            estimator = flow.create_estimator(method, upsample)
            forward = estimator(frame_a, frame_b)
            backward = estimator(frame_b, frame_a)
            if chained:
                forward, backward = flow.fuse_with_chain(frame_a, frame_b, (forward, backward),
                                                         _chained_flows(store, a, b, frame_a.shape[:2]), camera)
            flow.write_flo(store.flow_path(a, b), forward)
            flow.write_flo(store.flow_path(b, a), backward)
        _write_reliability(store, a, b, forward, backward, external)
        return UnitResult()

    return work


def _chained_flows(store: FlowStore, a: int, b: int, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The neighbours' flows between frames a < b composed, a -> b and b -> a; each read from the
    job's folder is checked to be a flow of the frames' size before it is used."""
    def read(t: int, s: int) -> np.ndarray:
        try:
            flw = store.flow(t, s)
        except flow.FlowError as exc:
            raise UserError(f"{store.flow_path(t, s)}: {exc}; remove it and run again") from None
        if flw.shape[:2] != tuple(shape):
            raise UserError(f"{store.flow_path(t, s)} is {flw.shape[1]}x{flw.shape[0]}, the frames "
                            f"{shape[1]}x{shape[0]}: remove it and run again")
        return flw

    return (flow.compose_flows([read(q, q + 1) for q in range(a, b)]),
            flow.compose_flows([read(q, q - 1) for q in range(b, a, -1)]))


def _external_pair(store: FlowStore, external: Path, a: int, b: int,
                   frame_shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Bring a user's flows for (a, b) into the job at the frames' size: flows made at the input's
    size serve a job worked smaller (``--width``, a preset's width) once resampled and rescaled."""
    flows = []
    for t, s in ((a, b), (b, a)):
        src = external / flow.flow_file_name(t, s)
        if not src.is_file():
            hint = (f" (frames {abs(a - b)} apart, for the long-term terms: give those flows too, or "
                    "--long-term 1 for neighbours only)") if abs(a - b) > 1 else ""
            raise UserError(f"flow file missing in {external}: {flow.flow_file_name(t, s)}{hint}")
        try:
            flows.append(flow.read_flo(src))
        except flow.FlowError as exc:
            raise UserError(str(exc)) from None
    if flows[0].shape != flows[1].shape:
        raise UserError(f"flows {flow.flow_file_name(a, b)} and {flow.flow_file_name(b, a)} in {external} "
                        "differ in size")
    forward, backward = (flow.resize_flow(f, *frame_shape) for f in flows)
    flow.write_flo(store.flow_path(a, b), forward)
    flow.write_flo(store.flow_path(b, a), backward)
    return forward, backward


def _write_reliability(store: FlowStore, a: int, b: int, forward: np.ndarray, backward: np.ndarray,
                       external: Path | None) -> None:
    """Reliability masks: the user's own when they brought them (at the frames' size), else the
    consistency check."""
    height, width = forward.shape[:2]
    for t, s, checked, opposite in ((b, a, backward, forward), (a, b, forward, backward)):
        given = external / flow.reliable_file_name(t, s) if external is not None else None
        if given is not None and given.is_file():
            try:
                mask = flow.read_pgm(given)
            except flow.FlowError as exc:
                raise UserError(str(exc)) from None
            flow.write_pgm(store.reliable_path(t, s), flow.resize_mask(mask, height, width))
        else:
            flow.write_pgm(store.reliable_path(t, s), flow.consistency_check(checked, opposite))
