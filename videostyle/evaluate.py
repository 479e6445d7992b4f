"""Evaluate a stylized result: read it and its input, get flows, run ``videostyle.metrics``.

What can be evaluated (``OUTPUT``): a video file, a folder of frame images (sorted by the numbers
in their names), or a job folder (its ``final/`` frames; its ``frames/`` are the default input;
flow is estimated on them by another estimator than the job's, and its ``flow/<key>/`` flows are
reused only when asked, see :func:`evaluate`). A frame folder inside a job
(``JOB/stylized/<key>/pass_03``) also finds the job's input frames and flows.

Frames are streamed pair by pair, so long videos do not have to fit in memory.
Flow folders use the authors' names: ``backward_{t}_{t-1}.flo`` (frames numbered from 1) and,
optionally, ``reliable_{t}_{t-1}.pgm`` beside it.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

import flow
from videostyle import metrics
from videostyle.config import StyleSettings, check_value, declared
from videostyle.errors import UserError
from videostyle.flowstage import recorded_method
from videostyle.images import load_image, resize
from videostyle.jobdir import JobDir

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".ppm", ".bmp", ".tif", ".tiff", ".webp")
# (backward flow t -> t-1, weights 0..1) for one pair
PairFlow = tuple[np.ndarray, np.ndarray]
FlowProvider = Callable[[int, np.ndarray, np.ndarray], PairFlow]


@dataclass
class OtherResult:
    """Another stylized result measured beside the output (``eval --against``): on the same input
    frames and the same flows, so its numbers compare with the output's frame by frame."""

    output: str
    n_frames: int  # of its frames, how many were measured
    warping: metrics.WarpingError
    style_distance: list[float] = field(default_factory=list)
    content_distance: list[float] = field(default_factory=list)


@dataclass
class EvalReport:
    """Everything ``videostyle eval`` measured. Distances are NaN when not measured.

    ``output_warping`` / ``input_warping`` are the warping errors of the stylized frames and of
    the unstylized input (the floor: what the flow cannot explain); frame numbers are 1-based.
    ``against``: other results measured the same way (see :class:`OtherResult`).
    """

    output: str
    input: str
    styles: list[str]
    size: tuple[int, int]  # (width, height) at which everything was measured
    n_frames: int
    flow_source: str
    output_warping: metrics.WarpingError
    input_warping: metrics.WarpingError
    style_distance: list[float] = field(default_factory=list)
    content_distance: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    against: list[OtherResult] = field(default_factory=list)

    @property
    def mean_style_distance(self) -> float:
        return metrics.nanmean(self.style_distance)

    @property
    def mean_content_distance(self) -> float:
        return metrics.nanmean(self.content_distance)


# ---------------------------------------------------------------------------------------------
# Reading frames


