"""Stylizer and optimisation loop on tiny images (real VGG-19 weights at 24-32 px)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from videostyle.config import StyleSettings, resolve_settings
from videostyle.errors import UserError
from videostyle.frame.colors import original_colors, rgb_to_yuv
from videostyle.frame.device import choose_precision, resolve_device
from videostyle.frame.losses import gram_matrix
from videostyle.frame.optimize import Progress, RelativeLossStop, optimize
from videostyle.frame.stylize import FrameTask, Stylizer, TemporalTarget
from videostyle.frame.vgg import VGGFeatures
from videostyle.images import load_image, resize_long_side

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


@pytest.fixture(scope="module")
def weights(vgg_weights):
    return vgg_weights  # (tests/conftest.py)


def _image(h, w, seed, kind="noise"):
    rng = np.random.default_rng(seed)
    if kind == "stripes":
        yy, xx = np.mgrid[0:h, 0:w]
        base = 127 + 120 * np.sin((xx + 2 * yy) / 2.0)
        return np.stack([base, 255 - base, np.full_like(base, 60.0)], axis=-1).astype(np.uint8)
    smooth = np.kron(rng.uniform(0, 255, (h // 4 + 1, w // 4 + 1, 3)), np.ones((4, 4, 1)))[:h, :w]
    return smooth.astype(np.uint8)


CONTENT = _image(24, 32, 0)
STYLE_A = _image(40, 40, 1, "stripes")
STYLE_B = _image(36, 48, 2)
FAST = StyleSettings(tol_loss_relative=0.0)


def _stylizer(weights, styles=(STYLE_A,), device="cpu", **changes) -> Stylizer:
    return Stylizer(list(styles), replace(FAST, **changes), CONTENT.shape[:2], device=device, vgg_weights=weights)


def _grams_by_hand(weights, image: np.ndarray, layers) -> dict[str, torch.Tensor]:
    """Gram matrices F Fᵀ / (C·h·w) of ``image``, in float64 from a float32 network of its own: not
    the stylizer's code path."""
    net = VGGFeatures(weights, "max", layers)
    pixels = torch.from_numpy(np.asarray(image, np.float32).transpose(2, 0, 1).copy())[None]
    with torch.no_grad():
        feats = net(net.pixels_to_input(pixels))
    grams = {}
    for layer in layers:
        f = feats[layer].double()[0]
        c, h, w = f.shape
        flat = f.reshape(c, h * w)
        grams[layer] = (flat @ flat.T / (c * h * w))[None]
    return grams


# ----- optimisation loop (no network) -----------------------------------------------------------

def _quadratic(x):
    return {"a": ((x - 3.0) ** 2).sum(), "b": 0.1 * (x ** 2).sum()}


@pytest.mark.parametrize("method", ["lbfgs", "adam"])
def test_optimize_reduces_the_loss_and_reports_every_iteration(method):
    x = torch.zeros(5, requires_grad=True)
    seen: list[Progress] = []
    out = optimize(x, _quadratic, iterations=12, method=method, learning_rate=1.0 if method == "lbfgs" else 0.3,
                   callback=seen.append)
    assert [p.iteration for p in seen] == list(range(1, 13)) and out.iterations == 12
    assert set(seen[0].losses) == {"a", "b", "total"}
    assert seen[-1].losses["total"] < 0.2 * seen[0].losses["total"]
    assert all(b.elapsed >= a.elapsed for a, b in zip(seen, seen[1:]))
    assert out.stop_reason == "budget"


def test_optimize_returns_the_best_iterate_not_an_overshoot():
    # A fixed-step L-BFGS overshoots a steep narrow valley: the loss jumps now and then. The image
    # handed back must be the evaluated iterate with the lowest loss, with that iterate's losses.
    def objective(x):
        return {"valley": 1e4 * (x[0] - 1.0) ** 2 + (x[1] + 2.0) ** 2}

    x = torch.zeros(2, requires_grad=True)
    out = optimize(x, objective, iterations=9, method="lbfgs", learning_rate=1.0)
    assert max(out.history) > 10 * min(out.history)  # it did overshoot on the way
    assert out.losses["total"] == min(out.history)
    assert float(objective(x.detach())["valley"]) == pytest.approx(min(out.history), rel=1e-6)


