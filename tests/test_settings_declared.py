"""Each setting is declared once: the CLI options, TOML files and Python API derive from it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from videostyle.cli import main
from videostyle.cli.settings_options import settings_from_cli, settings_options
from videostyle.config import (IMAGE, RUN, Settings, StyleSettings, VideoSettings, declarations, resolve_settings,
                               validate)
from videostyle.errors import UserError


def _probe(command: str):
    """A click command with ``command``'s setting options that returns the settings it resolves."""
    @click.command()
    @settings_options(command)
    @click.option("--config", "config_file", type=click.Path(path_type=Path))
    @click.option("--preset")
    def probe(overrides: dict[str, dict[str, Any]], learning_rate: float | None, config_file: Path | None,
              preset: str | None) -> None:
        click.get_current_context().obj["settings"] = settings_from_cli(preset, config_file, overrides,
                                                                        learning_rate)

    return probe


def resolved(*args: str, command: str = RUN) -> Settings:
    box: dict[str, Any] = {}
    result = CliRunner().invoke(_probe(command), list(args), obj=box, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return box["settings"]


def _help(command: str) -> str:
    return CliRunner().invoke(main, [command, "--help"], terminal_width=200).output


def test_every_setting_is_an_option_of_the_commands_that_offer_it() -> None:
    run_help, image_help = _help("run"), _help("image")
    for decl in declarations():
        for command, text in ((RUN, run_help), (IMAGE, image_help)):
            if command in decl.spec.commands:
                assert decl.flags[0] in text, (command, decl.name)
                assert decl.spec.help.split(".")[0][:30] in " ".join(text.split()), (command, decl.name)
    # iterations is offered through run's --iterations N / FIRST,REST; everything else has a flag
    assert [d.name for d in declarations() if not d.spec.commands] == ["iterations"]
    assert all(d.section == "style" or d.name in ("seed", "device") for d in declarations()
               if IMAGE in d.spec.commands)


def test_cli_toml_and_python_give_the_same_settings(tmp_path: Path) -> None:
    cfg = tmp_path / "same.toml"
    cfg.write_text('[style]\nstyle_layers = ["relu1_1", "relu2_1"]\nstyle_blend_weights = [3, 1]\n'
                   'precision = "float32"\nnormalize_gradients = true\n'
                   '[flow]\nmethod = "dis"\nlong_term = [1, 2]\n'
                   '[video]\npasses = 3\ntemporal_weight = 2\nwidth = 96\nsegment_length = 4\n')
    from_cli = resolved("--style-layers", "relu1_1,relu2_1", "--style-blend-weights", "3,1", "--float32",
                        "--normalize-gradients", "--flow", "dis", "--long-term", "1,2", "--passes", "3",
                        "--temporal-weight", "2", "--width", "96", "--segment-length", "4")
    from_toml = resolve_settings(None, cfg)
    from_python = Settings(
        style=StyleSettings(style_layers=("relu1_1", "relu2_1"), style_blend_weights=(3.0, 1.0), precision="float32",
                            normalize_gradients=True),
        flow=dataclasses.replace(Settings().flow, method="dis", long_term=(1, 2)),
        video=VideoSettings(passes=3, temporal_weight=2.0, width=96, segment_length=4))
    assert from_cli == from_toml == from_python
    validate(from_python)


def test_learning_rate_sets_the_rate_of_the_optimizer_that_runs(tmp_path: Path) -> None:
    adam = resolved("--optimizer", "adam", "--learning-rate", "3")
    assert (adam.style.adam_learning_rate, adam.style.learning_rate) == (3.0, 1.0)
    lbfgs = resolved("--learning-rate", "0.5")
    assert (lbfgs.style.learning_rate, lbfgs.style.adam_learning_rate) == (0.5, 10.0)
    cfg = tmp_path / "adam.toml"
    cfg.write_text('[style]\noptimizer = "adam"\n')
    from_config = resolved("--config", str(cfg), "--learning-rate", "2", command=IMAGE)
    assert (from_config.style.adam_learning_rate, from_config.style.learning_rate) == (2.0, 1.0)
    both = resolved("--lbfgs-learning-rate", "0.25", "--adam-learning-rate", "4")
    assert (both.style.learning_rate, both.style.adam_learning_rate) == (0.25, 4.0)


def test_declared_choices_match_what_the_code_accepts() -> None:
    import flow
    from videostyle.frame.device import PRECISIONS
    from videostyle.frame.losses import CRITERIA
    from videostyle.frame.optimize import OPTIMIZERS

    choices = {(d.section, d.name): d.choices for d in declarations()}
    assert choices["style", "optimizer"] == OPTIMIZERS
    assert choices["style", "temporal_criterion"] == CRITERIA
    assert choices["style", "precision"] == PRECISIONS
    assert list(choices["flow", "method"]) == flow.available_methods()


@pytest.mark.parametrize("section, values, message", [
    ("video", {"passes": 2.7}, "video.passes must be a whole number (got 2.7)"),
    ("video", {"passes": True}, "video.passes must be a whole number"),
    ("video", {"width": 8}, "video.width must be 0"),
    ("video", {"temporal_weight": float("nan")}, "video.temporal_weight must be a finite number"),
    ("style", {"style_weight": float("inf")}, "style.style_weight must be a finite number"),
    ("style", {"style_layers": "relu1_1"}, "style.style_layers must be a list of strings"),
    ("style", {"content_layers": ("relu9_9",)}, "unknown VGG-19 layer 'relu9_9'"),
    ("style", {"optimizer": "sgd"}, "style.optimizer must be one of: lbfgs, adam"),
    ("flow", {"long_term": (1, 0)}, "flow.long_term must be at least 1 and at most 1000 (got 0)"),
    ("video", {"passes": 1_000_000_000}, "video.passes must be at most 1000 (got 1000000000)"),
    ("video", {"iterations": 10**12}, "video.iterations must be at most 100000"),
    ("video", {"width": 1_000_000}, "video.width must be at most 16384"),
])
def test_settings_built_in_python_are_checked_by_the_same_declarations(section: str, values: dict[str, Any],
                                                                       message: str) -> None:
    settings = Settings()
    settings = dataclasses.replace(settings, **{section: dataclasses.replace(getattr(settings, section), **values)})
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate(settings)


def test_blend_weights_must_match_the_styles() -> None:
    settings = resolve_settings(None, None, {"style": {"style_blend_weights": [1, 2]}})
    validate(settings)
    with pytest.raises(UserError, match="2 style blend weight"):
        validate(settings, n_styles=1)


def test_precision_is_an_option_with_the_float32_alias() -> None:
    assert resolved("--precision", "float16").style.precision == "float16"
    assert resolved("--float32", command=IMAGE).style.precision == "float32"
    for args, message in ((["--precision", "float16", "--float32"], "--precision and --float32 ask for different"),
                          (["--precision", "half"], "--precision must be one of: auto, float32, float16")):
        result = CliRunner().invoke(_probe(RUN), args, obj={})
        assert isinstance(result.exception, UserError) and message in str(result.exception), result.output