def frame_paths(folder: Path) -> list[Path]:
    """Image files in ``folder`` in frame order (by the numbers in their names, then by name)."""
    files = [p for p in Path(folder).iterdir()
             if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")]
    return sorted(files, key=_natural_key)


def iter_frames(source: Path) -> Iterator[np.ndarray]:
    """Yield HxWx3 uint8 RGB frames of a video file, a frame folder or a job folder (final/)."""
    source = Path(source)
    if not source.exists():
        raise UserError(f"not found: {source}")
    if source.is_dir():
        if JobDir(source).exists():
            source = _job_final_dir(source)
        paths = frame_paths(source)
        if not paths:
            raise UserError(f"no image files in folder {source}")
        for p in paths:
            yield load_image(p)
        return
    yield from _iter_video(source)


def _iter_video(path: Path) -> Iterator[np.ndarray]:
    import imageio.v2 as iio  # ffmpeg only where videos are read

    try:
        reader = iio.get_reader(str(path), "ffmpeg")
    except Exception as exc:  # imageio raises several types for unreadable files
        raise UserError(f"cannot read video {path}: {exc}".splitlines()[0]) from None
    try:
        for frame in reader:
            yield np.ascontiguousarray(frame[..., :3], dtype=np.uint8)
    finally:
        reader.close()


def _job_final_dir(job: Path) -> Path:
    final = JobDir(job).final_dir
    if final.is_dir() and frame_paths(final):
        return final
    raise UserError(f"job folder {job} has no final frames yet; evaluate a pass folder "
                    f"({job}/stylized/<key>/pass_NN) or finish the run")


def _natural_key(path: Path) -> list:
    return [int(tok) if tok.isdigit() else tok for tok in re.split(r"(\d+)", path.name)]


# ---------------------------------------------------------------------------------------------
# Flows


def folder_flow_provider(folder: Path, size: tuple[int, int], notes: list[str],
                         fallback: FlowProvider | None = None) -> FlowProvider:
    """Flows from a folder of ``backward_{t}_{t-1}.flo`` (+ optional ``reliable_{t}_{t-1}.pgm``).

    Flows of another size than ``size`` (width, height) are resized and their vectors scaled.
    Without a reliability map every pixel that the flow maps inside the frame counts. A missing
    flow is a user error, unless ``fallback`` is given (a job has no flow across a scene cut).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"flow folder not found: {folder}")
    warned: set[str] = set()

    def provide(t: int, _current: np.ndarray, _previous: np.ndarray) -> PairFlow:
        flo_path = folder / flow.flow_file_name(t, t - 1)
        if not flo_path.is_file() and fallback is not None:
            notes.append(f"no {flo_path.name} in {folder} (a scene cut?): flow estimated")
            return fallback(t, _current, _previous)
        if not flo_path.is_file():
            raise UserError(f"flow folder {folder} has no {flo_path.name} "
                            f"(expected backward_{{t}}_{{t-1}}.flo, frames numbered from 1)")
        try:
            flw = flow.read_flo(flo_path)
        except (flow.FlowError, OSError) as exc:
            raise UserError(f"cannot read {flo_path}: {exc}") from None
        pgm_path = folder / flow.reliable_file_name(t, t - 1)
        reliable = _read_pgm_or_none(pgm_path)
        if reliable is None and "nomask" not in warned:
            warned.add("nomask")
            notes.append(f"no {pgm_path.name} in {folder}: every pixel the flow maps inside "
                         "the frame counts as reliable")
        if (flw.shape[1], flw.shape[0]) != size:
            if "resize" not in warned:
                warned.add("resize")
                notes.append(f"flows are {flw.shape[1]}x{flw.shape[0]}, frames {size[0]}x{size[1]}: "
                             "flows resized and their vectors scaled")
            # nearest for the maps: a blend of reliable and unreliable pixels is neither
            flw = flow.resize_flow(flw, size[1], size[0])
            if reliable is not None:
                reliable = flow.resize_mask(reliable, size[1], size[0])
        return flw, metrics.flow_weights(flw, reliable)

    return provide


def estimating_flow_provider(method: str) -> FlowProvider:
    """Flows estimated on the input frames: backward t -> t-1, masks by the consistency check."""
    check_value(declared("flow", "method"), method, "flow_method")

    def provide(t: int, current: np.ndarray, previous: np.ndarray) -> PairFlow:
        log.info("estimating %s flow for frames %d <-> %d", method, t, t - 1)
        backward = flow.estimate_flow(current, previous, method)
        forward = flow.estimate_flow(previous, current, method)
        reliable = flow.consistency_check(backward, forward)
        return backward, metrics.flow_weights(backward, reliable)

    return provide


def job_flow_folder(job: Path) -> Path | None:
    """The ``JOB/flow/<key>`` folder with the most backward flows between consecutive frames.

    Ties go to the keys named in job.json, then to the most recently written folder.
    """
    root = JobDir(job).flow_root
    if not root.is_dir():
        return None
    preferred = _job_flow_keys(job)
    best, best_rank = None, None
    for folder in (d for d in root.iterdir() if d.is_dir()):
        count = sum(1 for p in folder.glob("backward_*_*.flo") if _is_consecutive(p.name))
        rank = (count, folder.name in preferred, folder.stat().st_mtime)
        if count and (best_rank is None or rank > best_rank):
            best, best_rank = folder, rank
    return best


def _is_consecutive(name: str) -> bool:
    frames = flow.flow_file_frames(name)
    return frames is not None and frames[0] == frames[1] + 1


def _job_flow_keys(job: Path) -> set[str]:
    """Flow stage keys mentioned in job.json (any string value under a key containing 'flow')."""
    manifest = JobDir(job).read_manifest()
    keys: set[str] = set()

    def walk(node, under_flow: bool) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, under_flow or "flow" in str(k).lower())
        elif isinstance(node, list):
            for v in node:
                walk(v, under_flow)
        elif isinstance(node, str) and under_flow:
            keys.add(node)

    walk(manifest, False)
    return keys


def _read_pgm_or_none(path: Path) -> np.ndarray | None:
    if not path.is_file():
        return None
    try:
        return flow.read_pgm(path)
    except (flow.FlowError, OSError) as exc:
        raise UserError(f"cannot read {path}: {exc}") from None


# ---------------------------------------------------------------------------------------------
# Evaluation


def evaluate(output: str | Path, input: str | Path | None = None,
             styles: Sequence[str | Path] = (), flow_dir: str | Path | None = None,
             flow_method: str | None = None, settings: StyleSettings | None = None,
             device: str = "auto", distances: bool = True,
             stylizer_factory: Callable[..., object] | None = None,
             against: Sequence[str | Path] = (), job_flows: bool = False) -> EvalReport:
    """Measure a stylized result against its input (see module doc for what ``output`` may be).

    ``input`` defaults to the job's extracted frames when ``output`` is in a job folder.
    Flows: ``flow_dir`` if given; else, with ``job_flows``, the job's own flows for these frames;
    else estimated on the input with ``flow_method``, by default an estimator other than the
    job's (see :func:`independent_method`): a result is consistent along the flow it was made
    with, so measuring with that flow hides the flow's errors (a job of the default preset scored
    0.07x of independent frames' error with its own flow). ``distances`` needs at least one style
    image; it loads VGG-19.
    ``stylizer_factory`` (tests, benchmarks) replaces ``videostyle.frame.stylize.Stylizer``.
    ``against``: other results (video, frame folder or job folder) measured in the same pass, on
    the same input and flows (each flow is read or estimated once), resized to the output's size.
    """
    output = Path(output)
    found = JobDir.containing(output) if output.exists() else None
    job = found.root if found is not None else None
    if input is None:
        if job is None or not JobDir(job).frames_dir.is_dir():
            raise UserError("--input is required unless OUTPUT is (in) a job folder")
        input = JobDir(job).frames_dir
    input = Path(input)
    notes: list[str] = []
    if distances and not styles:
        raise UserError("--style is required for style and content distances "
                        "(or skip them with --no-distances)")

    out_iter = iter_frames(output)
    in_iter = iter_frames(input)
    first_out = next(out_iter, None)
    first_in = next(in_iter, None)
    if first_out is None or first_in is None:
        raise UserError(f"no frames in {output if first_out is None else input}")
    size = (first_out.shape[1], first_out.shape[0])
    if (first_in.shape[1], first_in.shape[0]) != size:
        notes.append(f"input is {first_in.shape[1]}x{first_in.shape[0]}, output {size[0]}x{size[1]}: "
                     "input frames resized to the output size")

    provider, flow_source = _choose_flows(flow_dir, job, input, size, flow_method, notes, job_flows)
    stylizer = _make_stylizer(styles, settings, size, device, stylizer_factory) if distances else None
    main = _Track(output, stylizer)
    others = [_Track(Path(other), stylizer, iter_frames(Path(other))) for other in against]
    floor = _Track(input, None)
    n = 0
    for out_frame, in_frame in _zip_frames(first_out, out_iter, first_in, in_iter, notes):
        n += 1
        in_frame = resize(in_frame, size)
        prev_in = floor.previous
        # one flow per pair, read or estimated on first use, serves every result measured
        flow_of_pair = cache(lambda: provider(n, in_frame, prev_in)) if prev_in is not None else None
        main.add(n, out_frame, in_frame, flow_of_pair)
        floor.add(n, in_frame, in_frame, flow_of_pair)
        for other in others:
            other.add_next(n, size, in_frame, flow_of_pair, notes)
    if n < 2:
        raise UserError("need at least two frames to measure temporal consistency")
    for other in others:
        other.finish(n, notes)
    return EvalReport(output=str(output), input=str(input), styles=[str(s) for s in styles],
                      size=size, n_frames=n, flow_source=flow_source,
                      output_warping=metrics.summarize_pairs(main.pairs),
                      input_warping=metrics.summarize_pairs(floor.pairs),
                      style_distance=main.style_d, content_distance=main.content_d, notes=notes,
                      against=[other.result() for other in others])


@dataclass
class _Track:
    """One sequence of frames being measured: its warping error pair by pair, its distances."""

    path: Path
    stylizer: object | None
    frames: Iterator[np.ndarray] | None = None  # pulled by add_next (the --against results)
    previous: np.ndarray | None = None
    pairs: list[metrics.PairWarpingError] = field(default_factory=list)
    style_d: list[float] = field(default_factory=list)
    content_d: list[float] = field(default_factory=list)
    count: int = 0
    ended: bool = False

    def add(self, n: int, frame: np.ndarray, in_frame: np.ndarray,
            pair_flow: Callable[[], PairFlow] | None) -> None:
        """Frame ``n`` (1-based) of this sequence, beside input frame ``n``."""
        if self.previous is not None and pair_flow is not None:
            flw, weights = pair_flow()
            self.pairs.append(metrics.pair_warping_error(frame, self.previous, flw, weights, frame=n))
        if self.stylizer is not None:
            self.style_d.extend(metrics.style_distances([frame], self.stylizer))
            self.content_d.extend(metrics.content_distances([frame], [in_frame], self.stylizer))
        self.previous, self.count = frame, n

    def add_next(self, n: int, size: tuple[int, int], in_frame: np.ndarray,
                 pair_flow: Callable[[], PairFlow] | None, notes: list[str]) -> None:
        """Pull this sequence's frame ``n``, at the output's ``size``, and measure it."""
        frame = None if self.ended or self.frames is None else next(self.frames, None)
        if frame is None:
            self.ended = True
            return
        if (frame.shape[1], frame.shape[0]) != size:
            if n == 1:
                notes.append(f"{self.path} is {frame.shape[1]}x{frame.shape[0]}, the output "
                             f"{size[0]}x{size[1]}: its frames resized to the output size")
            frame = resize(frame, size)
        self.add(n, frame, in_frame, pair_flow)

    def finish(self, n: int, notes: list[str]) -> None:
        if self.count < 2:
            notes.append(f"{self.path} has fewer than two frames: no warping error for it")
        elif self.count < n:
            notes.append(f"{self.path} has {self.count} frames, the output {n}: measured its {self.count}")
        elif self.frames is not None and next(self.frames, None) is not None:
            notes.append(f"{self.path} has more frames than the output; measured its first {n}")

    def result(self) -> OtherResult:
        return OtherResult(str(self.path), self.count, metrics.summarize_pairs(self.pairs),
                           self.style_d, self.content_d)


# What measures a job's result when its own estimator must not: another algorithm, not another
# setting of the same one (the DIS variants share their errors), and none of the members a fused
# flow chose from (TV-L1: at 128 px 0.4-2.9 px endpoint error on the clip classes, as deepflow).
INDEPENDENT_FLOW = {"deepflow": "dis_dense", "fused": "tvl1"}
INDEPENDENT_FLOW_DEFAULT = "deepflow"
_FAMILY = {"dis_fine": "dis", "dis_dense": "dis"}


def independent_method(job_method: str | None) -> str:
    """The estimator ``eval`` measures a job with by default: not the job's own (``deepflow``,
    ``dis_dense`` for a job that used DeepFlow, ``tvl1`` for a fused one). ``job_method`` None: no
    job, or the user's files."""
    return INDEPENDENT_FLOW.get(_FAMILY.get(job_method or "", job_method or ""), INDEPENDENT_FLOW_DEFAULT)


