"""An Open Job Description job bundle for a planned job folder (``videostyle openjd``).

Studios describe farm jobs in Open Job Description (the format of AWS Deadline Cloud; ``openjd``
from ``openjd-cli`` checks templates and runs them on one machine). The bundle is no new way of
working, only a description of the farm one: a step of N tasks that each run ``videostyle work
--until-done`` on the shared job folder (they claim units with the job's own locks, so any number
of them share the work, and a lost task costs only its unit), then a step after it that publishes
the final frames and encodes the video. Every machine-specific path is a PATH parameter, which
the farm's path mapping rewrites for a worker that mounts the share elsewhere; every parameter
defaults to the planned job's values, so the template runs as written. OpenJD takes a PATH
default only relative to the template's folder and inside it, so a path outside the bundle has
no default: its value goes to ``parameter_values.yaml`` (which Deadline Cloud's submitter reads)
and ``openjd run`` needs it as ``-p NAME=VALUE``. Plan the job into the bundle's folder
(``BUNDLE/job``) and the template runs with no parameter given.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import yaml

from flow.atomic import atomic_write_bytes
from videostyle.errors import UserError
from videostyle.pipeline import plan_from_job
from videostyle.plan import JobPlan
from videostyle.units import Unit
from videostyle.userfiles import check_new_file, check_output_outside_job_files, recorded_inputs

SPECIFICATION = "jobtemplate-2023-09"
TEMPLATE_NAME = "template.yaml"
PARAMETER_VALUES_NAME = "parameter_values.yaml"  # Deadline Cloud's file of values for a bundle
WORK_STEP = "Stylize"
FINISH_STEP = "Encode"
MAX_DEFAULT_WORKERS = 32  # a default only: a farm queue rarely gives one job more machines at once
GPU_AMOUNT = "amount.worker.gpu"  # OpenJD's name for a host's GPU count


def useful_parallelism(units: Sequence[Unit]) -> int:
    """How many units can run at once at most: the widest level of the dependency graph, a unit's
    level being one more than the deepest unit it needs. ``units`` in plan order (needs first).

    A simple upper bound (a segment's passes wait for each other, so the levels past the flows
    are narrower than the first); kept to one function so a finer measure can replace it.
    """
    level: dict[str, int] = {}
    for unit in units:
        level[unit.name] = 1 + max((level[n] for n in unit.needs if n in level), default=0)
    widths: dict[int, int] = {}
    for depth in level.values():
        widths[depth] = widths.get(depth, 0) + 1
    return max(widths.values(), default=1)


def default_workers(plan: JobPlan) -> int:
    """The worker tasks a bundle asks for unless told: the plan's useful parallelism, capped."""
    return max(1, min(MAX_DEFAULT_WORKERS, useful_parallelism(plan.units)))


def default_gpus(plan: JobPlan) -> int:
    """GPUs a worker host must have: one when the job is set to stylize on CUDA (``auto`` runs
    on any host, on its GPU when it has one)."""
    return 1 if plan.request.settings.video.device.strip().lower().startswith("cuda") else 0


@dataclass(frozen=True)
class BundleValues:
    """The planned job's values for the bundle's parameters, and what the template requires."""

    job_dir: Path
    output: Path | None  # None: a job planned without a video (the last step only publishes frames)
    workers: int
    gpus: int  # GPUs each worker host must have (a host requirement; 0: none required)


def bundle_values(plan: JobPlan, workers: int | None = None, gpus: int | None = None,
                  output: Path | None = None) -> BundleValues:
    """The planned job's values for its bundle; ``workers``, ``gpus`` and ``output`` replace them."""
    video = (output or plan.output).absolute() if plan.request.make_video else None
    return BundleValues(job_dir=plan.job.root, output=video,
                        workers=workers if workers is not None else default_workers(plan),
                        gpus=gpus if gpus is not None else default_gpus(plan))


