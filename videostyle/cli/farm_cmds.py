"""Commands: ``videostyle plan``, ``videostyle work`` and ``videostyle openjd``, for farms sharing one
job folder."""

from __future__ import annotations

import json
import os
import shlex
from collections import Counter
from pathlib import Path

import click

from videostyle.cli.group import main
from videostyle.cli.progress import PROGRESS_MODES, worker_progress
from videostyle.farm import unit_states, work
from videostyle.frame.device import limit_threads
from videostyle.openjd import FINISH_STEP, PARAMETER_VALUES_NAME, write_bundle
from videostyle.pipeline import plan_from_job
from videostyle.workload import busy_note, forecast, forecast_json, forecast_lines, plan_tasks, unit_rates


@main.command()
@click.argument("job_dir", type=click.Path(path_type=Path))
@click.option("--all", "show_all", is_flag=True, help="List done units too.")
@click.option("--workers", "workers", type=click.IntRange(min=1), multiple=True,
              help="Also give the expected wall time with this many workers (repeatable).")
@click.option("--json", "as_json", is_flag=True,
              help="Print the figures and every unit with its needs and estimated cost as JSON.")
def plan(job_dir: Path, show_all: bool, workers: tuple[int, ...], as_json: bool) -> None:
    """List the units of work of a job folder and their state, and how parallel the job is: its
    work, its critical path and its expected wall time with 1 (and --workers) workers. Costs come
    from the units finished in the job (the journal), else from a short measurement here."""
    job_plan = plan_from_job(job_dir)
    load_before = os.getloadavg()[0]  # before the measurement adds to it
    rates = unit_rates(job_plan)
    tasks = plan_tasks(job_plan, rates)
    figures = forecast(tasks, (1, *workers))
    if as_json:
        click.echo(json.dumps(forecast_json(tasks, figures, rates), indent=1))
        return
    states = unit_states(job_plan)
    for s in states:
        if show_all or s.state != "done":
            needs = f"  needs {', '.join(s.unit.needs)}" if s.unit.needs and s.state == "waiting" else ""
            click.echo(f"{s.state:8} {s.unit.name}{needs}")
    counts = Counter(s.state for s in states)
    click.echo(", ".join(f"{counts[k]} {k}" for k in ("done", "running", "ready", "waiting")))
    for line in forecast_lines(figures, rates):
        click.echo(line)
    note = busy_note(load_before, os.cpu_count() or 1)
    if note and any(r.source == "measured" for r in rates.values()):
        click.echo(note, err=True)


@main.command(name="work")
@click.argument("job_dir", type=click.Path(path_type=Path))
@click.option("--until-done", is_flag=True, help="Keep taking units until none is left.")
@click.option("--lock-ttl", type=click.FloatRange(min=0, min_open=True), default=600.0, show_default=True,
              help="Seconds after which a silent worker's unit is given to another.")
@click.option("--threads", type=click.IntRange(min=0), default=None,
              help="CPU threads this worker may use (default or 0: all); e.g. 1 per worker on a shared machine.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where the worker that finishes the job writes the video "
                   "(default: in JOB_DIR, under the name it was planned with).")
@click.option("--overwrite", is_flag=True,
              help="Replace an existing -o that this job did not write (never one of its inputs).")
@click.option("--weights", default=None,
              help="The job's VGG-19 weights on this machine, when not at the path it was planned with "
                   "(checked to be the same file; empty: that path).")
@click.option("--no-finish", is_flag=True,
              help="Leave the final frames and the video to a later `videostyle work` (a farm job's last step).")
@click.option("--progress", type=click.Choice(PROGRESS_MODES), default="auto", show_default=True,
              help="A progress bar, OpenJD's openjd_progress/openjd_status lines, or nothing "
                   "(auto: openjd inside an OpenJD session, else bar).")
def work_command(job_dir: Path, until_done: bool, lock_ttl: float, threads: int | None,
                 output: Path | None, overwrite: bool, weights: str | None, no_finish: bool, progress: str) -> None:
    """Claim the next free unit of JOB_DIR, do it, and exit (farm worker).

    A worker writes only inside JOB_DIR and to the -o given here: paths read from the job folder
    are names inside it, whoever edited it.
    """
    if threads:
        limit_threads(threads)
    front_end = worker_progress(progress)
    try:
        report = work(job_dir, until_done=until_done, lock_ttl=lock_ttl, output=output,
                      weights=Path(weights) if weights else None,
                      finish=not no_finish, on_progress=front_end, overwrite=overwrite)
    finally:
        front_end.close()
    if report.finished:
        state = "job finished"
    elif report.all_done:
        state = "every unit done" + ("; the final frames and video are left to the last step" if no_finish else "")
    else:
        state = "units left for other workers or later runs"
    front_end.ended(f"did {report.units_done} unit(s); {state}", report.all_done)


@main.command(name="openjd")
@click.argument("job_dir", type=click.Path(path_type=Path))
@click.option("-o", "--output", "bundle_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder to write the job bundle into (template.yaml).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker tasks the job asks for by default (default: the plan's useful parallelism, at most 32).")
@click.option("--gpus", type=click.IntRange(min=0), default=None,
              help="GPUs a worker host must have (default: 1 when the job's --device is cuda, else none).")
@click.option("--video", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The video's default path (default: in JOB_DIR, under the name it was planned with).")
def openjd_command(job_dir: Path, bundle_dir: Path, workers: int | None, gpus: int | None,
                   video: Path | None) -> None:
    """Write an Open Job Description job bundle for the planned job in JOB_DIR.

    Its template runs N worker tasks (`videostyle work --until-done`), then a step that encodes the
    video; the job folder, the video and the VGG-19 weights are PATH parameters, so the farm maps
    them where its workers mount the share. Run it here with
    `openjd run BUNDLE/template.yaml --step Encode --run-dependencies`.
    """
    bundle = write_bundle(job_dir, bundle_dir, workers=workers, gpus=gpus, output=video)
    given = "".join(f" -p {name}={shlex.quote(value)}" for name, value in bundle.missing.items())
    click.echo(f"wrote {bundle.template}; run it here with "
               f"`openjd run {bundle.template} --step {FINISH_STEP} --run-dependencies{given}`, "
               f"or submit {bundle_dir} to the farm")
    if bundle.missing:
        click.echo(f"note: {', '.join(bundle.missing)} lie outside {bundle_dir}, so they have no default "
                   f"(OpenJD takes PATH defaults only inside the bundle); their values are in "
                   f"{bundle_dir / PARAMETER_VALUES_NAME}")
