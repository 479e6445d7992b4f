"""`videostyle eval --plot` and `--against`: the flicker plot, another result on the same flows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from test_eval_cli import FLICKER, H, W, flickering, moving_clip, write_flows, write_frames
from videostyle.cli import main
from videostyle.evaluate import evaluate
from videostyle.images import load_image
from videostyle.plots import flicker_curves, short_names

pytest.importorskip("matplotlib")


@pytest.fixture
def clip_folders(tmp_path: Path) -> dict[str, Path]:
    clip = moving_clip(5)
    steady = [np.clip(f.astype(int) + 3, 0, 255).astype(np.uint8) for f in clip]  # follows the motion
    return {"in": write_frames(tmp_path / "in", clip),
            "out": write_frames(tmp_path / "out", flickering(clip)),
            "steady": write_frames(tmp_path / "steady", steady),
            "flows": write_flows(tmp_path / "flows", len(clip))}


def eval_args(paths: dict[str, Path], *extra: str | Path) -> list[str]:
    return ["eval", str(paths["out"]), "--input", str(paths["in"]), "--flow", str(paths["flows"]),
            "--no-distances", *map(str, extra)]


def test_plot_is_written_and_against_adds_a_curve(clip_folders: dict[str, Path], tmp_path: Path) -> None:
    alone, both = tmp_path / "alone.png", tmp_path / "both.png"
    result = CliRunner().invoke(main, eval_args(clip_folders, "--plot", alone))
    assert result.exit_code == 0, result.output
    assert f"wrote {alone}" in result.output
    result = CliRunner().invoke(main, eval_args(clip_folders, "--plot", both, "--against",
                                                clip_folders["steady"], "--json"))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    [other] = data["against"]
    assert other["output"] == str(clip_folders["steady"]) and other["n_frames"] == 5
    # measured on the same flows: the steady result has no flicker, the output FLICKER
    assert other["warping_error"]["mean_abs"] == pytest.approx(0, abs=1e-4)
    assert [p["frame"] for p in other["warping_error"]["per_frame"]] == [2, 3, 4, 5]
    assert data["warping_error"]["output"]["mean_abs"] == pytest.approx(FLICKER, abs=1e-4)
    one, two = load_image(alone), load_image(both)
    assert one.shape == two.shape == (540, 960, 3)
    assert one.std() > 10 and not np.array_equal(one, two)  # a drawing, and one more curve in it
    assert not list(tmp_path.glob(".*"))  # no temp file left beside it


def test_curves_name_each_result(clip_folders: dict[str, Path]) -> None:
    report = evaluate(clip_folders["out"], clip_folders["in"], flow_dir=clip_folders["flows"], distances=False,
                      against=[clip_folders["steady"]])
    curves = flicker_curves(report)
    assert [c.label for c in curves] == ["out", "steady", "input (floor)"]
    assert [c.dashed for c in curves] == [False, False, True]
    assert curves[0].frames == (2, 3, 4, 5) and curves[0].mean == pytest.approx(FLICKER, abs=1e-4)
    assert short_names(["a.vs/stylized/k/pass_03", "b.vs/stylized/k/pass_03"]) == \
        ["a.vs/stylized/k/pass_03", "b.vs/stylized/k/pass_03"]
    assert short_names(["x/final", "y/out.mp4"]) == ["final", "out.mp4"]


@pytest.mark.parametrize("suffix", [".pdf", ".svg"])
def test_other_formats(clip_folders: dict[str, Path], tmp_path: Path, suffix: str) -> None:
    target = tmp_path / f"flicker{suffix}"
    result = CliRunner().invoke(main, eval_args(clip_folders, "--plot", target))
    assert result.exit_code == 0, result.output
    head = target.read_bytes()[:200]
    assert head.startswith(b"%PDF") if suffix == ".pdf" else b"<svg" in target.read_bytes()[:2000]


def test_against_of_other_size_and_length_is_resized_and_noted(clip_folders: dict[str, Path],
                                                               tmp_path: Path) -> None:
    big = [np.repeat(np.repeat(load_image(p), 2, 0), 2, 1)
           for p in sorted(clip_folders["steady"].glob("*.png"))[:4]]
    other = write_frames(tmp_path / "big", big)
    result = CliRunner().invoke(main, eval_args(clip_folders, "--against", other, "--json"))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["against"][0]["n_frames"] == 4
    assert [p["frame"] for p in data["against"][0]["warping_error"]["per_frame"]] == [2, 3, 4]
    assert any("resized" in n and "big" in n for n in data["notes"])
    assert any("has 4 frames, the output 5" in n for n in data["notes"])
    # the table has a column for it
    table = CliRunner().invoke(main, eval_args(clip_folders, "--against", other)).output
    assert "[1] against:" in table and "[1] warp err" in table


@pytest.mark.parametrize("plot, message", [
    ("{tmp}/no/such/folder/flicker.png", "folder {tmp}/no/such/folder does not exist"),
    ("{tmp}/flicker.jpg", "must end in .png, .pdf, .svg"),
    ("{tmp}/flicker", "must end in .png, .pdf, .svg"),
    ("{tmp}", "must end in"),
])
def test_bad_plot_paths_are_one_line_before_any_work(clip_folders: dict[str, Path], tmp_path: Path,
                                                     plot: str, message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def evaluate(*args, **kwargs):
        raise AssertionError("evaluated before the plot path was checked")

    monkeypatch.setattr("videostyle.evaluate.evaluate", evaluate)
    args = ["eval", str(clip_folders["out"]), "--input", str(clip_folders["in"]), "--no-distances",
            "--plot", plot.format(tmp=tmp_path)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and message.format(tmp=tmp_path) in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_plot_of_a_job_folder(tmp_path: Path) -> None:
    clip = moving_clip()
    job = tmp_path / "job"
    write_frames(job / "frames", clip)
    write_flows(job / "flow" / "abc123", len(clip), np.full((H, W), 255, np.uint8))
    write_frames(job / "final", flickering(clip))
    (job / "job.json").write_text("{}")
    other = write_frames(tmp_path / "other", clip)
    result = CliRunner().invoke(main, ["eval", str(job), "--no-distances", "--against", str(other),
                                       "--plot", str(tmp_path / "job.png")])
    assert result.exit_code == 0, result.output
    assert load_image(tmp_path / "job.png").shape[2] == 3
