"""Commands: ``videostyle run`` (the whole job, resumable) and ``videostyle status``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from tqdm import tqdm

from videostyle.cli.group import main
from videostyle.cli.settings_options import settings_from_cli, settings_options
from videostyle.config import check_value, declared
from videostyle.errors import UserError
from videostyle.executor import Executor, LocalExecutor
from videostyle.pipeline import RunRequest, prepare, run, side_by_side
from videostyle.ray_engine import RayExecutor, check_gpu_request
from videostyle.units import StageEvent, UnitProgress
from videostyle.status import job_status
from videostyle.video_io import parse_frame_range, parse_size


def _ints(text: str | None, what: str) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise UserError(f"{what} takes whole numbers separated by commas (got {text!r})") from None


def _iterations(text: str | None) -> dict[str, int]:
    """``N`` or ``FIRST,REST`` (single-pass, as the authors' -num_iterations), checked as the
    iterations settings are."""
    values = _ints(text, "--iterations")
    if not values:
        return {}
    if len(values) > 2:
        raise UserError(f"--iterations takes N or FIRST,REST (got {text!r})")
    first, rest = values[0], values[-1]
    for value in (first, rest):
        check_value(declared("video", "iterations"), value, "--iterations")
    return {"iterations": first, "iterations_first": first, "iterations_rest": rest}


class ProgressPrinter:
    """A tqdm bar per stage with ETA, and one summary line per stylized frame."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar: tqdm | None = None

    def __call__(self, event: StageEvent | UnitProgress) -> None:
        if isinstance(event, StageEvent):
            self.close()
            self.bar = tqdm(total=event.total, desc=event.stage, unit="unit", dynamic_ncols=True,
                            disable=self.quiet, leave=True)
            return
        if self.bar is None:
            return
        self.bar.update(event.done - self.bar.n)  # the job's count: a farm worker's may jump (others' units)
        if not event.skipped and event.result is not None and event.unit.stage == "stylize" and not self.quiet:
            self.bar.write(_summary(event))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _summary(event: UnitProgress) -> str:
    assert event.result is not None
    losses = event.result.losses
    parts = " ".join(f"{k} {v:.3g}" for k, v in losses.items() if k != "total")
    total = losses.get("total", sum(losses.values()))
    return (f"{event.unit.label}: loss {total:.4g} ({parts}), "
            f"{event.result.iterations} it, {event.seconds:.1f} s")


@main.command()
@click.argument("input", type=click.Path(path_type=Path))
@click.option("--style", "-s", "styles", multiple=True, required=True, type=click.Path(path_type=Path),
              help="Style image (repeat for several).")
@click.option("--style-mask", "style_masks", multiple=True, type=click.Path(path_type=Path),
              help="Region of each --style, in order: a greyscale image (white = that style; soft edges blend) "
                   "or an image sequence (folder or printf pattern like mask_%04d.png) numbered like the "
                   "input's frames, for regions that move.")
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Output video (default: <input stem>_stylized.mp4 here).")
@click.option("--job-dir", type=click.Path(path_type=Path),
              help="Job folder with every intermediate result (default: <input stem>.videostyle/).")
@click.option("--preset", default="default", show_default=True,
              help="A preset shipped with videostyle (default, paper, singlepass, longterm, preview).")
@click.option("--config", "config_file", type=click.Path(path_type=Path), help="A TOML settings file.")
@click.option("--size", help="Work at WIDTHxHEIGHT.")
@click.option("--frames", "frame_range", help="Frame range FIRST-LAST (1-based, inclusive).")
@click.option("--fps", default="25", show_default=True, help="Frame rate of an image-sequence input.")
@click.option("--iterations", help="Iterations per pass (multi-pass), or FIRST,REST (single-pass).")
@click.option("--flow-files", type=click.Path(path_type=Path),
              help="Use your own .flo files (named forward_i_j.flo / backward_j_i.flo) from this folder; "
                   "flows at another size than the frames are rescaled.")
@click.option("--cuts", help="Frames that start a new shot, e.g. 120,340 (instead of detection).")
@settings_options("run")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="Run units here one by one, or as Ray tasks.")
@click.option("--ray-address", help="Ray cluster to join (auto, ray://head:10001); default starts one here.")
@click.option("--ray-cpus", type=click.IntRange(min=1), help="CPUs of the embedded Ray (default: all).")
@click.option("--ray-gpus", type=click.FloatRange(min=0), default=None,
              help="GPUs each stylization task asks Ray for (e.g. 1 or 0.5; flow tasks ask for none). "
                   "Default: 1 when the job stylizes on CUDA (--device cuda, or auto on a cluster with GPUs), else 0.")