def test_a_warm_start_takes_a_first_step_that_bfloat16_can_see():
    # The loss sees x only through bfloat16 (as the network's input does): torch's first step,
    # min(1, 1/|g|₁)·g, is 1e-6 per value here and vanishes in the rounding, so the first
    # curvature pair measures only the float32 term's weak curvature and the second step jumps
    # far away (loss 1.3e8 -> 5.3e14 here; on real frames 9.3 -> 4e11). A warm start's first
    # step moves its largest value FIRST_STEP, and it descends without a spike (to 5.3e4 here).
    target = torch.linspace(100.0, 140.0, 1000)

    def objective(x):
        seen = x.to(torch.bfloat16).float()  # what a bfloat16 network sees
        return {"features": 1e6 * ((seen - target) ** 2).mean(), "tv": 1e-3 * (x ** 2).mean()}

    results = {}
    for warm in (False, True):
        x = torch.full((1000,), 120.0, requires_grad=True)
        results[warm] = optimize(x, objective, iterations=12, method="lbfgs", learning_rate=1.0, warm_start=warm)
    cold, warm = results[False], results[True]
    assert max(cold.history) > 1e5 * cold.history[0]  # torch's steps blow up
    assert max(warm.history) <= warm.history[0]
    assert warm.losses["total"] < 0.05 * warm.history[0]


def test_lbfgs_warm_start_steps_are_torchs_after_the_first():
    # A warm start whose first step already moves a value by FIRST_STEP or more (one value, step
    # 1.5·g/|g|₁ = 1.5) takes torch's L-BFGS steps, one for one.
    x, y = torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)
    out = optimize(x, _quadratic, iterations=8, method="lbfgs", learning_rate=1.5, warm_start=True)
    plain = torch.optim.LBFGS([y], lr=1.5, max_iter=1, tolerance_grad=-1.0, tolerance_change=-1.0)
    history = []

    def closure():
        plain.zero_grad()
        loss = sum(_quadratic(y).values())
        loss.backward()
        history.append(float(loss.detach()))
        return loss

    for _ in range(8):
        plain.step(closure)
    assert out.history == pytest.approx(history, rel=1e-6)


def test_relative_loss_stop_rule():
    stop = RelativeLossStop(tol=0.01, interval=10)
    assert not stop.should_stop(10, 100.0)  # first check only records
    assert not stop.should_stop(15, 100.0)  # not a check iteration
    assert not stop.should_stop(20, 98.0)  # moved 2%
    assert stop.should_stop(30, 97.5)  # moved 0.5%
    assert not RelativeLossStop(0.0, 10).should_stop(30, 1.0)


def test_optimize_stops_early_when_the_loss_settles():
    x = torch.zeros(5, requires_grad=True)
    out = optimize(x, _quadratic, iterations=200, tol_loss_relative=1e-4, tol_loss_relative_interval=5)
    assert out.stop_reason == "converged" and out.iterations == 10  # converged by 5: checks at 5 (record) and 10
    x2 = torch.zeros(5, requires_grad=True)
    assert optimize(x2, _quadratic, iterations=30, tol_loss_relative=0.0).iterations == 30


def test_optimize_keeps_the_last_finite_iterate():
    calls = {"n": 0}

    def objective(x):
        calls["n"] += 1
        loss = ((x - 1.0) ** 2).sum()
        return {"loss": loss * float("nan") if calls["n"] == 4 else loss}

    x = torch.zeros(3, requires_grad=True)
    snapshots = []
    out = optimize(x, objective, iterations=10, method="adam", learning_rate=0.1,
                   callback=lambda p: snapshots.append(x.detach().clone()))
    assert out.stop_reason == "non-finite" and out.iterations == 4
    # restored to the iterate evaluated at iteration 3, i.e. the state before the 3rd update
    assert torch.isfinite(x).all()
    assert torch.allclose(x.detach(), snapshots[1])


# ----- devices and precision ---------------------------------------------------------------------