def job_flow_method(job: Path) -> str | None:
    """The flow estimator the job's flows came from, as job.json records it (None: the user's own
    flow files, or not recorded)."""
    method = JobDir(job).read_manifest().get("flow", {}).get("method")
    # upsampled, or with other long-term pairs: the neighbours' estimator, which eval's pairs are
    method = recorded_method(method) if isinstance(method, str) else method
    return method if isinstance(method, str) and method in flow.available_methods() else None


def _choose_flows(flow_dir: Path | None, job: Path | None, input: Path, size: tuple[int, int],
                  flow_method: str | None, notes: list[str], job_flows: bool = False) -> tuple[FlowProvider, str]:
    if flow_dir is not None:
        return folder_flow_provider(Path(flow_dir), size, notes), f"folder {flow_dir}"
    # The job's flows belong to its extracted frames; for any other input they would not fit.
    own_frames = job is not None and input.resolve() == JobDir(job).frames_dir.resolve()
    if own_frames and job_flows:
        folder = job_flow_folder(job)
        if folder is not None:
            method = flow_method or INDEPENDENT_FLOW_DEFAULT
            return (folder_flow_provider(folder, size, notes, estimating_flow_provider(method)),
                    f"job flows {folder.name} (the result's own: their errors go unmeasured)")
        notes.append("the job has no flows to reuse: flow estimated")
    job_method = job_flow_method(job) if own_frames else None
    method = flow_method or independent_method(job_method)
    if job_method is None:
        return estimating_flow_provider(method), f"estimated ({method})"
    if method == job_method:
        notes.append(f"{method} is the job's own flow estimator: its errors go unmeasured")
        return estimating_flow_provider(method), f"estimated ({method}, the job's own estimator)"
    return estimating_flow_provider(method), f"estimated ({method}, not the job's {job_method})"


