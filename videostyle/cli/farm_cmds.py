"""Commands: ``videostyle plan`` and ``videostyle work``, for farms sharing one job folder."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import click

from videostyle.cli.group import main
from videostyle.device import limit_threads
from videostyle.farm import unit_states, work
from videostyle.pipeline import plan_from_job


@main.command()
@click.argument("job_dir", type=click.Path(path_type=Path))
@click.option("--all", "show_all", is_flag=True, help="List done units too.")
def plan(job_dir: Path, show_all: bool) -> None:
    """List the units of work of a job folder and their state."""
    states = unit_states(plan_from_job(job_dir))
    for s in states:
        if show_all or s.state != "done":
            needs = f"  needs {', '.join(s.unit.needs)}" if s.unit.needs and s.state == "waiting" else ""
            click.echo(f"{s.state:8} {s.unit.name}{needs}")
    counts = Counter(s.state for s in states)
    click.echo(", ".join(f"{counts[k]} {k}" for k in ("done", "running", "ready", "waiting")))


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
