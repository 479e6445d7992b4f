"""A job's plan: what the stages produced for one request, and what a run hands back.

Built by ``videostyle.pipeline`` and handed to an executor (``videostyle.executor``): the plan
holds every unit of work; who runs them is the executor's business.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from videostyle.jobdir import JobDir
from videostyle.passes import PassContext
from videostyle.request import RunRequest
from videostyle.units import OutputCheck, Unit, by_critical_path
from videostyle.video_io import VideoInfo


@dataclass(frozen=True)
class JobPlan:
    """Everything needed to do, resume or share a job's work."""

    request: RunRequest
    job: JobDir
    info: VideoInfo
    n_frames: int
    output: Path
    units: tuple[Unit, ...]
    ctx: PassContext
    style_key: str
    cuts: tuple[int, ...]
    check: OutputCheck  # whether a unit's output may be trusted (see videostyle.verify)
    frames_source: str = ""  # identity of the input the frames came from (see framestage.input_identity)
    reads_input: bool = True  # False for a worker's plan: nothing outside the job folder is read

    @cached_property
    def units_by_critical_path(self) -> tuple[Unit, ...]:
        """The units, longest chain of work behind them first (worked out once per plan)."""
        return tuple(by_critical_path(self.units))

    @property
    def final_frames(self) -> list[Path]:
        """The verified result of every frame, in order: what ``final/`` publishes."""
        return [self.ctx.final_path(i) for i in range(1, self.n_frames + 1)]


@dataclass(frozen=True)
class RunResult:
    job_dir: Path
    output: Path | None
    final_dir: Path
    n_frames: int
    side_by_side: Path | None = None  # the input | result comparison video, when asked for