def _make_stylizer(styles, settings, size, device, factory):
    if factory is None:
        from videostyle.frame.stylize import Stylizer  # VGG only when distances are wanted
        factory = Stylizer
    style_images = [load_image(s) for s in styles]
    return factory(style_images, settings or StyleSettings(), (size[1], size[0]), device=device)


def _zip_frames(first_out, out_iter, first_in, in_iter, notes: list[str]):
    yield first_out, first_in
    n = 1
    for out_frame in out_iter:
        in_frame = next(in_iter, None)
        if in_frame is None:
            notes.append(f"output has more frames than input; measured the first {n}")
            return
        if out_frame.shape != first_out.shape:
            raise UserError(f"output frame {n + 1} is {out_frame.shape[1]}x{out_frame.shape[0]}, "
                            f"frame 1 is {first_out.shape[1]}x{first_out.shape[0]}")
        n += 1
        yield out_frame, in_frame
    if next(in_iter, None) is not None:
        notes.append(f"input has more frames than output; measured the first {n}")


# ---------------------------------------------------------------------------------------------
# Presenting


def report_to_dict(report: EvalReport) -> dict:
    """A JSON-ready dict (NaN becomes null)."""
    data = {
        "output": report.output, "input": report.input, "styles": report.styles,
        "size": list(report.size), "n_frames": report.n_frames, "flow_source": report.flow_source,
        "warping_error": {"output": _warping_dict(report.output_warping),
                          "input": _warping_dict(report.input_warping)},
        **_distances_dict(report.style_distance, report.content_distance),
        "against": [{"output": other.output, "n_frames": other.n_frames,
                     "warping_error": _warping_dict(other.warping),
                     **_distances_dict(other.style_distance, other.content_distance)}
                    for other in report.against],
        "notes": report.notes,
    }
    return _nan_to_none(data)


