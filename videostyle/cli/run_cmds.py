"""Commands: ``videostyle run`` (the whole job, resumable) and ``videostyle status``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from tqdm import tqdm

from videostyle.cli import main
from videostyle.config import resolve_settings
from videostyle.errors import UserError
from videostyle.pipeline import Engine, RunRequest, StageEvent, prepare, run
from videostyle.scheduler import Progress
from videostyle.status import job_status
from videostyle.video_io import parse_frame_range, parse_size


def _floats(text: str | None, what: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise UserError(f"bad {what} {text!r}: expected numbers separated by commas") from None


def _ints(text: str | None, what: str) -> tuple[int, ...] | None:
    values = _floats(text, what)
    if values is None:
        return None
    if any(v != int(v) for v in values):
        raise UserError(f"bad {what} {text!r}: expected whole numbers separated by commas")
    return tuple(int(v) for v in values)


def _names(text: str | None) -> tuple[str, ...] | None:
    return tuple(x.strip() for x in text.split(",") if x.strip()) if text else None


def _iterations(text: str | None) -> dict[str, int]:
    """``N`` or ``FIRST,REST`` (single-pass, as the authors' -num_iterations)."""
    values = _ints(text, "iterations")
    if not values:
        return {}
    if len(values) > 2:
        raise UserError(f"bad iterations {text!r}: give N or FIRST,REST")
    first, rest = values[0], values[-1]
    return {"iterations": first, "iterations_first": first, "iterations_rest": rest}


class ProgressPrinter:
    """A tqdm bar per stage with ETA, and one summary line per stylized frame."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar: tqdm | None = None

    def __call__(self, event: StageEvent | Progress) -> None:
        if isinstance(event, StageEvent):
            self.close()
            self.bar = tqdm(total=event.total, desc=event.stage, unit="unit", dynamic_ncols=True,
                            disable=self.quiet, leave=True)
            return
        if self.bar is None:
            return
        self.bar.update(1)
        if not event.skipped and event.result is not None and event.unit.stage == "stylize" and not self.quiet:
            self.bar.write(_summary(event))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _summary(event: Progress) -> str:
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
@click.option("--style-blend-weights", help="Comma-separated weight per style image.")
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Output video (default: <input stem>_stylized.mp4 here).")
@click.option("--job-dir", type=click.Path(path_type=Path),
              help="Job folder with every intermediate result (default: <input stem>.videostyle/).")
@click.option("--preset", help="A preset from configs/ (default, singlepass, preview, ...).")
@click.option("--config", "config_file", type=click.Path(path_type=Path), help="A TOML settings file.")
@click.option("--size", help="Work at WIDTHxHEIGHT.")
@click.option("--width", type=int, help="Work at this width, keeping the aspect ratio.")
@click.option("--frames", "frame_range", help="Frame range FIRST-LAST (1-based, inclusive).")
@click.option("--fps", default="25", show_default=True, help="Frame rate of an image-sequence input.")
@click.option("--algorithm", type=click.Choice(["multipass", "singlepass"]))
@click.option("--passes", type=int, help="Multi-pass: number of passes.")
@click.option("--iterations", help="Iterations per pass (multi-pass), or FIRST,REST (single-pass).")
@click.option("--temporal-weight", type=float)
@click.option("--temporal-from", type=int, help="Multi-pass: first pass with the temporal loss.")
@click.option("--blend-weight", type=float, help="Multi-pass: weight of the warped neighbour in the blend.")
@click.option("--blend-weight-other", type=float, help="Multi-pass: weight of the neighbour on the other side.")
@click.option("--long-term", help="Single-pass: frame offsets for the temporal loss, e.g. 1,2,4.")
@click.option("--long-term-combine", type=click.Choice(["closest_first", "normalize"]))
@click.option("--init", type=click.Choice(["random", "content"]), help="First frame / pass-1 start.")
@click.option("--init-rest", type=click.Choice(["prev_warped", "prev", "first", "random", "content"]),
              help="Single-pass: start of the frames after the first.")
@click.option("--flow", "flow_method", help="Optical flow method (deepflow, dis, dis_fine, tvl1, farneback).")
@click.option("--flow-files", type=click.Path(path_type=Path),
              help="Use your own .flo files (named forward_i_j.flo / backward_j_i.flo) from this folder.")
@click.option("--content-weight", type=float)
@click.option("--style-weight", type=float)
@click.option("--tv-weight", type=float)
@click.option("--content-layers")
@click.option("--style-layers")
@click.option("--style-scale", type=float)
@click.option("--pooling", type=click.Choice(["max", "avg"]))
@click.option("--optimizer", type=click.Choice(["lbfgs", "adam"]))
@click.option("--learning-rate", type=float)
@click.option("--tol-loss-relative", type=float)
@click.option("--tol-loss-relative-interval", type=int)
@click.option("--normalize-gradients/--no-normalize-gradients", default=None)
@click.option("--temporal-criterion", type=click.Choice(["mse", "smoothl1"]))
@click.option("--original-colors/--no-original-colors", default=None, help="Keep the video's colours.")
@click.option("--weights", type=click.Path(path_type=Path), help="Other VGG-19 weights file.")
@click.option("--float32", is_flag=True, default=None, help="Force float32 (no reduced precision).")
@click.option("--seed", type=int)
@click.option("--device", help="auto, cpu, cuda or cuda:N.")
@click.option("--scene-cuts", type=click.Choice(["auto", "off"]), help="Detect scene cuts (default auto).")
@click.option("--cut-threshold", type=float, help="Cut detection threshold, 0..1 (default 0.5).")
@click.option("--cuts", help="Frames that start a new shot, e.g. 120,340 (instead of detection).")
@click.option("--segment-length", type=int,
              help="Split shots longer than this into segments stylized in parallel (0: never).")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="Run units here one by one, or as Ray tasks.")
@click.option("--ray-address", help="Ray cluster to join (auto, ray://head:10001); default starts one here.")
@click.option("--ray-cpus", type=int, help="CPUs of the embedded Ray (default: all).")
@click.option("--ray-gpus", type=float, default=0.0, help="GPUs each Ray task asks for (e.g. 1 or 0.5).")
@click.option("--plan-only", is_flag=True,
              help="Prepare the job folder (frames, cuts, plan) for `videostyle work` and stop.")
@click.option("--no-video", is_flag=True, help="Stop after the final frames; do not encode a video.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
def run_command(**opts: Any) -> None:
    """Stylize a video (or image sequence) INPUT; run again to resume."""
    settings = resolve_settings(opts["preset"], opts["config_file"], _overrides(opts))
    request = RunRequest(
        input=opts["input"], styles=tuple(opts["styles"]), settings=settings, output=opts["output"],
        job_dir=opts["job_dir"], size=parse_size(opts["size"]) if opts["size"] else None, frames=parse_frame_range(opts["frame_range"]) if opts["frame_range"] else None,
        fps=opts["fps"], flow_files=opts["flow_files"], cuts=_ints(opts["cuts"], "cuts"),
        make_video=not opts["no_video"])
    if opts["plan_only"]:
        plan = prepare(request)
        click.echo(f"planned {len(plan.units)} units in {plan.job.root}; "
                   f"run `videostyle work {plan.job.root}` on each worker")
        return
    engine = Engine(kind=opts["engine"], address=opts["ray_address"], num_cpus=opts["ray_cpus"],
                    gpus_per_task=opts["ray_gpus"])
    printer = ProgressPrinter(opts["quiet"])
    try:
        result = run(request, on_event=printer, engine=engine)
    finally:
        printer.close()
    if result.output:
        click.echo(f"wrote {result.output} ({result.n_frames} frames); frames in {result.final_dir}")
    else:
        click.echo(f"final frames in {result.final_dir} ({result.n_frames} frames)")


run_command.name = "run"


def _overrides(opts: dict[str, Any]) -> dict[str, dict[str, Any]]:
    style = {k: opts[k] for k in ("content_weight", "style_weight", "tv_weight", "style_scale", "pooling",
                                  "optimizer", "learning_rate", "tol_loss_relative",
                                  "tol_loss_relative_interval", "normalize_gradients", "original_colors",
                                  "temporal_criterion")}
    style["content_layers"] = _names(opts["content_layers"])
    style["style_layers"] = _names(opts["style_layers"])
    style["style_blend_weights"] = _floats(opts["style_blend_weights"], "style blend weights")
    style["weights"] = str(opts["weights"]) if opts["weights"] else None
    style["precision"] = "float32" if opts["float32"] else None
    video = {k: opts[k] for k in ("algorithm", "passes", "temporal_weight", "temporal_from", "blend_weight",
                                  "blend_weight_other", "long_term_combine", "init", "init_rest", "seed",
                                  "device", "width", "scene_cuts", "cut_threshold", "segment_length")}
    video.update(_iterations(opts["iterations"]))
    flow_opts = {"method": opts["flow_method"], "long_term": _ints(opts["long_term"], "long-term offsets")}
    return {"style": style, "video": video, "flow": flow_opts}


@main.command()
@click.argument("job_dir", type=click.Path(path_type=Path))
def status(job_dir: Path) -> None:
    """Show what is done and what is left in a job folder."""
    for line in job_status(job_dir):
        click.echo(line)
