"""The optimisation loop: L-BFGS or Adam over an image tensor, with the authors' stopping rules.

Knows nothing of VGG or images: it minimises ``sum(objective(x).values())`` over the leaf tensor
``x`` in place. Iterations are counted as objective evaluations (one forward + backward each), as
the authors count them, so budgets of both optimisers are comparable: L-BFGS runs without line
search (fixed step, ``learning_rate`` 1 as in the authors' ``optim.lbfgs``), one evaluation per
iteration.

The result is the best iterate evaluated, not the last one. Without a line search the fixed step
overshoots now and then (measured: a 24x32 image from the authors' noise init jumped from a loss
of 4e7 to 1e14 and back within one iteration, three times in 15 iterations); the last update is
never evaluated at all, so returning it could hand back one of those spikes as the frame.

With a float16 network such an overshoot takes the activations past float16's largest value
(65504), and the loss is not a number at all; L-BFGS, which recovers from a spike by the very
gradient it measures there, cannot recover from that. So an iterate whose loss overflows is
evaluated again by ``fallback`` (the same objective on a float32 network), and the float16 run
takes the float32 run's path through its spikes. Measured, 24x32 from the authors' noise init,
20 L-BFGS iterations on CPU: without it the loss never left its start (5.7e7, every third
iteration not a number); with it the float16 run ended at 0.080 of its start (float32: 0.15,
bfloat16: 0.060).

A warm start (``warm_start``: ``x`` is already an image, e.g. the previous pass's result) takes a
first step whose largest pixel change is :data:`FIRST_STEP` (1 in 0..255). torch's first step,
``min(1, 1/|g|₁)·lr·g``, moves 128x96 pixels by about 3e-5 each, far below bfloat16's resolution
at the network's input (0.25-0.5 there): the features barely change, so the first curvature
pair sees little but the float32 pixel terms (TV; tests/test_stylize.py reproduces this on a toy
loss), and the second step, scaled by that weak curvature, jumped far outside 0..255, from which
40 iterations did not come back. Measured: the default
preset on a one-frame clip with two style masks (tubingen, 128 px), in 3 of 11 pairs of the
reference paintings, the full-size passes 3-5 each blew up at their second step (loss 9.3 ->
4e11) and handed back pass 2's frame unchanged; from the same start with the longer first step
the loss fell 9.34 -> 2.26 in 20 iterations, with no spike. A noise start keeps torch's steps
(the authors' rule; there the kick that follows is what gets the image going).

Early stop (the authors' ``tol_loss_relative``): every ``interval`` iterations the total loss is
compared with its value ``interval`` iterations earlier; the run stops when it changed by less
than ``tol`` of that earlier value. ``tol = 0`` disables it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from videostyle.errors import UserError

log = logging.getLogger(__name__)

OPTIMIZERS = ("lbfgs", "adam")
# A warm start's first step moves its largest pixel change this far (0..255 units).
FIRST_STEP = 1.0
Objective = Callable[[torch.Tensor], dict[str, torch.Tensor]]


@dataclass(frozen=True)
class Progress:
    """Sent to the progress callback after every iteration; losses are weighted terms plus ``total``."""

    iteration: int
    losses: dict[str, float]
    elapsed: float


@dataclass
class OptimizeOutcome:
    """What a run did: evaluations made, losses at the last one, wall time, why it ended."""

    iterations: int
    losses: dict[str, float]
    seconds: float
    history: list[float] = field(default_factory=list)  # total loss per iteration
    # Why it ended: "budget" (every iteration used), "converged" (the relative-change rule),
    # "non-finite" (the loss overflowed; the best finite iterate was kept).
    stop_reason: str = "budget"


class RelativeLossStop:
    """The authors' rule: stop when the loss moved < ``tol`` (relative) over ``interval`` iterations."""

    def __init__(self, tol: float, interval: int) -> None:
        self.tol = float(tol)
        self.interval = max(1, int(interval))
        self._past: float | None = None

    def should_stop(self, iteration: int, loss: float) -> bool:
        if self.tol <= 0 or iteration % self.interval:
            return False
        past, self._past = self._past, loss
        return past is not None and abs(loss - past) < self.tol * abs(past)


class LossScale:
    """Dynamic loss scaling for float16 networks, torch's ``GradScaler`` rule: the loss is scaled up
    before backward so that small gradients survive float16; an overflow halves the scale (the
    evaluation is retried), and ``growth_interval`` finite steps in a row double it again, so one
    overflow early in a frame does not leave its gradients underflowing for the rest of it."""

    def __init__(self, enabled: bool, initial: float = 2.0**16, growth_interval: int = 25) -> None:
        self.scale = initial if enabled else 1.0
        self.enabled = enabled
        self.growth_interval = growth_interval
        self._finite_in_a_row = 0

    def backward(self, total: torch.Tensor, x: torch.Tensor) -> bool:
        """Backpropagate ``total`` into ``x.grad`` (unscaled); False if the gradient overflowed."""
        (total * self.scale).backward()
        if not self.enabled:
            return True
        x.grad.div_(self.scale)
        if torch.isfinite(x.grad).all():
            self._finite_in_a_row += 1
            if self._finite_in_a_row == self.growth_interval:
                self.scale *= 2.0
                self._finite_in_a_row = 0
            return True
        self.scale /= 2.0
        self._finite_in_a_row = 0
        x.grad = None
        return False


