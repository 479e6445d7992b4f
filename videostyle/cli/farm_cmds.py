"""Commands: ``videostyle plan`` and ``videostyle work``, for farms sharing one job folder."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import click

from videostyle.cli.group import main
from videostyle.device import limit_threads
from videostyle.farm import unit_states, work
from videostyle.pipeline import plan_from_job
from videostyle.workload import forecast, forecast_json, forecast_lines, plan_tasks, unit_rates


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


@main.command(name="work")
@click.argument("job_dir", type=click.Path(path_type=Path))
@click.option("--until-done", is_flag=True, help="Keep taking units until none is left.")
@click.option("--lock-ttl", type=click.FloatRange(min=0, min_open=True), default=600.0, show_default=True,
              help="Seconds after which a silent worker's unit is given to another.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="CPU threads this worker may use (default: all); e.g. 1 per worker on a shared machine.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where the worker that finishes the job writes the video "
                   "(default: in JOB_DIR, under the name it was planned with).")
def work_command(job_dir: Path, until_done: bool, lock_ttl: float, threads: int | None,
                 output: Path | None) -> None:
    """Claim the next free unit of JOB_DIR, do it, and exit (farm worker).

    A worker writes only inside JOB_DIR and to the -o given here: paths read from the job folder
    are names inside it, whoever edited it.
    """
    if threads is not None:
        limit_threads(threads)
    report = work(job_dir, until_done=until_done, lock_ttl=lock_ttl, output=output)
    state = "job finished" if report.finished else "units left for other workers or later runs"
    click.echo(f"did {report.units_done} unit(s); {state}")
