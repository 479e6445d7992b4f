"""Dynamic loss scaling (the float16 path's), on CPU: torch computes float16 there too."""

from __future__ import annotations

import torch

from videostyle.frame.optimize import LossScale


def _tiny_float16_gradient(x: torch.Tensor) -> torch.Tensor:
    # d/dx of sum(x * 1e-6) through float16: 1e-6 is a subnormal float16 gradient without scaling
    return (x.half() * torch.full((4,), 1e-6, dtype=torch.float16)).float().sum()


def test_loss_scale_unscales_a_float16_gradient_exactly() -> None:
    x = torch.ones(4, requires_grad=True)
    scaler = LossScale(enabled=True, initial=2.0**10)
    assert scaler.backward(_tiny_float16_gradient(x), x)
    torch.testing.assert_close(x.grad, torch.full((4,), 1e-6, dtype=torch.float16).float(), rtol=1e-3, atol=0)


def test_loss_scale_halves_on_overflow_and_drops_the_gradient() -> None:
    x = torch.ones(3, requires_grad=True)
    scaler = LossScale(enabled=True, initial=2.0**20)
    overflowing = (x.half() * torch.tensor(60000.0, dtype=torch.float16)).float().sum()
    assert not scaler.backward(overflowing, x)
    assert scaler.scale == 2.0**19 and x.grad is None


def test_loss_scale_grows_back_after_a_run_of_finite_steps() -> None:
    x = torch.ones(4, requires_grad=True)
    scaler = LossScale(enabled=True, initial=2.0**10, growth_interval=3)
    scales = []
    for _ in range(7):
        x.grad = None
        assert scaler.backward(_tiny_float16_gradient(x), x)
        scales.append(scaler.scale)
    assert scales == [2.0**10, 2.0**10, 2.0**11, 2.0**11, 2.0**11, 2.0**12, 2.0**12]
    # an overflow halves it and starts the count again
    x.grad = None
    assert not scaler.backward((x.half() * torch.tensor(60000.0, dtype=torch.float16)).float().sum() * 1e3, x)
    assert scaler.scale == 2.0**11
    for expected in (2.0**11, 2.0**11, 2.0**12):
        x.grad = None
        assert scaler.backward(_tiny_float16_gradient(x), x)
        assert scaler.scale == expected


def test_disabled_loss_scale_is_a_plain_backward() -> None:
    x = torch.ones(2, requires_grad=True)
    scaler = LossScale(enabled=False)
    assert scaler.backward((3.0 * x).sum(), x) and scaler.scale == 1.0
    torch.testing.assert_close(x.grad, torch.full((2,), 3.0))


def test_an_overflowed_float16_loss_is_evaluated_again_by_the_fallback() -> None:
    from videostyle.frame.optimize import optimize

    def fit(x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"fit": ((x - 3.0) ** 2).sum()}

    def overflowing(x: torch.Tensor) -> dict[str, torch.Tensor]:  # float16 past 65504 far from the start
        loss = fit(x)["fit"]
        return {"fit": loss * float("inf") if float(x.detach().abs().max()) > 1.0 else loss}

    fallbacks = []

    def in_float32(x: torch.Tensor) -> dict[str, torch.Tensor]:
        fallbacks.append(1)
        return fit(x)

    x = torch.zeros(4, requires_grad=True)
    out = optimize(x, overflowing, iterations=15, method="adam", learning_rate=0.5, loss_scaling=True,
                   fallback=in_float32)
    assert out.stop_reason == "budget" and fallbacks
    assert out.losses["total"] < 0.05 * out.history[0]
    alone = optimize(torch.zeros(4, requires_grad=True), overflowing, iterations=15, method="adam",
                     learning_rate=0.5, loss_scaling=True)
    assert alone.stop_reason == "non-finite"
