"""How much memory one frame's optimisation needs, how much the device has, and what fits.

Everything that grows with the frame grows with its pixel count, so the model is bytes per pixel
plus a constant:

* the VGG-19 activations kept for the backward pass, the gradients flowing back, and a handful of
  image-sized float32 vectors (the image, its gradient, the optimiser's flat gradient and step,
  the best iterate): :data:`OPTIMISATION_BYTES_PER_PIXEL`, by network precision;
* the optimiser's state: L-BFGS keeps ``pairs`` (s, y) pairs of image-sized float32 vectors
  (24 bytes per pixel per pair), Adam two moments (24 bytes per pixel). The L-BFGS history is
  given a fixed byte budget (:func:`lbfgs_history_size`), so above 512×512 it stops growing with
  the frame: 100 pairs (the authors') up to 0.26 Mpx, 12 at 1080p, the minimum of 5 at 4K;
* each temporal target the frame is held to (a warped earlier result and its reliability, kept by
  the caller and as a tensor, and the loss's saved difference): :data:`TEMPORAL_TARGET_BYTES_PER_PIXEL`;
  with long-term offsets in multi-pass a frame has up to ten;
* the float32 no-gradient pass that computes the style targets, over the style image scaled to
  the frame (:data:`REFERENCE_BYTES_PER_PIXEL` of the style image's pixels), which happens
  before the optimisation and is counted when it is the larger.

A frame whose estimate exceeds the memory available is planned in tiles (:mod:`videostyle.frame.tiles`:
exact whole-frame losses, VGG-19 activations bounded by one tile): then only image-sized vectors
and the optimiser's state grow with the frame (:data:`TILED_BYTES_PER_PIXEL`), plus one tile's
activations. A frame that does not fit even so is refused in one line naming a size that fits
(:func:`check_frame_fits`).

The constants were measured by ``benchmarks/memory_bench.py`` (peak resident memory of a fresh
process per size, after a warm-up that loads every library, with the optimiser's history full)
on a 2-core CPU with AVX512-BF16; see that script for the table. On CUDA the same per-pixel model
is used. ``benchmarks/gpu_bench.py`` on an NVIDIA H200 (bfloat16, torch 2.11): peak allocated
0.41, 3.44 and 11.92 GB at 512x288, 1920x1080 and 3840x2160 against estimates of 0.95, 3.70 and
12.18 GB. The caching allocator reserved 0.45, 4.87 and 12.46 GB, but it frees its cache and retries
before it reports a GPU out of memory, so the allocated peak is the figure to cover.

Available memory: on CPU the smaller of ``MemAvailable`` (/proc/meminfo) and what the cgroup
(v2 ``memory.max`` or v1 ``memory.limit_in_bytes``) leaves; on CUDA the free memory the driver
reports.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch

from videostyle.config import StyleSettings
from videostyle.errors import UserError
from videostyle.frame.device import choose_precision
from videostyle.frame.tiles import halo_for
from videostyle.frame.vgg import LAYER_NAMES

# L-BFGS stores s = x_k+1 - x_k and y = g_k+1 - g_k, each 3 float32 values per pixel.
BYTES_PER_PAIR_PER_PIXEL = 2 * 3 * 4
LBFGS_MAX_PAIRS = 100  # the authors' (neural-style's nCorrection), kept wherever it fits the budget
# Fewer than this and L-BFGS approaches plain gradient descent (scipy's default is 10). Measured,
# tubingen + starry_night at 192x144, 200 iterations: total loss 2.409e6 with 100 pairs, 2.402e6
# with 12, 2.419e6 with 5 (style distance 0.284, 0.280, 0.274): the budget costs no quality.
LBFGS_MIN_PAIRS = 5
# The authors' full history at their working size, 512x512: 600 MiB. Before the budget the history
# was 2,400 bytes per pixel, 6.6 GB at 1920x1440 and 20 GB at 4K.
LBFGS_HISTORY_BUDGET_BYTES = LBFGS_MAX_PAIRS * BYTES_PER_PAIR_PER_PIXEL * 512 * 512
ADAM_BYTES_PER_PIXEL = 2 * 3 * 4  # first and second moments, float32

# Peak bytes per pixel of one forward + backward with every loss, plus the image-sized vectors
# (not the optimiser's history), CPU with AVX512-BF16. Measured: 512x384, one thread, after a
# warm-up: bfloat16 channels_last 1,296 with 4 pairs (96 B/px) kept, float32 channels_last 1,908
# with 4 pairs; 3840x2160 end to end (memory_bench, 2 threads, 5 pairs full): 12.70 GB
# whole-process peak, about 11.75 GB over the loaded process = 1,417 B/px, 1,297 without the
# history. float16 (older GPUs) stores activations as bfloat16 does.
OPTIMISATION_BYTES_PER_PIXEL = {torch.bfloat16: 1300, torch.float16: 1300, torch.float32: 1820}
# Peak of the float32 no-gradient pass over the style image (targets), per style-image pixel:
# 730 measured at 512x384.
REFERENCE_BYTES_PER_PIXEL = 750
# Libraries loaded lazily by the first optimisation (torch.optim and what it pulls in) and oneDNN's
# kernels: about 180 MB measured, whatever the size; rounded up for the allocator's slack.
CONSTANT_BYTES = 384 * 2**20

# One temporal target: the caller's HxWx3 + HxW float32 arrays, the target as a tensor, and what its
# loss saves for the backward pass. Measured (512x384, one thread, style targets small so their pass
# is not the peak): 10 targets raised the peak by 448 B/px over none.
TEMPORAL_TARGET_BYTES_PER_PIXEL = 48

# With tiles (videostyle.frame.tiles) only image-sized vectors grow with the frame: the image, its
# gradient, the optimiser's flat gradient, step and previous gradient, the evaluated and the best
# iterate, the content and result arrays, and the content layer's targets (relu4_2: 32 B/px).
TILED_BYTES_PER_PIXEL = 250
# Tile cores tried, largest first (fewer tiles: less halo recomputed). Multiples of 32.
TILE_CORES = (2048, 1536, 1024, 768, 512, 256)

GB = 1e9


def lbfgs_history_size(pixels: int, budget: int = LBFGS_HISTORY_BUDGET_BYTES) -> int:
    """L-BFGS pairs for an image of ``pixels``: as many as ``budget`` bytes hold, 5 to 100."""
    fitting = budget // max(1, BYTES_PER_PAIR_PER_PIXEL * pixels)
    return int(min(LBFGS_MAX_PAIRS, max(LBFGS_MIN_PAIRS, fitting)))


def optimiser_state_bytes(pixels: int, optimizer: str) -> int:
    """Bytes of the optimiser's own state for an image of ``pixels`` (L-BFGS with a full history)."""
    if optimizer == "adam":
        return ADAM_BYTES_PER_PIXEL * pixels
    return lbfgs_history_size(pixels) * BYTES_PER_PAIR_PER_PIXEL * pixels