def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(UserError, match="unknown device|unsupported device"):
        resolve_device("toaster")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="CUDA is not available"):
            resolve_device("cuda:0")


def test_precision_choice(monkeypatch):
    cpu = torch.device("cpu")
    assert choose_precision("float32", cpu).dtype == torch.float32
    monkeypatch.setattr("videostyle.frame.device.cpu_has_native_bf16", lambda: True)
    assert choose_precision("auto", cpu).dtype == torch.bfloat16 and choose_precision("auto", cpu).channels_last
    assert choose_precision("float32", cpu).dtype == torch.float32
    monkeypatch.setattr("videostyle.frame.device.cpu_has_native_bf16", lambda: False)
    assert choose_precision("auto", cpu).dtype == torch.float32
    forced = choose_precision("float16", cpu)
    assert forced.dtype == torch.float16 and forced.loss_scaling
    with pytest.raises(UserError):
        choose_precision("float8", cpu)


# ----- stylizer ----------------------------------------------------------------------------------

def test_style_targets_are_the_style_images_grams(weights):
    st = _stylizer(weights)
    style = resize_long_side(STYLE_A, max(CONTENT.shape[:2]))
    expected = _grams_by_hand(weights, style, st.style_layers)
    for layer in st.style_layers:
        torch.testing.assert_close(st.style_targets[layer].double(), expected[layer], rtol=1e-4, atol=1e-3)
    assert st.style_distance(style) == pytest.approx(0.0, abs=1e-6)
    assert st.style_distance(CONTENT) > 0.1


def test_blend_weights_mix_the_grams(weights):
    a, b = _stylizer(weights, [STYLE_A]), _stylizer(weights, [STYLE_B])
    mixed = _stylizer(weights, [STYLE_A, STYLE_B], style_blend_weights=(3.0, 1.0))
    equal = _stylizer(weights, [STYLE_A, STYLE_B])
    for layer in mixed.style_layers:
        torch.testing.assert_close(mixed.style_targets[layer],
                                   0.75 * a.style_targets[layer] + 0.25 * b.style_targets[layer])
        torch.testing.assert_close(equal.style_targets[layer],
                                   0.5 * a.style_targets[layer] + 0.5 * b.style_targets[layer])
    with pytest.raises(UserError, match="blend weight"):
        _stylizer(weights, [STYLE_A, STYLE_B], style_blend_weights=(1.0,))


def test_style_scale_sets_the_style_image_size(weights):
    small, large = _stylizer(weights, style_scale=0.75), _stylizer(weights, style_scale=1.5)
    for st, scale in ((small, 0.75), (large, 1.5)):
        style = resize_long_side(STYLE_A, round(scale * 32))
        assert st.style_distance(style) == pytest.approx(0.0, abs=1e-6)
    assert small.style_distance(resize_long_side(STYLE_A, 48)) > 0.01


def test_a_wide_painting_is_never_scaled_below_what_the_deepest_layer_needs(weights):
    # A reduced pass of a 32x24 frame at half size is 16x16; a Starry-Night-shaped (3:1) painting
    # at that long side would be 16x5, which relu5_1 cannot see: it is taken at 47x16 instead (the
    # least long side whose short side rounds to 16), at the full 32 px too (32x11 before).
    wide = _image(30, 90, 3, "stripes")
    st = _stylizer(weights, styles=(wide,))
    result = st.stylize_batch([FrameTask(CONTENT)], iterations=1, scale=0.5)[0]
    assert result.image.shape == CONTENT.shape
    small = Stylizer([wide], FAST, (16, 16), device="cpu", vgg_weights=weights)
    assert resize_long_side(wide, 47).shape[:2] == (16, 47)
    assert small.style_distance(resize_long_side(wide, 47)) == pytest.approx(0.0, abs=1e-6)
    assert st.style_distance(resize_long_side(wide, 47)) == pytest.approx(0.0, abs=1e-6)
    # a painting wide enough already is scaled as before
    assert _stylizer(weights, style_scale=1.5).style_distance(resize_long_side(STYLE_A, 48)) == pytest.approx(0.0, abs=1e-6)


