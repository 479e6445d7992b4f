"""Every setting is checked where it enters (CLI, TOML, Python), as one line, before any frame."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from videostyle.cli import main
from videostyle.config import Settings, StyleSettings, VideoSettings
from videostyle.errors import UserError
from videostyle.pipeline import RunRequest, run

CASES = [  # (command-line options, TOML text, the line's expected start after "error: ")
    (["--style-weight", "nan"], None, "--style-weight must be a finite number (got nan)"),
    (["--temporal-weight", "nan"], None, "--temporal-weight must be a finite number (got nan)"),
    (["--content-weight", "inf"], None, "--content-weight must be a finite number (got inf)"),
    (["--tv-weight", "inf"], None, "--tv-weight must be a finite number (got inf)"),
    (["--passes", "2.7"], None, "--passes takes a whole number (got '2.7')"),
    (["--style-layers", "relu9_9"], None, "--style-layers has unknown VGG-19 layer 'relu9_9'"),
    (["--content-layers", "relu4_9"], None, "--content-layers has unknown VGG-19 layer 'relu4_9'"),
    (["--optimizer", "adma"], None, "--optimizer must be one of: lbfgs, adam (got 'adma'; did you mean 'adam'?)"),
    (["--frames", "4-30"], None, "frame range 4-30 ends after the last frame: the clip has 5 frames"),
    (["--fps", "abc"], None, "fps must be a positive rate"),
    ([], "[style]\nstyle_weight = nan", "config file {cfg}: [style] style_weight must be a finite number (got nan)"),
    ([], "[style]\nstyle_weight = 'abc'", "config file {cfg}: [style] style_weight must be a finite number (got 'abc')"),
    ([], "[style]\nstyle_layers = 'relu1_1'", "config file {cfg}: [style] style_layers must be a list of strings"),
    ([], "[video]\npasses = 'two'", "config file {cfg}: [video] passes must be a whole number (got 'two')"),
    ([], "[video]\npasses = 2.7", "config file {cfg}: [video] passes must be a whole number (got 2.7)"),
    ([], "[video]\nwidth = 'wide'", "config file {cfg}: [video] width must be a whole number (got 'wide')"),
    ([], "[video]\nwidth = 96.5", "config file {cfg}: [video] width must be a whole number (got 96.5)"),
    ([], "[video]\nseed = 'x'", "config file {cfg}: [video] seed must be a whole number (got 'x')"),
    ([], "[video]\nsegment_length = true", "config file {cfg}: [video] segment_length must be a whole number"),
]


@pytest.mark.parametrize("options, toml, line", CASES)
def test_bad_values_are_refused_in_one_line_before_the_job_folder(options: list[str], toml: str | None, line: str,
                                                                  tiny_clip: Path, tiny_style: Path,
                                                                  tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    if toml is not None:
        cfg.write_text(toml + "\n")
        options = [*options, "--config", str(cfg)]
    job = tmp_path / "job"
    result = CliRunner().invoke(main, ["run", str(tiny_clip), "--style", str(tiny_style), "--job-dir", str(job),
                                       "--no-video", *options])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: " + line.format(cfg=cfg)), result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not job.exists()


@pytest.mark.parametrize("settings, request_values, message", [
    (Settings(style=StyleSettings(style_weight=math.nan)), {}, "style.style_weight must be a finite number"),
    (Settings(video=VideoSettings(passes=2.7)), {}, "video.passes must be a whole number"),  # type: ignore[arg-type]
    (Settings(video=VideoSettings(width=96.5)), {}, "video.width must be a whole number"),  # type: ignore[arg-type]
    (Settings(), {"frames": (4, 30)}, "the clip has 5 frames"),
    (Settings(), {"size": (64, "48")}, "size must be (width, height)"),
    (Settings(), {"fps": "fast"}, "fps must be a positive rate"),
])
def test_the_python_api_is_checked_the_same_way(settings: Settings, request_values: dict, message: str,
                                                tiny_clip: Path, tiny_style: Path, tmp_path: Path) -> None:
    request = RunRequest(input=tiny_clip, styles=(tiny_style,), settings=settings, job_dir=tmp_path / "job",
                         make_video=False, **request_values)
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run(request)
    assert not (tmp_path / "job").exists()


def test_a_worker_refuses_bad_settings_written_into_the_job(tiny_clip: Path, tiny_style: Path,
                                                              tmp_path: Path) -> None:
    """Settings read back from job.json go through the same checks."""
    job = tmp_path / "job"
    planned = CliRunner().invoke(main, ["run", str(tiny_clip), "--style", str(tiny_style), "--job-dir", str(job),
                                        "--passes", "1", "--plan-only", "--no-video"])
    assert planned.exit_code == 0, planned.output
    manifest = json.loads((job / "job.json").read_text())
    manifest["request"]["settings"]["video"]["passes"] = "2"
    (job / "job.json").write_text(json.dumps(manifest))
    result = CliRunner().invoke(main, ["work", str(job)])
    assert result.exit_code == 2
    assert result.output == "error: settings in the job folder: [video] passes must be a whole number (got '2')\n"


def test_warnings_and_notes_read_as_one_plain_line_and_the_module_only_with_verbose() -> None:
    import logging

    from videostyle.cli.group import _UserFormatter

    def shown(level: int, message: str) -> str:
        return _UserFormatter().format(logging.LogRecord("videostyle.userfiles", level, __file__, 1, message, (), None))

    assert shown(logging.WARNING, "note: %s exists" % "a.mp4") == "note: a.mp4 exists"
    assert shown(logging.WARNING, "the video is silent") == "warning: the video is silent"
    assert shown(logging.ERROR, "loss became nan") == "error: loss became nan"