def style_pixels(height: int, width: int, settings: StyleSettings,
                 style_shapes: Sequence[Sequence[int]] = ()) -> int:
    """Pixels of the largest style image once scaled to ``style_scale`` times the frame's long
    side; a square one when the styles' shapes are not known (the worst case)."""
    long_side = settings.style_scale * max(height, width)
    aspects = [min(s[0], s[1]) / max(s[0], s[1]) for s in style_shapes] or [1.0]
    return math.ceil(long_side * long_side * max(aspects))


def estimate_bytes(height: int, width: int, settings: StyleSettings, device: torch.device | str = "cpu",
                   style_shapes: Sequence[Sequence[int]] = (), tile: int = 0, frames: int = 1,
                   temporal_targets: int = 0) -> int:
    """Peak memory (bytes) that stylizing one ``height`` x ``width`` frame adds on ``device``,
    optimiser history full; in tiles of ``tile`` px (0: untiled, see :mod:`videostyle.frame.tiles`).
    ``style_shapes``: (H, W) of the style images, when known. ``frames``: that many frames
    optimised together, untiled (one batched network call, each frame its own optimiser state).
    ``temporal_targets``: the most warped results one frame is held to (whole-frame in tiles too)."""
    device = torch.device(device)
    pixels = height * width
    per_pixel = OPTIMISATION_BYTES_PER_PIXEL[choose_precision(settings.precision, device).dtype]
    # held through the whole optimisation, in tiles too: the optimiser's state and the temporal targets
    held = optimiser_state_bytes(pixels, settings.optimizer) + TEMPORAL_TARGET_BYTES_PER_PIXEL * temporal_targets * pixels
    style = style_pixels(height, width, settings, style_shapes)
    if not tile:
        return CONSTANT_BYTES + max(frames * (per_pixel * pixels + held), REFERENCE_BYTES_PER_PIXEL * style)
    side = tile + 2 * halo(settings)
    region = min(height, side) * min(width, side)
    one_tile = max(per_pixel, REFERENCE_BYTES_PER_PIXEL) * region
    # The style image itself (float32 RGB) is held while its Gram matrices are added up.
    return CONSTANT_BYTES + TILED_BYTES_PER_PIXEL * pixels + held + 12 * style + one_tile


