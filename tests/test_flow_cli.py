"""videostyle flow compute | check | show."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import flow
from flow.synthetic import Motion, make_pair
from videostyle.cli import main
from videostyle.images import load_image, save_image

EXAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "artistic-videos-example"


@pytest.fixture()
def frames(tmp_path: Path) -> tuple[Path, Path, np.ndarray]:
    pair = make_pair(48, 64, Motion(shift=(2.0, 1.0), rotation_deg=0.0, disc_radius=8.0,
                                    disc_shift=(-2.0, 1.0)), seed=4)
    save_image(tmp_path / "a.png", pair.a)
    save_image(tmp_path / "b.png", pair.b)
    return tmp_path / "a.png", tmp_path / "b.png", pair.forward


def _run(*args: str | Path):
    return CliRunner().invoke(main, ["flow", *map(str, args)])


def test_compute_writes_the_flow_a_to_b(frames, tmp_path: Path) -> None:
    a, b, truth = frames
    result = _run("compute", a, b, tmp_path / "f.flo", "--method", "dis")
    assert result.exit_code == 0, result.output
    computed = flow.read_flo(tmp_path / "f.flo")
    assert computed.shape == (48, 64, 2)
    assert np.median(np.hypot(*(computed - truth).transpose(2, 0, 1))) < 0.5
    assert "f.flo" in result.output and "dis" in result.output


def test_check_then_show_and_the_default_method(frames, tmp_path: Path) -> None:
    a, b, _ = frames
    assert _run("compute", a, b, tmp_path / "fwd.flo").exit_code == 0  # deepflow
    assert _run("compute", b, a, tmp_path / "bwd.flo").exit_code == 0
    result = _run("check", tmp_path / "fwd.flo", tmp_path / "bwd.flo", tmp_path / "r.pgm")
    assert result.exit_code == 0, result.output
    expected = flow.consistency_check(flow.read_flo(tmp_path / "fwd.flo"),
                                      flow.read_flo(tmp_path / "bwd.flo"))
    assert np.array_equal(flow.read_pgm(tmp_path / "r.pgm"), np.trunc(expected).astype(np.uint8))
    result = _run("show", tmp_path / "fwd.flo")
    assert result.exit_code == 0, result.output
    picture = load_image(tmp_path / "fwd.png")
    assert picture.shape == (48, 64, 3)
    assert np.array_equal(picture, flow.flow_to_color(flow.read_flo(tmp_path / "fwd.flo")))
    assert _run("show", tmp_path / "fwd.flo", "-o", tmp_path / "x.png",
                "--max-magnitude", "5").exit_code == 0
    assert (tmp_path / "x.png").is_file()


@pytest.mark.skipif(not EXAMPLE.is_dir(), reason="../shared/data is absent")
def test_check_takes_the_authors_argument_order_and_output(tmp_path: Path) -> None:
    d = EXAMPLE / "deepflow"
    result = _run("check", d / "backward_3_2.flo", d / "forward_2_3.flo", tmp_path / "r.pgm")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r.pgm").read_bytes() == (d / "reliable_3_2.pgm").read_bytes()


def test_truncated_flo_is_one_error_line(tmp_path: Path) -> None:
    good = tmp_path / "good.flo"
    flow.write_flo(good, np.zeros((10, 12, 2), np.float32))
    bad = tmp_path / "bad.flo"
    bad.write_bytes(good.read_bytes()[:100])
    result = _run("check", bad, good, tmp_path / "r.pgm")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: {bad} is truncated: 100 bytes, expected 972 for a 12x10 flow"]
    assert not (tmp_path / "r.pgm").exists()
    result = _run("show", bad)
    assert result.exit_code == 2 and result.output.startswith("error:")
    assert len(result.output.strip().splitlines()) == 1


def test_flows_of_different_sizes_are_one_error_line(tmp_path: Path) -> None:
    flow.write_flo(tmp_path / "x.flo", np.zeros((10, 12, 2), np.float32))
    flow.write_flo(tmp_path / "y.flo", np.zeros((12, 10, 2), np.float32))
    result = _run("check", tmp_path / "x.flo", tmp_path / "y.flo", tmp_path / "r.pgm")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: flow sizes differ: 12x10 vs 10x12 "
        "(a flow and its opposite must come from the same pair of frames)"]


def test_frames_of_different_sizes_or_missing_are_one_error_line(frames, tmp_path: Path) -> None:
    a, _, _ = frames
    save_image(tmp_path / "small.png", np.zeros((20, 20, 3), np.uint8))
    result = _run("compute", a, tmp_path / "small.png", tmp_path / "f.flo")
    assert result.exit_code == 2 and result.output.startswith("error: frames differ in size")
    result = _run("compute", a, tmp_path / "none.png", tmp_path / "f.flo")
    assert result.exit_code == 2 and result.output.startswith("error: image not found")
    assert not (tmp_path / "f.flo").exists()


@pytest.mark.parametrize("method", ["deepflow", "tvl1"])
def test_opencv_without_contrib_is_one_error_line(frames, tmp_path: Path, monkeypatch, method: str) -> None:
    """Plain opencv-python installed over opencv-contrib-python (the GPU image has the headless
    build) lacks cv2.optflow: the flow says so and names the way out, not an AttributeError."""
    import cv2

    monkeypatch.delattr(cv2, "optflow")
    a, b, _ = frames
    result = _run("compute", a, b, tmp_path / "f.flo", "--method", method)
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: the {method} flow needs OpenCV's contrib modules (cv2.optflow)")
    assert "opencv-contrib-python" in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "f.flo").exists()
    assert _run("compute", a, b, tmp_path / "f.flo", "--method", "dis_dense").exit_code == 0
