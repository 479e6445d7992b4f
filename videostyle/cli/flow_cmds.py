"""Commands: ``videostyle flow compute | check | show``: optical flow files, no external tools."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import numpy as np

import flow
from videostyle.cli.group import main
from videostyle.config import FlowSettings
from videostyle.errors import UserError
from videostyle.images import load_image, save_image
from videostyle.userfiles import check_new_file

_FILE = click.Path(dir_okay=False, path_type=Path)


@contextmanager
def _user_errors(output: Path | None = None) -> Iterator[None]:
    """Turn the flow library's errors, and failures to write ``output``, into one-line errors."""
    try:
        yield
    except flow.FlowError as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        if output is None or exc.errno == errno.ENOSPC:
            raise
        raise UserError(f"cannot write {output}: {exc.strerror or exc}") from None


@main.group("flow")
def flow_group() -> None:
    """Optical flow between frames: compute, check reliability, show.

    Flows are Middlebury .flo files; FLOW(a -> b) maps pixel x of a to x + w(x) in b.
    """


@flow_group.command("compute")
@click.argument("first", type=_FILE)
@click.argument("second", type=_FILE)
@click.argument("out", type=_FILE)
@click.option("--method", type=click.Choice(flow.available_methods()),
              default=FlowSettings().method, show_default=True, help="Flow estimator.")
def compute(first: Path, second: Path, out: Path, method: str) -> None:
    """Compute the flow FIRST -> SECOND (two images) into OUT (.flo)."""
    check_new_file(out, [first, second])
    a, b = load_image(first), load_image(second)
    with _user_errors(out):
        flw = flow.estimate_flow(a, b, method)
        flow.write_flo(out, flw)
    length = np.hypot(flw[..., 0], flw[..., 1])
    click.echo(f"{out}: {flw.shape[1]}x{flw.shape[0]} flow ({method}), "
               f"mean {length.mean():.2f} px, max {length.max():.2f} px")


@flow_group.command("check")
@click.argument("flow_file", metavar="FLOW", type=_FILE)
@click.argument("opposite_file", metavar="OPPOSITE", type=_FILE)
@click.argument("out", type=_FILE)
def check(flow_file: Path, opposite_file: Path, out: Path) -> None:
    """Reliability of FLOW checked against OPPOSITE, into OUT (.pgm, 255 = reliable).

    Same arguments and output as the authors' consistencyChecker: for FLOW = backward_2_1.flo,
    OPPOSITE = forward_1_2.flo, OUT is reliable_2_1.pgm.
    """
    check_new_file(out, [flow_file, opposite_file])
    with _user_errors(out):
        reliable = flow.consistency_check(flow.read_flo(flow_file), flow.read_flo(opposite_file))
        flow.write_pgm(out, reliable)
    click.echo(f"{out}: {(reliable >= 128).mean():.1%} of pixels reliable")


@flow_group.command("show")
@click.argument("flow_file", metavar="FLOW", type=_FILE)
@click.option("-o", "--output", type=_FILE, default=None,
              help="PNG to write [default: FLOW with .png].")
@click.option("--max-magnitude", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Flow length shown fully saturated [default: the longest vector].")
def show(flow_file: Path, output: Path | None, max_magnitude: float | None) -> None:
    """Draw FLOW as a colour-wheel PNG (hue = direction, saturation = length)."""
    output = output or flow_file.with_suffix(".png")
    check_new_file(output, [flow_file])
    with _user_errors(output):
        picture = flow.flow_to_color(flow.read_flo(flow_file), max_magnitude)
    save_image(output, picture)
    click.echo(f"{output}: {picture.shape[1]}x{picture.shape[0]}")
