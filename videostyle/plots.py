"""Plots of what ``videostyle eval`` measured: the warping error frame by frame (flicker).

One curve per stylized result (the output, each ``--against`` result) and one for the input, whose
warping error is the floor: what the flow itself cannot explain. Frame t's value is the mean
|O_t - warp(O_t-1)| over the pixels the flow marks reliable, in 0..255 (see ``videostyle.metrics``).

matplotlib is imported only when a plot is drawn, with the Agg backend (no display needed); files
are written atomically. No command-line code here: the CLI checks the path with
:func:`check_plot_path` before the long evaluation, then calls :func:`plot_flicker`.
"""

from __future__ import annotations

import dataclasses

import importlib.util
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from flow.atomic import replacing
from videostyle import metrics
from videostyle.errors import UserError
from videostyle.evaluate import EvalReport

PLOT_SUFFIXES = (".png", ".pdf", ".svg")


@dataclass(frozen=True)
class Curve:
    """One line of a plot: ``values[k]`` at frame ``frames[k]`` (1-based); NaN leaves a gap."""

    label: str
    frames: tuple[int, ...]
    values: tuple[float, ...]
    dashed: bool = False

    @property
    def mean(self) -> float:
        return metrics.nanmean(list(self.values))


def check_plot_path(path: Path) -> None:
    """Refuse, in one line, a plot file that could not be written (before any work is done)."""
    if path.suffix.lower() not in PLOT_SUFFIXES:
        raise UserError(f"plot file {path} must end in {', '.join(PLOT_SUFFIXES)} (the format follows the name)")
    if path.is_dir():
        raise UserError(f"plot file {path} is a folder; give a file name like flicker.png")
    folder = path.parent
    if not folder.is_dir():
        raise UserError(f"cannot write plot {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise UserError(f"cannot write plot {path}: folder {folder} is not writable")
    if importlib.util.find_spec("matplotlib") is None:
        raise UserError("plots need matplotlib: pip install matplotlib")


def flicker_curves(report: EvalReport) -> list[Curve]:
    """The output's warping error, each ``--against`` result's, and the input's (dashed, the floor)."""
    names = short_names([report.output, *(other.output for other in report.against)])
    stylized = [(names[0], report.output_warping)]
    stylized += [(name, other.warping) for name, other in zip(names[1:], report.against)]
    curves = [_curve(name, warping) for name, warping in stylized]
    return curves + [_curve("input (floor)", report.input_warping, dashed=True)]


def _curve(label: str, warping: metrics.WarpingError, dashed: bool = False) -> Curve:
    return Curve(label, tuple(p.frame for p in warping.pairs), tuple(p.mean_abs for p in warping.pairs), dashed)


def short_names(paths: Sequence[str]) -> list[str]:
    """The shortest trailing parts of each path that tell them apart (``pass_03`` of two jobs
    becomes ``a.videostyle/stylized/k/pass_03`` and ``b...``), for a legend."""
    parts = [Path(p).parts or (str(p),) for p in paths]
    depth = 1
    while True:
        names = ["/".join(ps[-depth:]) for ps in parts]
        if len(set(names)) == len(names) or depth >= max(len(ps) for ps in parts):
            return names
        depth += 1


def plot_flicker(report: EvalReport, path: Path) -> Path:
    """Draw the warping error per frame of ``report`` into ``path`` (.png, .pdf or .svg)."""
    # The means go into the legend: in the title, long result names ran off the figure.
    curves = [dataclasses.replace(c, label=f"{c.label} (mean {_number(c.mean)})") for c in flicker_curves(report)]
    title = f"Warping error per frame ({report.size[0]}x{report.size[1]}, flows: {report.flow_source})"
    plot_curves(curves, path, title)
    return path


def plot_curves(curves: Sequence[Curve], path: Path, title: str) -> None:
    """Write the curves as a line chart (x: frame, y: warping error 0..255), atomically."""
    check_plot_path(path)
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # imported here: only plots need it
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(8, 4.5), dpi=120, layout="constrained")
    FigureCanvasAgg(figure)  # Agg, whatever backend the user's matplotlib is set to
    axes = figure.add_subplot()
    longest = max((len(c.frames) for c in curves), default=0)
    for curve in curves:
        axes.plot(curve.frames, curve.values, label=curve.label,
                  linestyle="--" if curve.dashed else "-", marker="o" if longest <= 60 else None,
                  markersize=3, linewidth=1.5)
    axes.set_xlabel("frame")
    axes.set_ylabel("warping error (0..255)")
    axes.set_title(title, fontsize=9)
    axes.set_ylim(bottom=0)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8)
    with replacing(path, suffix=path.suffix) as tmp:
        figure.savefig(tmp, format=path.suffix.lower().lstrip("."))


def _number(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}"