def frames_that_fit(height: int, width: int, settings: StyleSettings, device: torch.device | str = "cpu",
                    style_shapes: Sequence[Sequence[int]] = (), wanted: int = 1, available: int | None = None,
                    temporal_targets: int = 0) -> int:
    """How many ``height`` x ``width`` frames, at most ``wanted``, one batched optimisation fits
    in the memory available (``available`` bytes when given); at least 1, which
    :func:`check_frame_fits` plans."""
    room = available_bytes(device) if available is None else available
    frames = max(1, wanted)
    while frames > 1 and estimate_bytes(height, width, settings, device, style_shapes, frames=frames,
                                        temporal_targets=temporal_targets) > room:
        frames -= 1
    return frames


def halo(settings: StyleSettings) -> int:
    """The tiles' halo for the deepest layer the settings use."""
    deepest = max((*settings.content_layers, *settings.style_layers), key=LAYER_NAMES.index)
    return halo_for(deepest)


def plan_tile(height: int, width: int, settings: StyleSettings, device: torch.device | str, available: int,
              style_shapes: Sequence[Sequence[int]] = (), temporal_targets: int = 0) -> int | None:
    """0 when the frame fits untiled in ``available`` bytes, else the largest tile core that
    fits, or None when nothing does. Tiles need plain (not L1-normalised) gradients."""
    if estimate_bytes(height, width, settings, device, style_shapes, temporal_targets=temporal_targets) <= available:
        return 0
    if settings.normalize_gradients:
        return None
    for core in TILE_CORES:
        if core < max(height, width) and estimate_bytes(height, width, settings, device, style_shapes, core,
                                                        temporal_targets=temporal_targets) <= available:
            return core
    return None


def least_bytes(height: int, width: int, settings: StyleSettings, device: torch.device | str = "cpu",
                style_shapes: Sequence[Sequence[int]] = (), temporal_targets: int = 0) -> int:
    """The smallest estimate over every plan (untiled, or any tile core)."""
    cores = () if settings.normalize_gradients else TILE_CORES
    return min(estimate_bytes(height, width, settings, device, style_shapes, tile, temporal_targets=temporal_targets)
               for tile in (0, *cores))


def available_bytes(device: torch.device | str = "cpu") -> int:
    """Memory a new allocation can use now on ``device`` (see the module doc)."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    return min(_meminfo_available(), _cgroup_room(), _address_space_room())


def _address_space_room() -> int:
    """What ``ulimit -v`` (RLIMIT_AS) leaves of this process's address space: an allocation past
    it fails however much memory the machine has."""
    import resource

    soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return 2**62
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return soft
    used = next((int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmSize:")), 0)
    return max(0, soft - used)


def _meminfo_available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 2**62  # not Linux: no limit known


def _cgroup_room() -> int:
    """The cgroup's limit minus its usage; effectively unlimited when there is no limit."""
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and usage is not None and limit < 2**60:
            return max(0, limit - usage)
    return 2**62


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max" (v2, no limit) reads as None


def largest_fitting(height: int, width: int, available: int, settings: StyleSettings,
                    device: torch.device | str = "cpu", style_shapes: Sequence[Sequence[int]] = (),
                    temporal_targets: int = 0) -> tuple[int, int] | None:
    """The largest (height, width) of the same aspect ratio that some plan fits in ``available``
    bytes, or None when not even a 16-px frame fits."""
    def fits(scale: float) -> bool:
        h, w = max(16, int(height * scale)), max(16, int(width * scale))
        return least_bytes(h, w, settings, device, style_shapes, temporal_targets) <= available

    low, high = 16 / min(height, width), 1.0
    if not fits(low):
        return None
    for _ in range(40):  # bisection on the scale; 40 halvings are far below one pixel
        middle = (low + high) / 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    return max(16, int(height * low)), max(16, int(width * low))


def check_frame_fits(height: int, width: int, settings: StyleSettings, device: torch.device | str = "cpu",
                     style_shapes: Sequence[Sequence[int]] = (), available: int | None = None,
                     temporal_targets: int = 0) -> int:
    """How to stylize a ``height`` x ``width`` frame on ``device`` within the memory available
    (``available`` bytes when given), held to at most ``temporal_targets`` warped results: 0
    untiled, else the tile core (see :func:`plan_tile`). A frame no plan fits is refused, before
    anything is allocated, in one line saying what size fits."""
    device = torch.device(device)
    room = available_bytes(device) if available is None else available
    tile = plan_tile(height, width, settings, device, room, style_shapes, temporal_targets)
    if tile is not None:
        return tile
    needed = least_bytes(height, width, settings, device, style_shapes, temporal_targets)
    fitting = largest_fitting(height, width, room, settings, device, style_shapes, temporal_targets)
    advice = f"{fitting[1]}x{fitting[0]} or smaller fits" if fitting else "no frame fits; free some memory"
    raise UserError(f"a {width}x{height} frame needs about {needed / GB:.1f} GB on {device.type}, "
                    f"{room / GB:.1f} GB available; {advice}")