def path_default(path: Path, bundle_dir: Path) -> str | None:
    """``path`` as OpenJD takes a PATH default: relative to the template's folder and inside it
    (``openjd`` refuses absolute defaults and ``..``); None for a path outside the bundle."""
    base, target = bundle_dir.absolute(), path.absolute()
    return os.path.relpath(target, base) if target.is_relative_to(base) else None


@dataclass(frozen=True)
class PathParameter:
    """A job parameter that names a place on the farm's storage (path-mapped per worker)."""

    name: str
    value: Path
    object_type: str  # FILE | DIRECTORY
    data_flow: str  # IN | OUT | INOUT
    label: str
    description: str

    def definition(self, bundle_dir: Path) -> dict[str, Any]:
        control = ("CHOOSE_DIRECTORY" if self.object_type == "DIRECTORY"
                   else "CHOOSE_INPUT_FILE" if self.data_flow == "IN" else "CHOOSE_OUTPUT_FILE")
        definition: dict[str, Any] = {"name": self.name, "type": "PATH", "objectType": self.object_type,
                                      "dataFlow": self.data_flow, "description": self.description,
                                      "userInterface": {"control": control, "label": self.label}}
        default = path_default(self.value, bundle_dir)
        if default is not None:
            definition["default"] = default
        return definition


def path_parameters(values: BundleValues) -> list[PathParameter]:
    parameters = [PathParameter("JobDir", values.job_dir, "DIRECTORY", "INOUT", "Job folder",
                                "The planned videostyle job folder, on storage every worker sees.")]
    if values.output is not None:
        parameters.append(PathParameter("Output", values.output, "FILE", "OUT", "Video",
                                        "Where the last step writes the video."))
    return parameters


def _parameters(values: BundleValues, bundle_dir: Path) -> list[dict[str, Any]]:
    return [*(p.definition(bundle_dir) for p in path_parameters(values)),
            {"name": "VggWeights", "type": "PATH", "objectType": "FILE", "dataFlow": "IN", "default": "",
             "description": "The job's VGG-19 weights as the workers see them "
                            "(empty: at the path the job was planned with).",
             "userInterface": {"control": "CHOOSE_INPUT_FILE", "label": "VGG-19 weights"}},
            {"name": "Workers", "type": "INT", "default": values.workers, "minValue": 1,
             "description": "Worker tasks that share the job's units (default: the plan's useful parallelism).",
             "userInterface": {"control": "SPIN_BOX", "label": "Workers"}},
            {"name": "ThreadsPerTask", "type": "INT", "default": 0, "minValue": 0,
             "description": "CPU threads each task may use (0: all the host's, or as OMP_NUM_THREADS says).",
             "userInterface": {"control": "SPIN_BOX", "label": "Threads per task"}}]


def parameter_values(values: BundleValues, bundle_dir: Path) -> dict[str, str]:
    """The PATH values that cannot be defaults (outside the bundle), for ``parameter_values.yaml``
    or ``openjd run -p NAME=VALUE``."""
    return {p.name: str(p.value) for p in path_parameters(values) if path_default(p.value, bundle_dir) is None}


def _work_args(*extra: str) -> list[str]:
    return ["work", "{{Param.JobDir}}", "--until-done", "--progress", "openjd",
            "--threads", "{{Param.ThreadsPerTask}}", "--weights", "{{Param.VggWeights}}", *extra]


def _on_run(args: list[str]) -> dict[str, Any]:
    return {"actions": {"onRun": {"command": "videostyle", "args": args}}}


