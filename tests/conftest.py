"""Shared fixtures: tiny synthetic clips and images, made on the fly (nothing downloaded)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from videostyle.images import save_image
from videostyle.video_io import ffmpeg_exe

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def make_clip(path: Path, size: str = "64x48", rate: int = 10, seconds: float = 0.5,
              audio: bool = True) -> Path:
    """A small H.264 clip of ffmpeg's moving test pattern, with a 440 Hz tone when ``audio``."""
    args = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc=size={size}:rate={rate}"]
    if audio:
        args += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=22050"]
    args += ["-t", str(seconds), "-c:v", "libx264", "-pix_fmt", "yuv420p"]
    args += ["-c:a", "aac", "-shortest"] if audio else []
    subprocess.run(args + [str(path)], check=True)
    return path


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5 frames, 64x48, 10 fps, with audio."""
    return make_clip(tmp_path_factory.mktemp("clip") / "tiny.mp4")


@pytest.fixture(scope="session")
def tiny_style(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 64x64 painting-like texture: coloured diagonal stripes with noise."""
    rng = np.random.default_rng(0)
    ys, xs = np.mgrid[0:64, 0:64]
    stripes = ((xs + ys) // 6 % 2).astype(np.float32)
    image = np.stack([200 * stripes + 30, 80 + 100 * (1 - stripes), 160 * stripes + 40], axis=-1)
    image += rng.normal(0, 12, image.shape)
    path = tmp_path_factory.mktemp("style") / "stripes.png"
    save_image(path, image)
    return path


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny tensors: one thread avoids waiting on the other (shared, busy) core; restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