def _warping_dict(warping: metrics.WarpingError) -> dict:
    return {"mean_abs": warping.mean_abs, "mean_squared": warping.mean_squared,
            "per_frame": [asdict(p) for p in warping.pairs]}


def _distances_dict(style: list[float], content: list[float]) -> dict:
    return {"style_distance": {"mean": metrics.nanmean(style), "per_frame": style},
            "content_distance": {"mean": metrics.nanmean(content), "per_frame": content}}


def format_table(report: EvalReport) -> str:
    """A plain-text table: one row per frame, then the means."""
    has_d = bool(report.style_distance)
    head = ["frame", "warp err", "input warp err", "reliable %"]
    if has_d:
        head += ["style dist", "content dist"]
    head += [f"[{k}] warp err" for k in range(1, len(report.against) + 1)]
    rows = []
    pair_by_frame = {p.frame: (p, q) for p, q in zip(report.output_warping.pairs,
                                                     report.input_warping.pairs)}
    others = [{p.frame: p.mean_abs for p in other.warping.pairs} for other in report.against]
    for t in range(1, report.n_frames + 1):
        p, q = pair_by_frame.get(t, (None, None))
        row = [str(t), _f(p.mean_abs if p else None), _f(q.mean_abs if q else None),
               _f(100 * p.reliable_fraction if p else None, 1)]
        if has_d:
            row += [_f(report.style_distance[t - 1], 4), _f(report.content_distance[t - 1], 4)]
        rows.append(row + [_f(other.get(t)) for other in others])
    mean = ["mean", _f(report.output_warping.mean_abs), _f(report.input_warping.mean_abs),
            _f(100 * metrics.nanmean([p.reliable_fraction for p in report.output_warping.pairs]), 1)]
    if has_d:
        mean += [_f(report.mean_style_distance, 4), _f(report.mean_content_distance, 4)]
    mean += [_f(other.warping.mean_abs) for other in report.against]
    lines = [f"output: {report.output}", f"input:  {report.input}",
             *[f"[{k}] against: {other.output}" for k, other in enumerate(report.against, start=1)],
             f"size {report.size[0]}x{report.size[1]}, {report.n_frames} frames, "
             f"flows: {report.flow_source}",
             "warping error: mean |O_t - warp(O_t-1)| over reliable pixels, 0..255, RGB mean "
             f"(squared on 0..1, Lai et al.: output {_f(report.output_warping.mean_squared, 6)}, "
             f"input {_f(report.input_warping.mean_squared, 6)})",
             "", *_columns([head, *rows, mean])]
    lines += [f"note: {n}" for n in report.notes]
    return "\n".join(lines)


def format_table_rows(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Align a header and rows of strings in columns (also used by the benchmark)."""
    return "\n".join(_columns([list(header), *[list(r) for r in rows]]))


def _columns(table: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def _f(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def _nan_to_none(node):
    if isinstance(node, float) and math.isnan(node):
        return None
    if isinstance(node, dict):
        return {k: _nan_to_none(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_nan_to_none(v) for v in node]
    return node