def job_template(plan: JobPlan, values: BundleValues, bundle_dir: Path) -> dict[str, Any]:
    """The job template (OpenJD ``jobtemplate-2023-09``) for ``plan`` with ``values`` as defaults,
    to be written into ``bundle_dir``."""
    work_step: dict[str, Any] = {
        "name": WORK_STEP,
        "description": "Worker tasks: each runs `videostyle work --until-done` on the job folder; "
                       "they share its units through the folder's locks.",
        "parameterSpace": {"taskParameterDefinitions": [
            {"name": "Worker", "type": "INT", "range": "1-{{Param.Workers}}"}]},
        "script": _on_run(_work_args("--no-finish")),
    }
    if values.gpus > 0:
        work_step["hostRequirements"] = {"amounts": [{"name": GPU_AMOUNT, "min": values.gpus}]}
    finish_args = _work_args("-o", "{{Param.Output}}") if values.output is not None else _work_args()
    finish_step = {
        "name": FINISH_STEP,
        "description": "Publish the final frames and encode the video (any unit left over is done first).",
        "dependencies": [{"dependsOn": WORK_STEP}],
        "script": _on_run(finish_args),
    }
    return {
        "specificationVersion": SPECIFICATION,
        "name": _job_name(plan),
        "description": f"videostyle: {plan.n_frames} frames, {len(plan.units)} units of work in {plan.job.root.name}",
        "parameterDefinitions": _parameters(values, bundle_dir),
        "steps": [work_step, finish_step],
    }


def _job_name(plan: JobPlan) -> str:
    # a job name is a format string: no braces from a file name may open an expression
    return re.sub(r"[{}]", "", f"videostyle {plan.output.stem}")[:128]


@dataclass(frozen=True)
class Bundle:
    template: Path
    missing: dict[str, str]  # parameters without a default (outside the bundle): their planned values


def write_bundle(job_dir: Path, bundle_dir: Path, workers: int | None = None, gpus: int | None = None,
                 output: Path | None = None) -> Bundle:
    """Write the OpenJD job bundle of the planned job in ``job_dir`` into ``bundle_dir`` (made
    when missing): ``template.yaml``, and ``parameter_values.yaml`` with the paths that lie
    outside the bundle and so cannot be defaults."""
    plan = plan_from_job(job_dir)
    values = bundle_values(plan, workers, gpus, output)
    if bundle_dir.exists() and not bundle_dir.is_dir():
        raise UserError(f"{bundle_dir} is a file, not a folder for the bundle")
    check_bundle_is_ours(bundle_dir)
    check_output_outside_job_files(bundle_dir / TEMPLATE_NAME, "job bundle")
    if output is not None:  # the Encode step's -o: refused there too, but better before the farm starts
        check_new_file(output.absolute(), recorded_inputs(plan.job), "video", "--video")
    bundle_dir.mkdir(parents=True, exist_ok=True)
    template = bundle_dir / TEMPLATE_NAME
    _write_yaml(template, job_template(plan, values, bundle_dir))
    missing = parameter_values(values, bundle_dir)
    values_file = bundle_dir / PARAMETER_VALUES_NAME
    if missing:
        _write_yaml(values_file, {"parameterValues": [{"name": k, "value": v} for k, v in missing.items()]})
    elif values_file.is_file():
        values_file.unlink()  # an older bundle's values, which the defaults now give
    return Bundle(template, missing)


def check_bundle_is_ours(bundle_dir: Path) -> None:
    """The files a bundle replaces (``template.yaml``, ``parameter_values.yaml``) are a bundle this
    command wrote before, or not there: a folder's own files of those names are never replaced."""
    template, values = bundle_dir / TEMPLATE_NAME, bundle_dir / PARAMETER_VALUES_NAME
    if not (template.exists() or values.exists()):
        return
    try:
        data = yaml.safe_load(template.read_text()) if template.is_file() else None
    except (OSError, yaml.YAMLError):
        data = None
    ours = (isinstance(data, dict) and data.get("specificationVersion") == "jobtemplate-2023-09"
            and str(data.get("name", "")).startswith("videostyle "))
    if not ours:
        raise UserError(f"{bundle_dir} holds a {TEMPLATE_NAME} or {PARAMETER_VALUES_NAME} that videostyle did not "
                        "write; give -o a new or empty folder")


def _write_yaml(path: Path, data: dict[str, Any]) -> None:
    atomic_write_bytes(path, yaml.safe_dump(data, sort_keys=False, width=120).encode())