def test_stylize_lowers_style_loss_and_is_deterministic(weights, device):
    st = _stylizer(weights, device=device)
    own = st.losses(CONTENT, CONTENT)
    first = st.stylize(CONTENT, iterations=15, seed=3)
    again = st.stylize(CONTENT, iterations=15, seed=3)
    other = st.stylize(CONTENT, iterations=15, seed=4)
    assert first.image.shape == CONTENT.shape and first.image.dtype == np.float32
    assert first.image.min() >= 0 and first.image.max() <= 255
    assert first.iterations == 15
    assert set(first.losses) == {"content", "style", "tv", "temporal", "total"}
    assert first.losses["style"] < own["style"] / 2
    np.testing.assert_array_equal(first.image, again.image)
    assert np.abs(first.image - other.image).max() > 1.0


def test_inits(weights):
    st = _stylizer(weights)
    assert np.array_equal(st.stylize(CONTENT, iterations=0, init="content").image, CONTENT.astype(np.float32))
    start = _image(24, 32, 9).astype(np.float32)
    np.testing.assert_array_equal(st.stylize(CONTENT, iterations=0, init=start).image, start)
    noise = st.stylize(CONTENT, iterations=0, init="random", seed=1).image
    # the authors' init: the mean pixel plus tiny noise
    np.testing.assert_allclose(noise.mean(axis=(0, 1)), [123.68, 116.779, 103.939], atol=0.01)
    assert 0 < noise.std(axis=(0, 1)).max() < 0.01
    with pytest.raises(UserError, match="init image"):
        st.stylize(CONTENT, iterations=1, init=start[:10])
    with pytest.raises(UserError, match="init"):
        st.stylize(CONTENT, iterations=1, init="sideways")


def test_temporal_loss_pulls_reliable_pixels_only(weights, device):
    st = _stylizer(weights, device=device, content_weight=0.0, style_weight=0.0, tv_weight=0.0)
    target = _image(24, 32, 5).astype(np.float32)
    reliable = np.zeros((24, 32), np.float32)
    reliable[:, :16] = 1.0
    start = _image(24, 32, 6).astype(np.float32)
    out = st.stylize(CONTENT, iterations=10, init=start, temporal=[TemporalTarget(target, reliable)],
                     temporal_weight=1e3)
    assert np.abs(out.image[:, :16] - target[:, :16]).max() < 0.5
    np.testing.assert_array_equal(out.image[:, 16:], start[:, 16:])
    assert out.losses["temporal"] < 1e-3 * st.losses(start, CONTENT, [TemporalTarget(target, reliable)], 1e3)["temporal"]
    with pytest.raises(UserError, match="temporal target"):
        st.stylize(CONTENT, iterations=1, temporal=[TemporalTarget(target[:8], reliable)], temporal_weight=1.0)


def test_a_target_with_its_own_criterion_is_measured_by_it(weights):
    # Every pixel 5 grey levels off its target: mse gives 25 a pixel, smooth L1 (knee 1) 4.5.
    st = _stylizer(weights, content_weight=0.0, style_weight=0.0, tv_weight=0.0, temporal_criterion="smoothl1")
    target = _image(24, 32, 5).astype(np.float32)
    image, everywhere = target + 5.0, np.ones((24, 32), np.float32)

    def temporal(criterion: str | None) -> float:
        return st.losses(image, CONTENT, [TemporalTarget(target, everywhere, criterion)], 1.0)["temporal"]

    assert temporal(None) == pytest.approx(temporal("smoothl1"))
    assert temporal("mse") / temporal(None) == pytest.approx(25 / 4.5, rel=1e-4)


def test_original_colors_keep_content_chroma_and_stylized_luminance(weights):
    plain = _stylizer(weights).stylize(CONTENT, iterations=8, seed=1)
    kept = _stylizer(weights, color_transfer="luminance").stylize(CONTENT, iterations=8, seed=1)
    expected = original_colors(CONTENT, plain.image)
    np.testing.assert_allclose(kept.image, expected, atol=1e-3)
    inside = (expected > 1).all(axis=-1) & (expected < 254).all(axis=-1)  # not clipped
    assert inside.mean() > 0.3
    yuv_kept, yuv_content, yuv_plain = rgb_to_yuv(kept.image), rgb_to_yuv(CONTENT), rgb_to_yuv(plain.image)
    np.testing.assert_allclose(yuv_kept[inside][:, 1:], yuv_content[inside][:, 1:], atol=1e-3)
    np.testing.assert_allclose(yuv_kept[inside][:, 0], yuv_plain[inside][:, 0], atol=1e-3)


