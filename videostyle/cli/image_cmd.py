"""Command ``videostyle image``: stylize one picture (the per-frame core, on a single image)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from videostyle.cli.group import main
from videostyle.cli.settings_options import settings_from_cli, settings_options
from videostyle.errors import UserError
from videostyle.frame.colors import color_stats
from videostyle.frame.optimize import Progress
from videostyle.images import load_image, long_side_size, resize, save_image
from videostyle.userfiles import check_new_file


def _fmt(losses: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.4g}" for k, v in losses.items() if k == "total" or v)


@main.command("image")
@click.argument("content", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--style", "styles", multiple=True, required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Style image; repeat for a blend of several.")
@click.option("--style-mask", "style_masks", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Region of each --style, in order: a greyscale image, white where that style applies.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Output PNG file.")
@click.option("--size", type=int, default=512, show_default=True, help="Long side of the result in pixels.")
@click.option("--iterations", type=int, default=500, show_default=True,
              help="Iteration budget (loss evaluations); may stop earlier, see --tol-loss-relative.")
@click.option("--init", "init", default="random", show_default=True,
              help="random | content | path of an image to start from.")
@settings_options("image")
@click.option("--preset", help="A preset shipped with videostyle (its [style] table, seed and device).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), help="TOML config file.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def image(content: Path, styles: tuple[Path, ...], style_masks: tuple[Path, ...], output: Path, size: int, iterations: int, init: str,
          preset: str | None, config_file: Path | None, quiet: bool, overrides: dict[str, dict[str, Any]],
          learning_rate: float | None) -> None:
    """Stylize the image CONTENT with one or more --style images (Gatys et al. on VGG-19)."""
    # Imported here so `videostyle --help` and other commands don't pay for loading torch.
    from tqdm import tqdm

    from videostyle.looks import FrameLook, check_masks_fit_styles, read_mask, resize_mask
    from videostyle.frame.memory import check_frame_fits
    from videostyle.frame.stylize import Stylizer, resolve_device

    if size < 16:
        raise UserError("--size must be at least 16 pixels")
    if iterations < 1:
        raise UserError("--iterations must be at least 1")
    if output.suffix.lower() != ".png":
        raise UserError(f"output {output} must be a .png file")
    check_new_file(output, [content, *styles, *style_masks, *([Path(init)] if init not in ("random", "content") else [])])
    settings = settings_from_cli(preset, config_file, overrides, learning_rate, n_styles=len(styles))
    seed, device = settings.video.seed, settings.video.device
    check_masks_fit_styles(len(style_masks), len(styles), blended=bool(settings.style.style_blend_weights))
    source, style_images = load_image(content), [load_image(p) for p in styles]
    mask_images = [read_mask(p) for p in style_masks]
    width, height = long_side_size(source.shape, size)
    # Before the frame is enlarged: a size that does not fit is one line, not an out-of-memory kill.
    check_frame_fits(height, width, settings.style, resolve_device(device), [s.shape for s in style_images])
    content_image = resize(source, (width, height))
    h, w = content_image.shape[:2]
    init_value: Any = init
    if init not in ("random", "content"):
        init_value = resize(load_image(init), (w, h)).astype("float32")

    look = FrameLook(masks=tuple(resize_mask(m, (w, h)) for m in mask_images)) if mask_images else None
    # histogram colour transfer: the style takes the colours of the picture as it is stylized
    reference = color_stats([content_image]) if settings.style.color_transfer == "histogram" else None
    stylizer = Stylizer(style_images, settings.style, content_image.shape[:2], device=device,
                        color_reference=reference)
    with tqdm(total=iterations, unit="it", file=sys.stderr, disable=quiet, leave=False,
              desc=f"{content.name} {content_image.shape[1]}x{content_image.shape[0]}") as bar:
        def show(progress: Progress) -> None:
            bar.update(progress.iteration - bar.n)
            bar.set_postfix_str(f"style {progress.losses['style']:.3g} content {progress.losses['content']:.3g}",
                                refresh=False)

        result = stylizer.stylize(content_image, iterations=iterations, init=init_value, seed=seed, callback=show,
                                   look=look)
    save_image(output, result.image)

    own_style = stylizer.losses(content_image, content_image, look=look)["style"]
    ratio = own_style / result.losses["style"] if result.losses["style"] > 0 else float("inf")
    h, w = content_image.shape[:2]
    click.echo(
        f"wrote {output} ({w}x{h}): {result.iterations} iterations in {result.seconds:.1f} s "
        f"({result.seconds / max(result.iterations, 1):.3f} s/it, {stylizer.device.type} "
        f"{stylizer.precision.name}); losses: {_fmt(result.losses)}; "
        f"style loss {ratio:.1f}x below the content image's ({own_style:.4g})")
