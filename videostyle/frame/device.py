"""Device and numeric precision choice for the stylization core.

Precision policy (``StyleSettings.precision``):

* ``float32``: everything in float32 (on CPU in channels_last layout, which oneDNN runs faster).
* ``auto``: the fastest path the device has, with float32 kept wherever accuracy matters.
  The VGG network runs in a 16-bit type (its weights cast once, not per call as autocast does
  for parameters that need no gradient) in channels_last layout; the image being optimised, the
  optimiser state, Gram matrices and loss sums stay float32.

  - CPU with native bfloat16 (AVX512-BF16 / AMX, checked through oneDNN): bfloat16. Measured on
    this project's 2-core machine, one VGG-19 forward+backward with the Gram losses runs about
    2x faster than float32 (see ``benchmarks/iteration_bench.py``). Without native support bf16
    is emulated and slower, so float32 is kept.
  - CUDA compute capability >= 8.0: bfloat16 (same exponent range as float32, no loss scaling).
  - Older CUDA GPUs: float16 with a dynamic loss scale (gradients of the mean losses are tiny
    and would underflow float16 otherwise).

* ``float16``: that float16 + loss-scaling path on any device, so it can be run and tested where
  ``auto`` would choose bfloat16 (a recent GPU, a CPU). torch runs float16 convolutions on CPU,
  but slowly (measured here: a 64-channel 3x3 convolution forward + backward at 64x64 took
  1.09 s in float16, 1.7 ms in bfloat16, 5.9 ms in float32): for tests and checks, not for work.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from videostyle.errors import UserError

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "float32", "float16")


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> CUDA when present, else CPU; ``cpu``, ``cuda``, ``cuda:N`` (or ``mps``) as given.

    A device that is not available here is a UserError.
    """
    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"device {name!r} requested but CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(f"device {name!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
        return device
    if device.type == "mps":
        if not torch.backends.mps.is_available():
            raise UserError("device 'mps' requested but it is not available on this machine")
        return device
    raise UserError(f"unsupported device {name!r}; use auto, cpu, cuda or cuda:N")


@dataclass(frozen=True)
class Precision:
    """How the network runs: ``dtype`` of its weights/activations, memory layout, loss scaling."""

    dtype: torch.dtype = torch.float32
    channels_last: bool = False
    # float16 needs its gradients scaled up to survive; bfloat16 and float32 do not.
    loss_scaling: bool = False

    @property
    def name(self) -> str:
        return str(self.dtype).removeprefix("torch.") + (" channels_last" if self.channels_last else "")


FLOAT32 = Precision()
CPU_FLOAT32 = Precision(torch.float32, channels_last=True)
FLOAT16 = Precision(torch.float16, channels_last=True, loss_scaling=True)


def cpu_has_native_bf16() -> bool:
    """True when oneDNN has bfloat16 kernels for this CPU (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # private API; absent in some builds
        return False


def choose_precision(setting: str, device: torch.device) -> Precision:
    """The precision for ``setting`` (one of :data:`PRECISIONS`) on ``device``; see the module doc."""
    if setting not in PRECISIONS:
        raise UserError(f"unknown precision {setting!r}; choose one of: {', '.join(PRECISIONS)}")
    if setting == "float16":
        return FLOAT16
    if device.type == "cpu":
        # oneDNN's convolutions are faster in channels_last in float32 too (~1.2x here).
        if setting == "float32" or not cpu_has_native_bf16():
            return CPU_FLOAT32
        return Precision(torch.bfloat16, channels_last=True)
    if setting == "float32":
        return FLOAT32
    if device.type == "cuda":
        if torch.cuda.get_device_capability(device)[0] >= 8:
            return Precision(torch.bfloat16, channels_last=True)
        return FLOAT16
    return FLOAT32


def limit_threads(threads: int) -> None:
    """Use at most ``threads`` CPU threads in torch and OpenCV (farm workers sharing a machine).

    Without a limit each worker takes every core and N workers on one machine fight over them.
    """
    if threads < 1:
        raise UserError(f"--threads must be at least 1, not {threads}")
    import cv2  # only here: the optimizer itself never needs OpenCV

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)


def stylization_device(name: str = "auto") -> torch.device:
    """The device to stylize on (see ``resolve_device``), set up so that a fixed seed gives the same
    result: cuDNN's fastest kernels may reduce in varying order, so they are turned off; and that
    float32 is float32: TF32 (on by default for cuDNN convolutions) rounds their inputs to 10 bits
    of mantissa. The switches are process-wide in torch, which is why they are made here, where a
    device is chosen for stylization, and not hidden in a constructor."""
    device = resolve_device(name)
    if device.type == "cuda":
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    return device