def test_fast_precision_features_stay_close_to_float32(weights):
    st = _stylizer(weights)
    if st.precision.dtype == torch.float32:
        pytest.skip("no reduced-precision fast path on this machine")
    pixels = st._pixels(CONTENT)
    # the conversion to network input is exact in both (only the layers run in low precision)
    torch.testing.assert_close(st.fast_vgg.pixels_to_input(pixels), st.vgg.pixels_to_input(pixels), rtol=0, atol=0)
    with torch.no_grad():
        ref, fast = st.vgg(st.vgg.pixels_to_input(pixels)), st._fast_features(pixels)
    for layer in st.style_layers:
        rel = float((fast[layer].float() - ref[layer]).norm() / ref[layer].norm())
        assert rel < 0.02, layer
    assert st.stylize(CONTENT, iterations=3).losses["total"] > 0


def test_content_distance(weights):
    st = _stylizer(weights)
    assert st.content_distance(CONTENT, CONTENT) == 0.0
    assert st.content_distance(_image(24, 32, 7), CONTENT) > 0.1


def test_bad_settings_are_user_errors(weights):
    for changes in ({"style_layers": ("relu9_1",)}, {"optimizer": "sgd"}, {"style_weight": -1.0},
                    {"style_layer_weights": ("relu1_1:1",)},
                    {"temporal_criterion": "l1"}, {"style_scale": 0.0}, {"pooling": "min"}):
        with pytest.raises(UserError):
            _stylizer(weights, **changes)
    with pytest.raises(UserError, match="at least one style"):
        Stylizer([], FAST, CONTENT.shape[:2], device="cpu", vgg_weights=weights)
    with pytest.raises(UserError, match="at least 16 px"):
        _stylizer(weights).stylize(CONTENT[:8, :8], iterations=1)


def test_optimize_says_why_it_stopped():
    budget = optimize(torch.zeros(4, requires_grad=True), _quadratic, iterations=3)
    assert budget.stop_reason == "budget" and budget.iterations == 3
    settled = optimize(torch.zeros(4, requires_grad=True), _quadratic, iterations=200, tol_loss_relative=1e-3,
                       tol_loss_relative_interval=5)
    assert settled.stop_reason == "converged" and settled.iterations < 200


def test_reduced_scale_optimises_small_and_returns_the_content_size(weights):
    content = _image(48, 64, 3)
    st = Stylizer([STYLE_A], FAST, content.shape[:2], device="cpu", vgg_weights=weights)
    result = st.stylize(content, iterations=3, init="content", scale=0.5)
    assert result.image.shape == content.shape and result.image.dtype == np.float32
    assert result.iterations == 3
    # The coarse step is held to the painting seen at its own size: Grams of the style scaled to 32 px.
    small = st.targets_for((24, 32))
    expected = _grams_by_hand(weights, resize_long_side(STYLE_A, 32), st.style_layers)
    for layer in st.style_layers:
        torch.testing.assert_close(small[layer].double(), expected[layer], rtol=1e-4, atol=1e-3)
    # Temporal targets are reduced with the content: a reliable target pulls the small image too.
    target = np.full_like(content, 200.0, dtype=np.float32)
    free = st.stylize(content, iterations=10, init="content", scale=0.5)
    held = st.stylize(content, iterations=10, init="content", scale=0.5, temporal_weight=1e4,
                      temporal=[TemporalTarget(target, np.ones(content.shape[:2], np.float32))])
    assert abs(float(held.image.mean()) - 200.0) < abs(float(free.image.mean()) - 200.0) - 5
    with pytest.raises(UserError, match="scale"):
        st.stylize(content, iterations=1, scale=1.5)


