"""Run a job's units as Ray tasks (``videostyle run … --engine ray``).

Each unit becomes a task that depends on the tasks of the units it needs. A task carries only the
job folder and the unit's name: the worker rebuilds the plan from the folder (the request saved
there), takes the unit's lock and writes its outputs into the shared folder. Nothing but names
and small summaries travels through Ray, so a lost worker costs only its unfinished unit, and a
re-run (with any engine) finishes the job.

Ray shows a task only the GPUs it asked for, so the resources follow the unit: a stylization task
asks for a GPU when the job stylizes on one (``--device cuda``, or ``auto`` on a cluster that has
GPUs, or as ``--ray-gpus`` says), and a flow task (OpenCV, CPU only) never does, so it does not
hold a GPU that a stylization task could use.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from videostyle.errors import UserError
from videostyle.executor import run_when_free
from videostyle.pipeline import plan_from_job
from videostyle.plan import JobPlan
from videostyle.units import EventCallback, StageEvent, Unit, UnitProgress, UnitResult, is_done

log = logging.getLogger(__name__)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UserError("--engine ray needs Ray: pip install 'videostyle[ray]'") from None
    return ray


def _require_ray_client() -> None:
    # Plain `pip install ray` leaves out the client; Ray's own message names a package, not our extra.
    try:
        import grpc  # noqa: F401
    except ImportError:
        raise UserError("a ray:// address needs the Ray client: pip install 'videostyle[ray]'") from None


@cache
def _worker_plan(job_dir: str) -> JobPlan:
    # One plan (and so one loaded VGG) per worker process, reused by all its tasks.
    return plan_from_job(Path(job_dir))


def _run_unit(job_dir: str, name: str, lock_ttl: float, *needs_done: Any) -> dict[str, Any]:
    plan = _worker_plan(job_dir)
    unit = next(u for u in plan.units if u.name == name)
    start = time.monotonic()
    result = run_when_free(unit, plan.job, plan.check, lock_ttl, poll_seconds=1.0)
    resources = _assigned_resources()
    if result is None:  # another worker did it
        return {"name": name, "skipped": True, "seconds": 0.0, "losses": {}, "iterations": 0,
                "resources": resources}
    return {"name": name, "skipped": False, "seconds": time.monotonic() - start, "losses": result.losses,
            "iterations": result.iterations, "stop_reason": result.stop_reason, "resources": resources}


def _assigned_resources() -> dict[str, float]:
    # what Ray gave this task (shown with -v): the proof that its request was the intended one
    import ray

    return {k: float(v) for k, v in ray.get_runtime_context().get_assigned_resources().items()}


def connect(address: str | None, num_cpus: int | None) -> Any:
    """Join a cluster at ``address`` (``auto``, ``ray://head:10001``), or start an embedded one."""
    client = bool(address and address.startswith("ray://"))
    if client:
        _use_token_auth_when_a_token_exists()  # before Ray is imported: it reads the mode once
    ray = _import_ray()
    if ray.is_initialized():
        return ray
    if client:
        _require_ray_client()
    try:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            # "local": a new embedded Ray even when `ray start` left a cluster running on this machine
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        hint = (" (is the Ray client server running there, and does it need a token: RAY_AUTH_TOKEN?)"
                if client else "")
        raise UserError(f"cannot start or join Ray ({address or 'local'}): {exc}{hint}") from None
    return ray


def _use_token_auth_when_a_token_exists() -> None:
    # ray.init(address="auto") turns token authentication on by itself when RAY_AUTH_MODE is unset
    # and a token exists; the Ray client does not, and a cluster that wants the token then only
    # says "connection timeout". Follow the same rule for the client.
    if "RAY_AUTH_MODE" in os.environ:
        return
    token_file = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    if os.environ.get("RAY_AUTH_TOKEN") or token_file.is_file():
        os.environ["RAY_AUTH_MODE"] = "token"


@dataclass(frozen=True)
class RayExecutor:
    """The units as Ray tasks (``videostyle run --engine ray``), each after the tasks it needs."""

    address: str | None = None  # Ray cluster to join; None starts an embedded one
    num_cpus: int | None = None  # embedded Ray only
    gpus_per_task: float | None = None  # per stylization task; None: 1 when the job stylizes on a GPU
    lock_ttl: float = 600.0

    def run(self, plan: JobPlan, emit: EventCallback) -> None:
        emit(StageEvent("flow+stylize", len(plan.units)))
        run_units_on_ray(plan, self, emit)


def run_units_on_ray(plan: JobPlan, engine: RayExecutor, emit: EventCallback) -> None:
    """Submit every unit that is not done as a task after the tasks it needs; wait for all."""
    device = plan.request.settings.video.device
    check_gpu_request(device, engine.gpus_per_task)
    ray = connect(engine.address, engine.num_cpus)
    gpus = stylize_gpus(device, engine.gpus_per_task, float(ray.cluster_resources().get("GPU", 0.0)))
    remote = ray.remote(num_cpus=1, num_gpus=0, max_retries=2)(_run_unit)
    job_dir = str(plan.job.root)
    refs: dict[str, Any] = {}
    units = {u.name: u for u in plan.units}
    for unit in plan.units_by_critical_path:  # of tasks ready together, the longest chains go in first
        if is_done(unit, plan.check):
            continue
        deps = [refs[n] for n in unit.needs if n in refs]
        task = remote.options(name=unit.name, **unit_resources(unit, gpus))  # named in Ray's task list
        refs[unit.name] = task.remote(job_dir, unit.name, engine.lock_ttl, *deps)
    pending = list(refs.values())
    done_count = len(plan.units) - len(pending)
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        try:
            summary = ray.get(ready[0])
        except ray.exceptions.RayTaskError as exc:
            cause = exc.as_instanceof_cause() if hasattr(exc, "as_instanceof_cause") else exc
            if isinstance(cause, UserError):
                raise UserError(str(cause)) from None
            raise
        done_count += 1
        log.debug("%s ran on Ray with %s", summary["name"],
                  ", ".join(f"{k} {v:g}" for k, v in sorted(summary.get("resources", {}).items())) or "nothing")
        result = UnitResult(losses=summary["losses"], iterations=summary["iterations"],
                            stop_reason=summary.get("stop_reason", ""))
        emit(UnitProgress(units[summary["name"]], done_count, len(plan.units), summary["skipped"],
                          summary["seconds"], result))


def check_gpu_request(device: str, gpus_per_task: float | None) -> None:
    """``--ray-gpus`` that contradicts ``--device``, or a GPU index a task cannot see: one line,
    before any work."""
    kind = _device_kind(device)
    index = device.strip().partition(":")[2]
    visible = math.ceil(gpus_per_task) if gpus_per_task else 1  # Ray shows a task only its own GPUs
    if kind == "cuda" and index.isdigit() and int(index) >= visible:
        raise UserError(f"--device {device} names a GPU, but Ray shows each task only the {visible} it is given "
                        "(as cuda:0); use --device cuda")
    if gpus_per_task is None:
        return
    if gpus_per_task > 0 and kind in ("cpu", "mps"):
        raise UserError(f"--ray-gpus {gpus_per_task:g} asks a CUDA GPU for each stylization task, but --device "
                        f"{device} does not stylize on one; drop one of them")
    if gpus_per_task == 0 and kind == "cuda":
        raise UserError(f"--ray-gpus 0 hides the GPUs from the tasks, but --device {device} stylizes on one; "
                        "drop --ray-gpus or use --device auto")


def stylize_gpus(device: str, gpus_per_task: float | None, cluster_gpus: float) -> float:
    """GPUs each stylization task asks Ray for: ``--ray-gpus`` when given, else one when the job
    stylizes on CUDA (``cuda``, or ``auto`` on a cluster with GPUs), else none."""
    check_gpu_request(device, gpus_per_task)
    if gpus_per_task is not None:
        return gpus_per_task
    kind = _device_kind(device)
    if kind == "cuda" or (kind == "auto" and cluster_gpus > 0):
        if cluster_gpus == 0:
            log.warning("the job stylizes on CUDA but the Ray cluster has no GPU yet; "
                        "its stylization tasks wait until a GPU node joins")
        return 1.0
    return 0.0


def _device_kind(device: str) -> str:
    return (device or "auto").strip().lower().split(":")[0]


def unit_resources(unit: Unit, stylize_gpus_per_task: float) -> dict[str, float]:
    """What a unit's task asks Ray for: a CPU each, and the GPUs only for stylization units
    (flow is OpenCV, on the CPU)."""
    return {"num_cpus": 1, "num_gpus": stylize_gpus_per_task if unit.stage == "stylize" else 0}
