"""`videostyle eval`: frame folders, flow folders, job folders, videos, and user errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import flow
import videostyle.cli.eval_cmds  # noqa: F401  (adds its commands to the group, whatever cli/__init__ imports)
from videostyle.cli import main
from videostyle.images import save_image

H, W, SHIFT, FLICKER = 24, 32, 2, 10


def moving_clip(n: int = 4) -> list[np.ndarray]:
    """Frames of a texture panning right by SHIFT px per frame: f_t(x) = f_{t-1}(x - SHIFT)."""
    big = np.random.default_rng(3).integers(40, 200, (H, W + SHIFT * n, 3)).astype(np.uint8)
    return [big[:, SHIFT * (n - t): SHIFT * (n - t) + W] for t in range(n)]


def flickering(frames: list[np.ndarray]) -> list[np.ndarray]:
    """A "stylization" that follows the motion but brightens every second frame by FLICKER."""
    return [f + (FLICKER if k % 2 else 0) for k, f in enumerate(frames)]


def write_frames(folder: Path, frames: list[np.ndarray]) -> Path:
    folder.mkdir(parents=True)
    for k, f in enumerate(frames, start=1):
        save_image(folder / f"frame_{k:05d}.png", f)
    return folder


def write_flows(folder: Path, n: int, reliable: np.ndarray | None = None, shape: tuple[int, int] | None = None) -> Path:
    """The clip's flows (pixel x of frame t was at x - SHIFT in frame t-1); with ``shape``, zero
    flows of that size."""
    folder.mkdir(parents=True)
    backward = np.zeros((*(shape or (H, W)), 2), np.float32)
    backward[..., 0] = 0 if shape else -SHIFT
    for t in range(2, n + 1):
        flow.write_flo(folder / f"backward_{t}_{t - 1}.flo", backward)
        if reliable is not None:
            flow.write_pgm(folder / f"reliable_{t}_{t - 1}.pgm", reliable)
    return folder


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def run_json(*args: str) -> dict:
    code, out = run(*args, "--json")
    assert code == 0, out
    return json.loads(out)


def test_known_flicker_with_given_flows(tmp_path):
    clip = moving_clip()
    inp = write_frames(tmp_path / "in", clip)
    out = write_frames(tmp_path / "out", flickering(clip))
    flows = write_flows(tmp_path / "flows", len(clip))
    data = run_json("eval", str(out), "--input", str(inp), "--flow", str(flows), "--no-distances")
    warp = data["warping_error"]
    assert warp["output"]["mean_abs"] == pytest.approx(FLICKER, abs=1e-4)
    assert warp["output"]["mean_squared"] == pytest.approx((FLICKER / 255) ** 2, rel=1e-4)
    assert warp["input"]["mean_abs"] == pytest.approx(0, abs=1e-4)
    per_frame = warp["output"]["per_frame"]
    assert [p["frame"] for p in per_frame] == [2, 3, 4]
    assert per_frame[0]["reliable_fraction"] == pytest.approx((W - SHIFT) / W)
    assert data["n_frames"] == 4 and data["size"] == [W, H]
    assert any("reliable" in note for note in data["notes"])


def test_reliability_maps_beside_flows_exclude_pixels(tmp_path):
    clip = moving_clip()
    out_frames = flickering(clip)
    for f in out_frames[1:]:
        f[:, -8:] = 255  # garbage in the right 8 columns, which the maps mark unreliable
    reliable = np.full((H, W), 255, np.uint8)
    reliable[:, -8:] = 0
    inp = write_frames(tmp_path / "in", clip)
    out = write_frames(tmp_path / "out", out_frames)
    flows = write_flows(tmp_path / "flows", len(clip), reliable)
    data = run_json("eval", str(out), "--input", str(inp), "--flow", str(flows), "--no-distances")
    assert data["warping_error"]["output"]["mean_abs"] == pytest.approx(FLICKER, abs=1e-4)
    assert data["warping_error"]["output"]["per_frame"][0]["reliable_fraction"] == \
        pytest.approx((W - SHIFT - 8) / W)


def test_table_output_lists_frames_and_means(tmp_path):
    clip = moving_clip()
    inp = write_frames(tmp_path / "in", clip)
    out = write_frames(tmp_path / "out", flickering(clip))
    flows = write_flows(tmp_path / "flows", len(clip))
    code, text = run("eval", str(out), "--input", str(inp), "--flow", str(flows), "--no-distances")
    assert code == 0, text
    mean_row = next(line for line in text.splitlines() if line.strip().startswith("mean"))
    assert mean_row.split()[1:3] == ["10.000", "0.000"]


def test_job_folder_uses_its_frames_and_flows(tmp_path):
    clip = moving_clip()
    job = tmp_path / "job"
    write_frames(job / "frames", clip)
    write_flows(job / "flow" / "abc123", len(clip), np.full((H, W), 255, np.uint8))
    write_frames(job / "final", flickering(clip))
    write_frames(job / "stylized" / "k" / "pass_02", clip)
    (job / "job.json").write_text("{}")
    data = run_json("eval", str(job), "--no-distances", "--job-flows")
    assert "abc123" in data["flow_source"] and "their errors go unmeasured" in data["flow_source"]
    assert data["warping_error"]["output"]["mean_abs"] == pytest.approx(FLICKER, abs=1e-4)
    # A pass folder inside the job finds the job's input and flows too.
    data = run_json("eval", str(job / "stylized" / "k" / "pass_02"), "--no-distances", "--job-flows")
    assert "abc123" in data["flow_source"]
    assert data["warping_error"]["output"]["mean_abs"] == pytest.approx(0, abs=1e-4)


def test_estimated_flow_on_static_clip_is_zero(tmp_path):
    frame = moving_clip(1)[0]
    inp = write_frames(tmp_path / "in", [frame] * 3)
    out = write_frames(tmp_path / "out", [frame // 2 + 60] * 3)
    data = run_json("eval", str(out), "--input", str(inp), "--flow-method", "dis", "--no-distances")
    assert data["flow_source"] == "estimated (dis)"
    assert data["warping_error"]["output"]["mean_abs"] == pytest.approx(0, abs=0.05)
    assert data["warping_error"]["input"]["mean_abs"] == pytest.approx(0, abs=0.05)


def test_video_input_and_resized_output(tmp_path):
    import imageio.v2 as iio

    clip = moving_clip()
    video = tmp_path / "in.mp4"
    with iio.get_writer(str(video), format="ffmpeg", fps=10, codec="libx264", quality=10,
                        macro_block_size=8) as writer:
        for f in clip:
            writer.append_data(f)
    # Output at twice the size: the input is resized to it and the flows are scaled.
    big = [np.repeat(np.repeat(f, 2, 0), 2, 1) for f in flickering(clip)]
    out = write_frames(tmp_path / "out", big)
    flows = write_flows(tmp_path / "flows", len(clip))
    data = run_json("eval", str(out), "--input", str(video), "--flow", str(flows), "--no-distances")
    assert data["size"] == [2 * W, 2 * H] and data["n_frames"] == len(clip)
    assert any("resized" in n for n in data["notes"])
    assert any("scaled" in n for n in data["notes"])
    # Lossy video and interpolation blur the exact answer, not the flicker it measures.
    assert data["warping_error"]["output"]["mean_abs"] > 5
    assert data["warping_error"]["input"]["mean_abs"] < 5


def test_frame_count_mismatch_is_noted(tmp_path):
    clip = moving_clip()
    inp = write_frames(tmp_path / "in", clip)
    out = write_frames(tmp_path / "out", clip[:3])
    flows = write_flows(tmp_path / "flows", len(clip))
    data = run_json("eval", str(out), "--input", str(inp), "--flow", str(flows), "--no-distances")
    assert data["n_frames"] == 3
    assert any("input has more frames" in n for n in data["notes"])


@pytest.mark.parametrize("extra, message", [
    ((), "--input is required"),
    (("--input", "IN", "--flow", "EMPTY", "--no-distances"), "backward_2_1.flo"),
    (("--input", "IN", "--flow", "FLOWS"), "--style is required"),
    (("--input", "IN", "--flow-method", "magic", "--no-distances"), "unknown flow method"),
])
def test_user_errors_are_one_line(tmp_path, extra, message):
    clip = moving_clip()
    paths = {"IN": write_frames(tmp_path / "in", clip),
             "FLOWS": write_flows(tmp_path / "flows", len(clip)),
             "EMPTY": tmp_path / "empty"}
    paths["EMPTY"].mkdir()
    out = write_frames(tmp_path / "out", clip)
    code, text = run("eval", str(out), *[str(paths.get(a, a)) for a in extra])
    assert code == 2
    assert text.startswith("error:") and message in text and "Traceback" not in text


def test_distances_with_real_vgg(tmp_path, vgg_weights):
    clip = [np.ascontiguousarray(np.repeat(np.repeat(f, 2, 0), 2, 1)[:32, :32]) for f in moving_clip(2)]
    painting = np.random.default_rng(9).integers(0, 255, (32, 32, 3)).astype(np.uint8)
    style = tmp_path / "style.png"
    save_image(style, painting)
    inp = write_frames(tmp_path / "in", clip)
    measured = {}
    # the input itself as the "stylization", then the painting itself in every frame
    for name, frames in (("input", clip), ("painting", [painting, painting])):
        out = write_frames(tmp_path / name, frames)
        measured[name] = run_json("eval", str(out), "--input", str(inp), "--style", str(style),
                                  "--flow-method", "dis", "--device", "cpu")
    assert measured["input"]["content_distance"]["mean"] == pytest.approx(0, abs=1e-4)
    assert measured["painting"]["style_distance"]["mean"] == pytest.approx(0, abs=1e-4)
    # measured: style 0.79 for the input, content 1.34 for the painting
    assert measured["input"]["style_distance"]["mean"] > 0.3
    assert measured["painting"]["content_distance"]["mean"] > 0.5
    assert len(measured["input"]["style_distance"]["per_frame"]) == 2


AUTHORS_EXAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "artistic-videos-example"


@pytest.mark.skipif(not AUTHORS_EXAMPLE.is_dir(), reason="../shared/data not present")
def test_authors_flows_explain_real_frames(tmp_path):
    # With the authors' DeepFlow flows and masks, consecutive real frames warp onto each other
    # to within a few grey levels; the same frames in scrambled order do not.
    frames = sorted(AUTHORS_EXAMPLE.glob("marple8_0*.ppm"))
    flows = str(AUTHORS_EXAMPLE / "deepflow")
    scrambled = tmp_path / "scrambled"
    scrambled.mkdir()
    for k, src in enumerate([frames[i] for i in (0, 3, 1, 4, 2)], start=1):
        (scrambled / f"frame_{k:05d}.ppm").write_bytes(src.read_bytes())
    data = run_json("eval", str(scrambled), "--input", str(AUTHORS_EXAMPLE), "--flow", flows, "--no-distances")
    floor = data["warping_error"]["input"]["mean_abs"]  # the real frames, in order, on their flows
    assert data["n_frames"] == len(frames) == 5 and data["size"] == [450, 350]
    assert data["notes"] == []  # every reliable_{t}_{t-1}.pgm was found
    # measured: 2.67 in order, 4.51 in order on zero flows (with the same maps), 6.79 scrambled
    assert 0.5 < floor < 5
    assert data["warping_error"]["output"]["mean_abs"] > 2 * floor
    # and it is the flows that explain the frames: held still, the same frames differ more
    still = write_flows(tmp_path / "still", len(frames), shape=(350, 450))
    for t in range(2, len(frames) + 1):
        (still / f"reliable_{t}_{t - 1}.pgm").write_bytes((Path(flows) / f"reliable_{t}_{t - 1}.pgm").read_bytes())
    data = run_json("eval", str(AUTHORS_EXAMPLE), "--input", str(AUTHORS_EXAMPLE), "--flow", str(still),
                    "--no-distances")
    assert data["warping_error"]["input"]["mean_abs"] > 1.4 * floor


def test_job_flow_missing_across_a_cut_is_estimated(tmp_path):
    clip = moving_clip()
    job = tmp_path / "job"
    write_frames(job / "frames", clip)
    flows = write_flows(job / "flow" / "abc123", len(clip))
    (flows / "backward_3_2.flo").unlink()  # the pipeline computes no flow across a scene cut
    write_frames(job / "final", clip)
    (job / "job.json").write_text('{"flow": {"key": "abc123"}}')
    data = run_json("eval", str(job), "--no-distances", "--flow-method", "dis", "--job-flows")
    assert "abc123" in data["flow_source"]
    assert any("backward_3_2.flo" in n and "estimated" in n for n in data["notes"])
    assert [p["frame"] for p in data["warping_error"]["output"]["per_frame"]] == [2, 3, 4]
    assert data["warping_error"]["output"]["per_frame"][0]["mean_abs"] == pytest.approx(0, abs=1e-4)


def test_reliability_maps_of_another_size_keep_their_border(tmp_path):
    # Output at twice the flows' size: each map pixel stands for four, none half-reliable.
    clip = moving_clip()
    reliable = np.full((H, W), 255, np.uint8)
    reliable[:, W // 2:] = 0
    big = [np.repeat(np.repeat(f, 2, 0), 2, 1) for f in flickering(clip)]
    for f in big[1:]:
        f[:, W:] = 255  # garbage where the maps say unreliable: a half-reliable pixel would count it
    inp = write_frames(tmp_path / "in", [np.repeat(np.repeat(f, 2, 0), 2, 1) for f in clip])
    out = write_frames(tmp_path / "out", big)
    flows = write_flows(tmp_path / "flows", len(clip), reliable)
    data = run_json("eval", str(out), "--input", str(inp), "--flow", str(flows), "--no-distances")
    # left half reliable, less the 2 * SHIFT columns whose flow leaves the frame
    assert data["warping_error"]["output"]["per_frame"][0]["reliable_fraction"] == \
        pytest.approx((W - 2 * SHIFT) / (2 * W), abs=1e-9)
    assert data["warping_error"]["output"]["mean_abs"] == pytest.approx(FLICKER, abs=1e-4)


@pytest.mark.parametrize("extra, message", [
    (("--flow-method", "dis_fin"), "--flow-method: unknown flow method 'dis_fin' (did you mean 'dis_fine'?)"),
    (("--device", "gpu"), "--device must be auto, cpu, cuda or cuda:N (got 'gpu')"),
])
def test_eval_options_are_checked_like_the_run_settings(tmp_path, extra, message):
    clip = moving_clip()
    inp = write_frames(tmp_path / "in", clip)
    code, text = run("eval", str(inp), "--input", str(inp), "--no-distances", *extra)
    assert code == 2 and message in text, text


@pytest.mark.parametrize(("job_method", "expected"), [("dis_dense", "deepflow"), ("dis", "deepflow"),
                                                      ("deepflow", "dis_dense"), ("fused+long:dis_dense", "tvl1")])
def test_a_job_is_measured_with_another_estimator_than_its_own(tmp_path, job_method, expected):
    # The job's flows are wrong on purpose (they say the clip stands still): a result made
    # consistent along them would look perfect by them; another estimator sees the motion.
    import cv2

    big = np.random.default_rng(5).uniform(0, 255, (H, W + 2 * 4, 3)).astype(np.float32)
    big = cv2.GaussianBlur(big, (0, 0), 2.0)
    big = ((big - big.min()) / (big.max() - big.min()) * 200 + 20).astype(np.uint8)
    clip = [np.ascontiguousarray(big[:, 2 * (3 - t): 2 * (3 - t) + W]) for t in range(4)]  # 2 px/frame pan
    job = tmp_path / "job"
    write_frames(job / "frames", clip)
    folder = job / "flow" / "abc123"
    folder.mkdir(parents=True)
    for t in range(2, len(clip) + 1):
        flow.write_flo(folder / f"backward_{t}_{t - 1}.flo", np.zeros((H, W, 2), np.float32))
    write_frames(job / "final", [clip[0]] * len(clip))  # steady along the job's (wrong) flow
    (job / "job.json").write_text(json.dumps({"flow": {"key": "abc123", "method": job_method}}))
    own = run_json("eval", str(job), "--no-distances", "--job-flows")
    assert own["warping_error"]["output"]["mean_abs"] == pytest.approx(0, abs=1e-4)
    data = run_json("eval", str(job), "--no-distances")
    neighbours = job_method.split("+long:")[0]  # the estimator of the pairs eval measures
    assert data["flow_source"] == f"estimated ({expected}, not the job's {neighbours})"
    assert data["warping_error"]["output"]["mean_abs"] > 2.0  # the pan it did not follow
    code, text = run("eval", str(job), "--no-distances")
    assert code == 0 and f"flows: estimated ({expected}, not the job's {neighbours})" in text
    same = run_json("eval", str(job), "--no-distances", "--flow-method", neighbours)
    assert any("the job's own flow estimator" in n for n in same["notes"])


@pytest.mark.parametrize("job_method", [*flow.available_methods(), None])
def test_eval_never_measures_a_job_with_its_own_estimator_or_one_it_was_fused_from(job_method):
    from flow.estimators import FusedEstimator
    from videostyle.evaluate import independent_method

    chosen = independent_method(job_method)
    assert chosen in flow.available_methods()
    members = {name.split("@")[0] for name in FusedEstimator().member_names}
    own = {job_method} | (members if job_method == "fused" else set())
    assert chosen not in own, (job_method, chosen)
    dis = {"dis", "dis_fine", "dis_dense"}
    assert not (job_method in dis and chosen in dis), (job_method, chosen)
