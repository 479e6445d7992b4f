"""What a job folder holds: done and left per stage, read from the files themselves."""

from __future__ import annotations

from pathlib import Path

from videostyle.errors import UserError
from videostyle.flowstage import CAMERA_MARK, CHAIN_MARK, LONG_TERM_MARK, FlowStore
from videostyle.config import MAX_PASSES
from videostyle.jobdir import JobDir, is_stage_key, read_json
from videostyle.journal import stylize_records
from videostyle.video_io import frame_name


# A stage whose record in job.json is not what the planner writes: its folders are not looked for
# (a rewritten key could name one outside the job).
DAMAGED = "{stage}: the job's record of it is damaged; run `videostyle run` again to plan it anew"


def job_status(root: Path) -> list[str]:
    """Lines describing each stage of the job in ``root``."""
    job = JobDir(root)
    if not job.exists():
        raise UserError(f"{root} is not a videostyle job folder (no job.json)")
    manifest = job.read_manifest()
    n = int(manifest.get("frames", {}).get("count", 0))
    lines = [f"job {root}", f"input: {manifest.get('input', '?')}"]
    frames_done = sum(job.frame_path(i).is_file() for i in range(1, n + 1))
    lines.append(f"frames: {frames_done}/{n}")
    lines += _flow_lines(job, manifest, n)
    lines += _stylize_lines(job, manifest, n)
    final = read_json(job.final_marker)
    done_final = final.get("key") == manifest.get("stylize", {}).get("key")
    lines.append(f"final frames: {'done' if done_final else 'not yet'}")
    output = manifest.get("output")
    lines.append(f"video: {output if output and Path(output).is_file() else 'not yet'}")
    return lines


def _flow_lines(job: JobDir, manifest: dict, n: int) -> list[str]:
    info = manifest.get("flow")
    if not info:
        return ["flow: not needed or not started"]
    if not isinstance(info, dict) or not is_stage_key(info.get("key")):
        return [DAMAGED.format(stage="flow")]
    store = FlowStore(job.flow_dir(info["key"]))
    pairs = [tuple(p) for p in info.get("pairs", [])]
    done = sum(all(p.is_file() for p in store.pair_outputs(a, b)) for a, b in pairs)
    method = _flow_source_words(str(info.get("method")))
    return [f"flow ({method}): {done}/{len(pairs)} pairs"]


def _flow_source_words(source: str) -> str:
    """``fused+long:dis_dense+chain`` -> ``fused, long-term pairs dis_dense and the neighbours' flows
    composed``."""
    camera = source.endswith(CAMERA_MARK)
    source = source.removesuffix(CAMERA_MARK)
    chained = source.endswith(CHAIN_MARK)
    source = source.removesuffix(CHAIN_MARK)
    composed = "the neighbours' flows composed" + (" and the camera's motion" if camera else "")
    if LONG_TERM_MARK not in source:
        return f"{source}, long-term pairs with {composed}" if chained else source
    words = source.replace(LONG_TERM_MARK, ", long-term pairs ")
    return f"{words} and {composed}" if chained else words


def _stylize_lines(job: JobDir, manifest: dict, n: int) -> list[str]:
    info = manifest.get("stylize")
    if not info:
        return ["stylize: not started"]
    passes = info.get("passes", 1) if isinstance(info, dict) else None
    if not (isinstance(info, dict) and is_stage_key(info.get("key")) and isinstance(passes, int)
            and 1 <= passes <= MAX_PASSES):
        return [DAMAGED.format(stage="stylize")]
    lines = []
    anchors = info.get("anchors", [])
    records = stylize_records(job.root, info["key"])
    if anchors:
        folder = job.anchors_dir(info["key"])
        done = sum((folder / frame_name(i)).is_file() for i in anchors)
        lines.append(f"anchors: {done}/{len(anchors)} frames{_iterations(records, folder)}")
    for p in range(1, passes + 1):
        folder = job.pass_dir(info["key"], p)
        done = sum((folder / frame_name(i)).is_file() for i in range(1, n + 1) if i not in anchors)
        lines.append(f"pass {p}: {done}/{n - len(anchors)} frames{_iterations(records, folder)}")
    return lines


def _iterations(records: dict[Path, dict], folder: Path) -> str:
    """``, 412 iterations (41.2 per frame), 3 stopped converged, 7 at the budget`` from the journal,
    if it has them (and how many ended on a non-finite loss, when any did)."""
    mine = [e for path, e in records.items() if path.parent == folder]
    if not mine:
        return ""
    total = sum(int(e["iterations"]) for e in mine)
    stops = [e.get("stop") for e in mine]
    line = (f", {total} iterations ({total / len(mine):.1f} per frame), "
            f"{stops.count('converged')} stopped converged, {stops.count('budget')} at the budget")
    overflowed = stops.count("non-finite")
    return line + (f", {overflowed} on a non-finite loss" if overflowed else "")
