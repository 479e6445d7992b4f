"""Creative control: style masks (a style per region) and blend keyframes (styles over time)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from videostyle.cli import main
from videostyle.config import StyleSettings
from videostyle.errors import UserError
from videostyle.frame.losses import MaskedStyleLoss, gram_matrix, masked_gram, masked_style_terms
from videostyle.frame.stylize import Stylizer, reduced_target_images
from videostyle.images import load_image, save_image
from videostyle.looks import FrameLook, Keyframe, blend_at, frame_look, parse_keyframes, read_mask

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RUN_FAST = ["--flow", "dis", "--passes", "2", "--iterations", "3", "--temporal-from", "2", "--coarse-passes", "0",
            "--style-layers", "relu1_1,relu2_1", "--content-layers", "relu2_2", "-q", "--no-video"]


# ---------------------------------------------------------------- keyframes


def test_keyframes_interpolate_linearly_and_hold_outside() -> None:
    keys = parse_keyframes(" 3:1,0 ; 7:0,3 ")
    assert keys == (Keyframe(3, (1.0, 0.0)), Keyframe(7, (0.0, 3.0)))
    assert blend_at(keys, 1) == (1.0, 0.0) and blend_at(keys, 3) == (1.0, 0.0)
    assert blend_at(keys, 7) == (0.0, 1.0) and blend_at(keys, 20) == (0.0, 1.0)
    # half way the raw weights are 0.5 and 1.5: normalised to 0.25, 0.75
    assert blend_at(keys, 5) == pytest.approx((0.25, 0.75))


def test_keyframes_on_consecutive_frames_switch_at_once() -> None:
    keys = parse_keyframes("1:1,0;4:1,0;5:0,1")
    assert [blend_at(keys, i) for i in (3, 4, 5, 6)] == [(1.0, 0.0), (1.0, 0.0), (0.0, 1.0), (0.0, 1.0)]


@pytest.mark.parametrize("text, message", [
    ("5:1,0;2:0,1", "in frame order"),
    ("2:1,0;2:0,1", "in frame order"),
    ("1:1,-1", "not negative"),
    ("1:0,0", "all zero at frame 1"),
    ("1:1,0;9:1", "one weight per style"),
    ("0:1,0", "numbered from 1"),
    ("one:1,0", "is not FRAME:W1,W2"),
    ("1:a,b", "must be numbers"),
    ("1:nan,1", "finite"),
])
def test_bad_keyframes_are_one_line(text: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        parse_keyframes(text)


def test_frame_look_combines_keyframes_and_masks() -> None:
    assert frame_look((), None, 3) is None
    look = frame_look(parse_keyframes("1:1,0;3:0,1"), None, 2)
    assert look is not None and look.weights == pytest.approx((0.5, 0.5)) and look.masks is None
    masks = (np.ones((4, 4), np.float32),)
    assert frame_look((), lambda i: masks, 1).masks is masks


# ---------------------------------------------------------------- masked Gram matrices


def test_masked_gram_of_ones_is_the_gram_and_a_binary_mask_selects_positions(device) -> None:
    features = torch.randn(1, 5, 6, 8, dtype=torch.float64).to(device)
    torch.testing.assert_close(masked_gram(features, torch.ones(1, 1, 6, 8, dtype=torch.float64, device=device)),
                               gram_matrix(features))
    left = torch.zeros(1, 1, 6, 8, dtype=torch.float64, device=device)
    left[..., :3] = 1
    torch.testing.assert_close(masked_gram(features, left), gram_matrix(features[..., :3].contiguous()))


def test_masked_gram_resizes_the_mask_to_the_layer(device) -> None:
    features = torch.randn(1, 3, 4, 4, dtype=torch.float64).to(device)
    fine = torch.zeros(1, 1, 8, 8, dtype=torch.float64, device=device)
    fine[..., :4] = 1  # the left half at twice the layer's size
    torch.testing.assert_close(masked_gram(features, fine), gram_matrix(features[..., :2].contiguous()))


def test_masked_style_terms_are_weighted_by_their_share_of_the_frame() -> None:
    grams = [{"relu1_1": torch.eye(3)[None], "relu2_1": torch.eye(3)[None]}] * 2
    quarter, rest = torch.zeros(1, 1, 4, 4), torch.ones(1, 1, 4, 4)
    quarter[..., :2, :2] = 1
    rest[..., :2, :2] = 0
    terms = masked_style_terms(grams, [quarter, rest], style_weight=100.0)
    assert all(isinstance(t, MaskedStyleLoss) for t in terms)
    assert [t.weight for t in terms] == pytest.approx([12.5, 12.5, 37.5, 37.5])
    assert len(masked_style_terms(grams, [torch.zeros(1, 1, 4, 4), rest], style_weight=100.0)) == 2


# ---------------------------------------------------------------- the stylizer


@pytest.fixture(scope="module")
def weights(vgg_weights):
    return vgg_weights  # (tests/conftest.py)


def _stripes(h: int, w: int, colour: tuple[int, int, int], period: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    wave = 0.5 + 0.5 * np.sin((xx + yy) / period)
    return (wave[..., None] * np.array(colour, np.float32) + 20).clip(0, 255).astype(np.uint8)


RED, BLUE = _stripes(48, 48, (230, 40, 30), 1.5), _stripes(48, 48, (30, 60, 230), 4.0)
CONTENT = np.full((32, 48, 3), 128, np.uint8)
LEFT = np.zeros((32, 48), np.float32)
LEFT[:, :24] = 1


def _stylizer(weights, device: str = "cpu") -> Stylizer:
    settings = StyleSettings(tol_loss_relative=0.0, content_weight=1.0, style_layers=("relu1_1", "relu2_1", "relu3_1"))
    return Stylizer([RED, BLUE], settings, CONTENT.shape[:2], device=device, vgg_weights=weights)


def test_each_region_takes_its_own_style(weights) -> None:
    stylizer = _stylizer(weights)
    look = FrameLook(masks=(LEFT, 1 - LEFT))
    # 60 iterations stopped the blue region mid-change, where the result moved with the thread
    # count and the CPU's bfloat16 kernels (blue margin 19 with one thread on AMX, 33 with two);
    # by 100 both regions have settled: margins 87-88 (red) and 72-73 (blue) on either.
    image = stylizer.stylize(CONTENT, iterations=100, seed=0, look=look).image
    left_to_red = stylizer.region_style_distance(image, LEFT, 0)
    left_to_blue = stylizer.region_style_distance(image, LEFT, 1)
    right_to_red = stylizer.region_style_distance(image, 1 - LEFT, 0)
    right_to_blue = stylizer.region_style_distance(image, 1 - LEFT, 1)
    assert left_to_red < 0.7 * left_to_blue and right_to_blue < 0.7 * right_to_red
    assert image[:, :20, 0].mean() > image[:, :20, 2].mean() + 20  # red on the left
    assert image[:, 28:, 2].mean() > image[:, 28:, 0].mean() + 20  # blue on the right


def test_look_weights_choose_the_blend(weights) -> None:
    stylizer = _stylizer(weights)
    only_red = stylizer.targets_for(CONTENT.shape, FrameLook(weights=(1.0, 0.0)))
    half = stylizer.targets_for(CONTENT.shape, FrameLook(weights=(0.5, 0.5)))
    red, blue = stylizer.style_grams(CONTENT.shape)
    for layer, target in only_red.items():
        torch.testing.assert_close(target, red[layer])
        torch.testing.assert_close(half[layer], 0.5 * red[layer] + 0.5 * blue[layer])
    assert stylizer.style_distance(RED[:32], FrameLook(weights=(1.0, 0.0))) < \
        stylizer.style_distance(RED[:32], FrameLook(weights=(0.0, 1.0)))


def test_masks_of_the_wrong_shape_or_count_are_refused(weights) -> None:
    stylizer = _stylizer(weights)
    with pytest.raises(UserError, match="does not match the frame"):
        stylizer.stylize(CONTENT, iterations=1, look=FrameLook(masks=(LEFT[:, :10], LEFT[:, :10])))
    with pytest.raises(UserError, match="1 style mask"):
        stylizer.stylize(CONTENT, iterations=1, look=FrameLook(masks=(LEFT,)))


def test_coarse_scale_shrinks_the_masks(weights, device) -> None:
    # at half size a 2x2 block straddling the border (column 25 of 48) counts half to each side
    left = np.zeros_like(LEFT)
    left[:, :25] = 1
    small = reduced_target_images(CONTENT, "random", (), (24, 16), FrameLook(masks=(left, 1 - left))).look
    expected = np.zeros((16, 24), np.float32)
    expected[:, :12], expected[:, 12] = 1.0, 0.5
    np.testing.assert_allclose(small.masks[0], expected, atol=1e-6)
    np.testing.assert_allclose(small.masks[1], 1 - expected, atol=1e-6)
    # and the coarse step is held to them: without them, or swapped, it comes out otherwise
    stylizer = _stylizer(weights, device)
    results = {name: stylizer.stylize(CONTENT, iterations=3, seed=0, scale=0.5, look=look).image
               for name, look in (("masks", FrameLook(masks=(LEFT, 1 - LEFT))), ("swapped", FrameLook(masks=(1 - LEFT, LEFT))),
                                  ("none", None))}
    assert results["masks"].shape == CONTENT.shape
    # measured (bfloat16 and float32, 1 and 2 threads): mean differences 10.6 to 11.0 (swapped), 6.1 (none)
    for other in ("swapped", "none"):
        assert np.abs(results["masks"] - results[other]).mean() > 1.0, other


# ---------------------------------------------------------------- the run command


def _masks(folder: Path, width: int, height: int, frames: int = 0) -> tuple[Path, Path]:
    """A left/right split (soft edge); with ``frames``, as sequences whose border moves right."""
    folder.mkdir(parents=True, exist_ok=True)

    def split(border: int) -> np.ndarray:
        ramp = np.clip((np.arange(width) - border) / 4.0 + 0.5, 0, 1)
        return np.repeat((1 - ramp)[None, :, None] * 255, height, 0).repeat(3, 2)

    if not frames:
        save_image(folder / "left.png", split(width // 2))
        save_image(folder / "right.png", 255 - split(width // 2))
        return folder / "left.png", folder / "right.png"
    for name in ("left", "right"):
        (folder / name).mkdir()
    for i in range(1, frames + 1):
        save_image(folder / "left" / f"m_{i:03d}.png", split(20 + 2 * i))
        save_image(folder / "right" / f"m_{i:03d}.png", 255 - split(20 + 2 * i))
    return folder / "left" / "m_%03d.png", folder / "right"


def _red_blue(folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    save_image(folder / "red.png", RED)
    save_image(folder / "blue.png", BLUE)
    return folder / "red.png", folder / "blue.png"


def _invoke(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


def _redness(image: np.ndarray) -> float:
    return float(image[..., 0].astype(float).mean() - image[..., 2].astype(float).mean())


def test_run_with_a_mask_per_style(tiny_clip: Path, tmp_path: Path) -> None:
    red, blue = _red_blue(tmp_path)
    left, right = _masks(tmp_path / "masks", 64, 48)
    frames = {}
    for name, masks in (("red_left", (left, right)), ("blue_left", (right, left))):
        job = tmp_path / name
        result = _invoke("run", tiny_clip, "--style", red, "--style", blue, "--style-mask", masks[0],
                         "--style-mask", masks[1], "--job-dir", job, *RUN_FAST, "--iterations", "10")
        assert result.exit_code == 0, result.output
        frames[name] = load_image(job / "final" / "frame_00003.png")
    # the same clip with the regions swapped: each side is redder where the red painting applies
    assert _redness(frames["red_left"][:, :24]) > _redness(frames["blue_left"][:, :24]) + 10
    assert _redness(frames["blue_left"][:, 40:]) > _redness(frames["red_left"][:, 40:]) + 10
    job = tmp_path / "red_left"
    kept = sorted(p.relative_to(job).as_posix() for p in (job / "masks").rglob("*.png"))
    assert len(kept) == 2 and kept[0].endswith("style_0/all.png")
    assert read_mask(job / kept[0])[:, :20].min() > 0.99


def test_run_with_moving_mask_sequences_and_a_frame_range(tiny_clip: Path, tmp_path: Path) -> None:
    red, blue = _red_blue(tmp_path)
    left, right = _masks(tmp_path / "masks", 64, 48, frames=5)
    job = tmp_path / "job"
    result = _invoke("run", tiny_clip, "--style", red, "--style", blue, "--style-mask", left, "--style-mask", right,
                     "--frames", "2-4", "--job-dir", job, *RUN_FAST)
    assert result.exit_code == 0, result.output
    kept = sorted((job / "masks").rglob("style_0/*.png"))
    assert [p.name for p in kept] == ["frame_00001.png", "frame_00002.png", "frame_00003.png"]
    # job frame 1 is input frame 2: its border is at 24 px
    assert read_mask(kept[0])[0, 21] > 0.9 and read_mask(kept[0])[0, 27] < 0.1


def test_run_with_blend_keyframes(tiny_clip: Path, tmp_path: Path) -> None:
    red, blue = _red_blue(tmp_path)
    job = tmp_path / "job"
    result = _invoke("run", tiny_clip, "--style", red, "--style", blue, "--style-blend-keyframes", "1:1,0;5:0,1",
                     "--job-dir", job, *RUN_FAST, "--iterations", "10")
    assert result.exit_code == 0, result.output
    content = [load_image(job / "frames" / f"frame_0000{i}.png") for i in (1, 5)]
    final = [load_image(job / "final" / f"frame_0000{i}.png") for i in (1, 5)]
    # against the content's own colours: the first frame turns redder, the last bluer
    assert _redness(final[0]) - _redness(content[0]) > _redness(final[1]) - _redness(content[1]) + 10


def test_a_mask_of_another_size_is_resized_with_a_note(tiny_clip: Path, tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    red, blue = _red_blue(tmp_path)
    left, right = _masks(tmp_path / "masks", 32, 20)
    result = _invoke("run", tiny_clip, "--style", red, "--style", blue, "--style-mask", left, "--style-mask", right,
                     "--job-dir", tmp_path / "job", *RUN_FAST, "--passes", "1", "--frames", "1-2")
    assert result.exit_code == 0, result.output
    notes = [r.getMessage() for r in caplog.records if "note: style mask" in r.getMessage()]
    assert len(notes) == 2 and "is 32x20, the input 64x48; it is resized" in notes[0]


@pytest.mark.parametrize("extra, message", [
    (["--style-mask", "{left}"], "1 style mask(s) for 2 style image(s)"),
    (["--style-mask", "{left}", "--style-mask", "{broken}"], "cannot read style mask"),
    (["--style-mask", "{left}", "--style-mask", "{tmp}/missing.png"], "style mask not found"),
    (["--style-mask", "{left}", "--style-mask", "{short}"], "has 2 images; the job needs 5"),
    (["--style-mask", "{left}", "--style-mask", "{left}", "--style-blend-keyframes", "1:1,0"],
     "cannot be combined"),
    (["--style-blend-keyframes", "1:1,-2"], "not negative"),
    (["--style-blend-keyframes", "1:0,0;3:1,0"], "all zero at frame 1"),
    (["--style-blend-keyframes", "4:1,0;2:0,1"], "in frame order"),
    (["--style-blend-keyframes", "1:1,0;9:0,1"], "keyframe at frame 9 is after the last frame"),
    (["--style-blend-keyframes", "1:1,0,0"], "3 weight(s) per frame for 2 style image(s)"),
    (["--style-blend-keyframes", "1:1,0", "--style-blend-weights", "1,2"], "not both"),
])
def test_bad_masks_and_keyframes_are_one_line_before_extraction(extra: list[str], message: str, tiny_clip: Path,
                                                                tmp_path: Path) -> None:
    red, blue = _red_blue(tmp_path)
    left, _ = _masks(tmp_path / "masks", 64, 48)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    short = tmp_path / "short"
    short.mkdir()
    for i in (1, 2):
        save_image(short / f"{i}.png", np.zeros((48, 64, 3)))
    extra = [a.format(left=left, broken=broken, tmp=tmp_path, short=short) for a in extra]
    job = tmp_path / "job"
    result = _invoke("run", tiny_clip, "--style", red, "--style", blue, "--job-dir", job, *RUN_FAST, *extra)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not list(job.glob("frames/*.png"))


def test_image_command_with_masks(tmp_path: Path) -> None:
    red, blue = _red_blue(tmp_path)
    left, right = _masks(tmp_path / "masks", 64, 48)
    content = tmp_path / "grey.png"
    save_image(content, np.full((48, 64, 3), 128, np.uint8))
    out = tmp_path / "out.png"
    result = _invoke("image", content, "--style", red, "--style", blue, "--style-mask", left, "--style-mask", right,
                     "--size", "64", "--iterations", "30", "--style-layers", "relu1_1,relu2_1", "-q", "-o", out)
    assert result.exit_code == 0, result.output
    image = load_image(out).astype(float)
    assert image[:, :24, 0].mean() > image[:, :24, 2].mean() and image[:, 40:, 2].mean() > image[:, 40:, 0].mean()
    bad = _invoke("image", content, "--style", red, "--style", blue, "--style-mask", left, "-o", out)
    assert bad.exit_code == 2 and "1 style mask(s) for 2" in bad.output


def test_a_worker_uses_the_jobs_masks_and_a_replan_remakes_damaged_ones(tiny_clip: Path, tmp_path: Path) -> None:
    red, blue = _red_blue(tmp_path / "in")
    left, right = _masks(tmp_path / "in" / "masks", 64, 48)
    job = tmp_path / "job"
    args = ["run", tiny_clip, "--style", red, "--style", blue, "--style-mask", left, "--style-mask", right,
            "--job-dir", job, "--plan-only", *RUN_FAST, "--frames", "1-2", "--passes", "1"]
    planned = _invoke(*args)
    assert planned.exit_code == 0, planned.output
    kept = sorted((job / "masks").rglob("*.png"))
    kept[0].write_bytes(b"damaged")
    again = _invoke("work", job, "--until-done")  # a worker reads no mask outside the job folder
    assert again.exit_code == 2 and "style masks are damaged or missing; plan the job again" in again.output
    assert len(again.output.strip().splitlines()) == 1
    assert _invoke(*args).exit_code == 0  # the planner, where the masks are, makes them again
    assert read_mask(kept[0])[:, :20].min() > 0.99
    worked = _invoke("work", job, "--until-done")
    assert worked.exit_code == 0, worked.output