def test_float16_takes_the_loss_scaled_path_and_lowers_the_loss_as_float32_does(weights, device):
    half, full = (_stylizer(weights, device=device, precision=p) for p in ("float16", "float32"))
    assert half.precision.dtype == torch.float16 and half.precision.loss_scaling
    own = full.losses(CONTENT, CONTENT)["style"]
    results = {name: st.stylize(CONTENT, iterations=12, seed=3) for name, st in (("half", half), ("full", full))}
    assert np.isfinite(results["half"].image).all() and results["half"].stop_reason == "budget"
    # losses reported by the float32 network in both; measured (CPU, 1 and 2 threads): float16 0.0088 and
    # 0.0075 of own, float32 0.0084 and 0.011, bfloat16 0.0090 and 0.0088
    assert results["half"].losses["style"] < 0.05 * own
    assert results["half"].losses["style"] < 3 * results["full"].losses["style"]


def test_avg_pooling_keeps_the_loss_scale_of_max_pooling(weights):
    # Average pools are scaled (videostyle.frame.vgg.AVG_POOL_SCALE) so that the default weights mean
    # about the same with --pooling avg; a plain average pool made the style term ~50x smaller.
    # Natural images (the bundled painting, and it upside down in other colours as the "photo").
    style = load_image(SAMPLES / "swirls.png")
    content = np.ascontiguousarray(resize_long_side(style, 64)[::-1, :, ::-1])
    by_pool = {pool: Stylizer([style], replace(FAST, pooling=pool, precision="float32"), content.shape[:2],
                              device="cpu", vgg_weights=weights).losses(content, content) for pool in ("max", "avg")}
    for kind in ("style", "total"):
        assert 0.5 < by_pool["avg"][kind] / by_pool["max"][kind] < 2.0, kind


def test_gram_normalisation_gives_one_balance_on_strong_and_faint_paintings(weights):
    # The same stripes at 30% contrast have Grams ~100x smaller. Under `paper` (the paper preset)
    # the same weights then hardly pull towards the faint painting (its style is not transferred
    # at all); under `gram` (the default preset) both take their style in about one balance.
    content = _image(32, 48, 0)
    faint = (STYLE_A.astype(np.float32) * 0.3 + 90).astype(np.uint8)
    balance, distance = {}, {}
    for norm, preset in (("paper", "paper"), ("gram", "default")):
        settings = replace(resolve_settings(preset).style, tol_loss_relative=0.0, precision="float32")
        assert settings.normalization == norm
        for name, style in (("strong", STYLE_A), ("faint", faint)):
            st = Stylizer([style], settings, content.shape[:2], device="cpu", vgg_weights=weights)
            out = st.stylize(content, iterations=30, seed=0)
            balance[norm, name] = out.losses["style"] / out.losses["content"]
            distance[norm, name] = st.style_distance(out.image)
    spread = {norm: max(balance[norm, "strong"], balance[norm, "faint"]) /
              min(balance[norm, "strong"], balance[norm, "faint"]) for norm in ("paper", "gram")}
    assert spread["paper"] > 10 and spread["gram"] < 2
    assert distance["paper", "faint"] > 0.95  # the faint painting's style left out
    assert max(distance["gram", "strong"], distance["gram", "faint"]) < 0.75


def test_a_result_passed_back_as_init_is_not_changed(weights):
    # A result's image is a view of a CHW tensor; as an init it once converted without a copy and
    # the optimiser moved the caller's array (a warped result, a temporal target's source).
    st = _stylizer(weights)
    first = st.stylize(CONTENT, iterations=2, seed=0).image
    assert not first.flags["C_CONTIGUOUS"]  # the layout that converts without a copy
    kept = first.copy()
    st.stylize(CONTENT, iterations=3, init=first, seed=1)
    np.testing.assert_array_equal(first, kept)
    content = np.ascontiguousarray(CONTENT.astype(np.float32).transpose(2, 0, 1)).transpose(1, 2, 0)
    st.stylize(content, iterations=3, init="content")
    np.testing.assert_array_equal(content, CONTENT.astype(np.float32))