@click.option("--plan-only", is_flag=True,
              help="Prepare the job folder (frames, cuts, plan) for `videostyle work` and stop.")
@click.option("--no-video", is_flag=True, help="Stop after the final frames; do not encode a video.")
@click.option("--side-by-side", is_flag=True,
              help="Also write <output stem>_side_by_side.mp4 beside the output: the input frames left, the "
                   "stylized frames right.")
@click.option("--overwrite", is_flag=True,
              help="Replace an existing output video that this job did not write (refused otherwise).")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
def run_command(overrides: dict[str, dict[str, Any]], learning_rate: float | None, **opts: Any) -> None:
    """Stylize a video (or image sequence) INPUT; run again to resume.

    Settings start from --preset (the `default` preset unless another is named), then --config,
    and options given here win over both. The defaults shown beside the options are the built-in
    ones (the paper's values), which a preset replaces.
    """
    overrides.setdefault("video", {}).update(_iterations(opts["iterations"]))
    settings = settings_from_cli(opts["preset"], opts["config_file"], overrides, learning_rate,
                                 n_styles=len(opts["styles"]))
    request = RunRequest(
        input=opts["input"], styles=tuple(opts["styles"]), settings=settings, output=opts["output"],
        job_dir=opts["job_dir"], size=parse_size(opts["size"]) if opts["size"] else None,
        frames=parse_frame_range(opts["frame_range"]) if opts["frame_range"] else None,
        fps=opts["fps"], flow_files=opts["flow_files"], cuts=_ints(opts["cuts"], "--cuts"),
        make_video=not opts["no_video"], style_masks=tuple(opts["style_masks"]),
        side_by_side=opts["side_by_side"], overwrite=opts["overwrite"])
    if opts["engine"] == "ray":
        check_gpu_request(settings.video.device, opts["ray_gpus"])
    if opts["plan_only"]:
        plan = prepare(request)
        click.echo(f"planned {len(plan.units)} units in {plan.job.root}; "
                   f"run `videostyle work {plan.job.root}` on each worker")
        return
    engine: Executor = (RayExecutor(address=opts["ray_address"], num_cpus=opts["ray_cpus"],
                                    gpus_per_task=opts["ray_gpus"])
                        if opts["engine"] == "ray" else LocalExecutor())
    printer = ProgressPrinter(opts["quiet"])
    try:
        result = run(request, on_event=printer, engine=engine)
    finally:
        printer.close()
    if result.output:
        click.echo(f"wrote {result.output} ({result.n_frames} frames); frames in {result.final_dir}")
        if result.side_by_side:
            click.echo(f"wrote {result.side_by_side} (input | stylized)")
    else:
        click.echo(f"final frames in {result.final_dir} ({result.n_frames} frames)")


run_command.name = "run"


@main.command("side-by-side")
@click.argument("job_dir", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Video to write (default: <video name>_side_by_side.mp4 in the job folder).")
@click.option("--overwrite", is_flag=True,
              help="Replace an existing -o that is not this job's side-by-side video (never one of its inputs).")
def side_by_side_command(job_dir: Path, output: Path | None, overwrite: bool) -> None:
    """Encode a finished job's input frames (left) beside its stylized frames (right)."""
    click.echo(f"wrote {side_by_side(job_dir, output, overwrite)} (input | stylized)")


@main.command()
@click.argument("job_dir", type=click.Path(path_type=Path))
def status(job_dir: Path) -> None:
    """Show what is done and what is left in a job folder."""
    for line in job_status(job_dir):
        click.echo(line)
