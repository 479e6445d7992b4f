"""Commands: ``videostyle eval`` (quality numbers) and ``videostyle sheet`` (contact sheet)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

from videostyle.cli.group import main
from videostyle.cli.settings_options import setting_option
from videostyle.jobdir import JobDir
from videostyle.userfiles import check_new_file, recorded_inputs

@main.command("eval")
@click.argument("output", type=click.Path(exists=True, path_type=Path))
@click.option("--input", "input_", type=click.Path(exists=True, path_type=Path),
              help="The unstylized clip (video or frame folder). Default: the job's frames.")
@click.option("--style", "styles", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Style image(s) the result was made with (repeat for several).")
@click.option("--flow", "flow_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of backward_{t}_{t-1}.flo (frames from 1), e.g. ground truth; "
                   "reliable_{t}_{t-1}.pgm beside them are used when present.")
@setting_option("flow", "method", "--flow-method", default=None,
                help="Flow estimated on the input when --flow is not given (default: deepflow, or dis_dense for a "
                     "job whose flows came from deepflow: never the job's own estimator).")
@click.option("--job-flows", is_flag=True,
              help="Measure a job with its own flows (flattering: the result was made consistent along "
                   "them, so their errors go unmeasured).")
@click.option("--no-distances", is_flag=True,
              help="Skip the style/content distances (no VGG; temporal error only).")
@setting_option("video", "device", help="Device of the style and content distances: auto, cpu, cuda or cuda:N.")
@click.option("--against", "others", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Another result (video, frame folder or job folder) to measure the same way, on the "
                   "same input and flows (repeat for several).")
@click.option("--plot", type=click.Path(path_type=Path),
              help="Also draw the warping error per frame into this .png, .pdf or .svg file.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of the table.")
def eval_command(output: Path, input_: Path | None, styles: tuple[Path, ...], flow_dir: Path | None,
                 method: str | None, job_flows: bool, no_distances: bool, device: str,
                 others: tuple[Path, ...], plot: Path | None, as_json: bool) -> None:
    """Measure a stylized OUTPUT (video, frame folder or job folder) against its input.

    Prints per frame: the temporal warping error (Lai et al. 2018: mean |O_t - warp(O_t-1)| over
    pixels the flow marks reliable, 0..255) of the output and of the input (the floor), and
    the style and content distances (relative Gram / relu4_2 differences).
    """
    from videostyle.evaluate import evaluate, format_table, report_to_dict
    from videostyle.plots import check_plot_path, plot_flicker

    if plot is not None:
        check_plot_path(plot)  # before the evaluation, which can take long
        # a job folder's own files are guarded by check_new_file; beside them is fine
        jobs = [JobDir(path) for path in (output, *others) if JobDir(path).exists()]
        read = [path for path in (output, *others) if not JobDir(path).exists()]
        read += [*([input_] if input_ else []), *styles, *([flow_dir] if flow_dir else [])]
        check_new_file(plot, read + [file for job in jobs for file in recorded_inputs(job)], "plot file", "--plot")
    report = evaluate(output, input_, styles=styles, flow_dir=flow_dir, flow_method=method,
                      device=device, distances=not no_distances, against=others, job_flows=job_flows)
    if as_json:
        click.echo(json.dumps(report_to_dict(report), indent=2, allow_nan=False))
    else:
        click.echo(format_table(report))
    if plot is not None:
        click.echo(f"wrote {plot_flicker(report, plot)}", err=as_json)
    if math.isnan(report.output_warping.mean_abs):
        click.echo("warning: no pair had reliable pixels; the warping error is undefined", err=True)


@main.command("sheet")
@click.argument("job", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("sheet.png"), show_default=True, help="PNG to write.")
@click.option("--frames", default=4, show_default=True, type=click.IntRange(1, 50),
              help="How many frames (columns), spread over the clip.")
@click.option("--passes", default=5, show_default=True, type=click.IntRange(1, 100),
              help="At most this many passes per stylization (first and last always).")
@click.option("--thumb-width", default=192, show_default=True, type=click.IntRange(16, 2000),
              help="Width of one cell in pixels.")
def sheet_command(job: Path, out: Path, frames: int, passes: int, thumb_width: int) -> None:
    """Contact sheet of JOB: input frames, flows, masks, each pass and the final frames."""
    from videostyle.sheet import write_contact_sheet

    path = write_contact_sheet(job, out, frames=frames, passes=passes, thumb_width=thumb_width)
    click.echo(f"wrote {path}")