def _lengthen_first_step(opt: torch.optim.Optimizer, x: torch.Tensor, evaluated: torch.Tensor) -> None:
    """After L-BFGS's first step from ``evaluated``: lengthen it (and torch's record of it) so
    that its largest pixel change is :data:`FIRST_STEP` (see the module doc)."""
    state = opt.state[x]
    with torch.no_grad():
        step = x - evaluated
        longest = float(step.abs().max())
        if 0 < longest < FIRST_STEP:
            longer = FIRST_STEP / longest
            x.copy_(evaluated + step * longer)
            state["t"] = state["t"] * longer  # the first curvature pair's s = d·t is the step taken


def optimize(x: torch.Tensor, objective: Objective, *, iterations: int, method: str = "lbfgs",
             learning_rate: float = 1.0, tol_loss_relative: float = 0.0, tol_loss_relative_interval: int = 50,
             callback: Callable[[Progress], None] | None = None, loss_scaling: bool = False,
             history_size: int = 100, fallback: Objective | None = None,
             objective_scale: float = 1.0, warm_start: bool = False) -> OptimizeOutcome:
    """Minimise the summed terms of ``objective`` over the leaf tensor ``x`` (updated in place).

    ``objective(x)`` returns named scalar terms; their sum is minimised. At most ``iterations``
    evaluations are made. On return ``x`` holds the evaluated iterate with the lowest total and
    ``outcome.losses`` its terms. ``fallback``: the objective evaluated where ``objective``'s
    loss is not finite (see the module doc). If the loss turns non-finite the run ends there.
    ``objective_scale``: the optimiser sees the sum times this (reports do not). torch's L-BFGS
    is not invariant to the loss's scale: its first step is ``min(1, 1/|g|₁)·g`` and it drops
    curvature pairs with ``sᵀy < 1e-10``, so a loss of order 1 from near-featureless noise never
    gets going (see ``videostyle.frame.losses.OBJECTIVE_SCALE``). ``warm_start``: ``x`` is an
    image, not noise; L-BFGS's first step is lengthened to be visible in bfloat16 (see the
    module doc).
    """
    if method not in OPTIMIZERS:
        raise UserError(f"unknown optimizer {method!r}; choose lbfgs or adam")
    if history_size < 1:
        raise ValueError(f"history_size must be at least 1, not {history_size}")
    if not x.requires_grad or not x.is_leaf:
        raise ValueError("optimize needs a leaf tensor with requires_grad=True")
    if method == "lbfgs":
        # max_iter=1 per step() call: one evaluation and one update, the state carries over, so the
        # caller's loop sees every iteration. Negative tolerances: the authors disable torch's own.
        opt: torch.optim.Optimizer = torch.optim.LBFGS(
            [x], lr=learning_rate, max_iter=1, history_size=history_size, tolerance_grad=-1.0, tolerance_change=-1.0)
    else:
        opt = torch.optim.Adam([x], lr=learning_rate)
    stop = RelativeLossStop(tol_loss_relative, tol_loss_relative_interval)
    scaler = LossScale(loss_scaling)
    start = time.perf_counter()
    outcome = OptimizeOutcome(0, {}, 0.0)
    best_x, best_losses = x.detach().clone(), {}

    def closure() -> torch.Tensor:
        for _ in range(40):  # float16 overflow retries; each halves the scale
            opt.zero_grad(set_to_none=True)
            terms = objective(x)
            total = torch.stack([t.float() for t in terms.values()]).sum()
            if not torch.isfinite(total):  # no loss scale helps a loss that overflowed itself
                if fallback is not None:  # past float16's range (see the module doc)
                    terms = fallback(x)
                    total = torch.stack([t.float() for t in terms.values()]).sum()
                    total.backward()
                break  # else the loop below ends the run
            if scaler.backward(total * objective_scale, x):
                break
        else:
            raise FloatingPointError("gradient overflow persists at every loss scale")
        outcome.losses = {k: float(v.detach()) for k, v in terms.items()}
        outcome.losses["total"] = float(total.detach())
        return total * objective_scale

    for iteration in range(1, iterations + 1):
        evaluated = x.detach().clone()  # the step evaluates this iterate, then moves x
        if method == "lbfgs":
            opt.step(closure)
            if warm_start and iteration == 1:
                _lengthen_first_step(opt, x, evaluated)
        else:
            closure()
            opt.step()
        total = outcome.losses["total"]
        outcome.iterations = iteration
        outcome.history.append(total)
        if not math.isfinite(total):
            log.warning("loss became %s at iteration %d; keeping the best finite image", total, iteration)
            outcome.stop_reason = "non-finite"
            break
        if not best_losses or total < best_losses["total"]:
            best_x, best_losses = evaluated, dict(outcome.losses)
        if callback is not None:
            callback(Progress(iteration, dict(outcome.losses), time.perf_counter() - start))
        if stop.should_stop(iteration, total):
            log.debug("relative loss change below %g over %d iterations: stopping at %d",
                      stop.tol, stop.interval, iteration)
            outcome.stop_reason = "converged"
            break
    with torch.no_grad():
        x.copy_(best_x)  # the initial x when no finite loss was seen
    if best_losses:
        outcome.losses = best_losses
    outcome.seconds = time.perf_counter() - start
    return outcome
