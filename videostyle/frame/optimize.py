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

A run may start from the curvature an earlier run of the same frame learned (``memories``: each
frame's :class:`CurvatureMemory`, handed back in ``outcome.memory``). Between passes of a video
the objective changes only by its temporal targets and initial image; with the same per-pixel
weights the temporal term changes by a linear term, which leaves the Hessian and so every
curvature pair ``(s, y)`` as they were. Started from them, the first step is a quasi-Newton step
of the right length, not the restart's scaled gradient step followed by iterations that learn
the curvature again.

Early stop (the authors' ``tol_loss_relative``): every ``interval`` iterations the total loss is
compared with its value ``interval`` iterations earlier; the run stops when it changed by less
than ``tol`` of that earlier value. ``tol = 0`` disables it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from videostyle.errors import UserError

log = logging.getLogger(__name__)

OPTIMIZERS = ("lbfgs", "adam")
# A warm start's first step moves its largest pixel change this far (0..255 units).
FIRST_STEP = 1.0
Objective = Callable[[torch.Tensor], dict[str, torch.Tensor]]
# Several frames' objective: their pixels stacked (N,3,H,W), which frames they are -> each one's terms.
FramesObjective = Callable[[torch.Tensor, Sequence[int]], list[dict[str, torch.Tensor]]]


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
    memory: CurvatureMemory | None = None  # L-BFGS's curvature at the end (see the module doc)


@dataclass
class CurvatureMemory:
    """What L-BFGS learned of one frame's curvature: its latest pairs of steps ``s`` and gradient
    changes ``y`` (oldest first, flat float32) and the initial inverse-Hessian scale ``sᵀy/yᵀy``."""

    steps: list[torch.Tensor]
    changes: list[torch.Tensor]
    scale: float

    def fits(self, x: torch.Tensor) -> bool:
        """Whether its pairs are of ``x``'s size (a pass at another scale cannot use them)."""
        return bool(self.steps) and all(v.numel() == x.numel() for v in self.steps + self.changes)

    def latest(self, pairs: int) -> CurvatureMemory:
        """Its last ``pairs`` pairs."""
        keep = max(0, int(pairs))
        return CurvatureMemory(self.steps[-keep:] if keep else [], self.changes[-keep:] if keep else [], self.scale)


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

    def backward(self, total: torch.Tensor, x: torch.Tensor | Sequence[torch.Tensor]) -> bool:
        """Backpropagate ``total`` into the ``.grad`` of ``x`` (one leaf or several), unscaled;
        False if any gradient overflowed."""
        leaves = [x] if isinstance(x, torch.Tensor) else list(x)
        (total * self.scale).backward()
        if not self.enabled:
            return True
        for leaf in leaves:
            leaf.grad.div_(self.scale)
        if all(bool(torch.isfinite(leaf.grad).all()) for leaf in leaves):
            self._finite_in_a_row += 1
            if self._finite_in_a_row == self.growth_interval:
                self.scale *= 2.0
                self._finite_in_a_row = 0
            return True
        self.scale /= 2.0
        self._finite_in_a_row = 0
        for leaf in leaves:
            leaf.grad = None
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
             objective_scale: float = 1.0, warm_start: bool = False,
             memory: CurvatureMemory | None = None, keep_pairs: int = 0) -> OptimizeOutcome:
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
    module doc). ``memory``: curvature from an earlier run of this frame to start from;
    ``keep_pairs``: how many of its last pairs the outcome hands back (0: none, nothing kept).
    """
    back = None if fallback is None else _one_frame(fallback)
    return optimize_frames([x], _one_frame(objective), iterations=iterations, method=method,
                           learning_rate=learning_rate, tol_loss_relative=tol_loss_relative,
                           tol_loss_relative_interval=tol_loss_relative_interval, callback=callback,
                           loss_scaling=loss_scaling, history_size=history_size, fallback=back,
                           objective_scale=objective_scale, warm_start=[warm_start], memories=[memory],
                           keep_pairs=[keep_pairs])[0]


def _one_frame(objective: Objective) -> FramesObjective:
    return lambda pixels, which: [objective(pixels)]


@dataclass
class _Frame:
    """One frame's own optimiser, stopping rule, best iterate and last evaluation."""

    x: torch.Tensor
    opt: torch.optim.Optimizer
    stop: RelativeLossStop
    outcome: OptimizeOutcome
    best_x: torch.Tensor
    best_losses: dict[str, float] = field(default_factory=dict)
    seen: torch.Tensor | None = None  # the total the optimiser sees (times objective_scale), last evaluation


def optimize_frames(xs: Sequence[torch.Tensor], objective: FramesObjective, *, iterations: int,
                    method: str = "lbfgs", learning_rate: float = 1.0, tol_loss_relative: float = 0.0,
                    tol_loss_relative_interval: int = 50, callback: Callable[[Progress], None] | None = None,
                    loss_scaling: bool = False, history_size: int = 100, fallback: FramesObjective | None = None,
                    objective_scale: float = 1.0, warm_start: Sequence[bool] | None = None,
                    memories: Sequence[CurvatureMemory | None] | None = None,
                    keep_pairs: Sequence[int] | None = None) -> list[OptimizeOutcome]:
    """:func:`optimize` for several frames at once, one evaluation of them all per iteration.

    ``objective(pixels, which)`` gets the leaves ``xs[k]`` for ``k`` in ``which`` stacked along
    the first dimension (the one leaf itself when there is one) and returns each one's terms, in
    that order. Every frame has its own optimiser state, stopping rule and best iterate, and its
    gradient is that of its own terms alone, so each frame takes the path it would take alone
    (up to the rounding of a batched network call): with one L-BFGS over all the frames, its first
    step (``1/|g|₁`` over every frame) and its curvature pairs would mix the frames. A frame whose
    loss settles (``tol_loss_relative``) or turns non-finite leaves the batch; the others go on.
    ``callback`` gets the terms summed over the frames evaluated in that iteration. ``warm_start``:
    which frames start from an image rather than noise (see :func:`optimize`). ``memories``: each
    frame's curvature from an earlier run (None: none), used by L-BFGS where it is of the frame's
    size; ``keep_pairs``: how many of the last pairs each frame's outcome hands back in its
    ``memory`` (None or 0: none, so a run that passes nothing on holds no pairs after it).
    """
    if method not in OPTIMIZERS:
        raise UserError(f"unknown optimizer {method!r}; choose lbfgs or adam")
    if history_size < 1:
        raise ValueError(f"history_size must be at least 1, not {history_size}")
    if not xs:
        raise ValueError("optimize_frames needs at least one frame")
    if any(not x.requires_grad or not x.is_leaf for x in xs):
        raise ValueError("optimize needs a leaf tensor with requires_grad=True")
    frames = [_Frame(x, _optimizer(x, method, learning_rate, history_size),
                     RelativeLossStop(tol_loss_relative, tol_loss_relative_interval), OptimizeOutcome(0, {}, 0.0),
                     x.detach().clone()) for x in xs]
    memories = memories or [None] * len(frames)
    seeded = [method == "lbfgs" and memory is not None and memory.fits(frame.x)
              for frame, memory in zip(frames, memories)]
    for frame, memory, seed in zip(frames, memories, seeded):
        if seed:
            _seed_curvature(frame.opt, frame.x, memory.latest(history_size))
    scaler = LossScale(loss_scaling)
    start = time.perf_counter()
    active = list(range(len(frames)))
    for iteration in range(1, iterations + 1):
        if not active:
            break
        evaluated = {k: frames[k].x.detach().clone() for k in active}  # the step evaluates these, then moves x
        _evaluate(frames, active, objective, fallback, scaler, objective_scale)
        for k in active:
            frame = frames[k]
            if not math.isfinite(frame.outcome.losses["total"]):
                continue  # no step: its run ends here, on its best finite iterate
            if method == "lbfgs":
                frame.opt.step(lambda frame=frame: frame.seen)
                if warm_start is not None and warm_start[k] and iteration == 1 and not seeded[k]:
                    _lengthen_first_step(frame.opt, frame.x, evaluated[k])
            else:
                frame.opt.step()
        finite = []
        for k in list(active):
            if not _record(frames[k], iteration, evaluated[k]):
                active.remove(k)
            if math.isfinite(frames[k].outcome.losses["total"]):
                finite.append(frames[k].outcome.losses)
        if callback is not None and finite:
            callback(Progress(iteration, _summed(finite), time.perf_counter() - start))
    seconds = time.perf_counter() - start
    for frame, keep in zip(frames, keep_pairs or [0] * len(frames)):
        with torch.no_grad():
            frame.x.copy_(frame.best_x)  # the initial x when no finite loss was seen
        if frame.best_losses:
            frame.outcome.losses = frame.best_losses
        frame.outcome.seconds = seconds
        frame.outcome.memory = _curvature(frame.opt, frame.x, keep) if method == "lbfgs" and keep > 0 else None
    return [frame.outcome for frame in frames]


def _seed_curvature(opt: torch.optim.Optimizer, x: torch.Tensor, memory: CurvatureMemory) -> None:
    """Give a new L-BFGS ``memory``'s pairs as if it had learned them: its first step is then the
    two-loop quasi-Newton step at full length. The step torch takes its first pair from is zero,
    so the gradient change since the earlier run's last point, which is not a secant of this
    objective, is never taken for one."""
    state = opt.state[x]
    flat = x.numel()
    state["n_iter"] = 1  # the next step() is torch's second: pairs, two-loop recursion, step length lr
    state["func_evals"] = 0
    state["d"] = torch.zeros(flat, dtype=x.dtype, device=x.device)
    state["t"] = 1.0
    state["prev_flat_grad"] = torch.zeros(flat, dtype=x.dtype, device=x.device)
    state["old_stps"] = [s.to(x.device, x.dtype) for s in memory.steps]
    state["old_dirs"] = [y.to(x.device, x.dtype) for y in memory.changes]
    state["ro"] = [1.0 / float(y.dot(s)) for s, y in zip(state["old_stps"], state["old_dirs"])]
    state["H_diag"] = memory.scale


def _curvature(opt: torch.optim.Optimizer, x: torch.Tensor, pairs: int) -> CurvatureMemory | None:
    """The last ``pairs`` pairs an L-BFGS run over ``x`` holds now (None before it learned any).
    Not copies: the run is over, and torch only ever drops its pairs, never writes into them."""
    state = opt.state.get(x, {})
    steps, changes = state.get("old_stps") or [], state.get("old_dirs") or []
    if not steps:
        return None
    return CurvatureMemory(list(steps), list(changes), float(state["H_diag"])).latest(pairs)


def _optimizer(x: torch.Tensor, method: str, learning_rate: float, history_size: int) -> torch.optim.Optimizer:
    if method == "lbfgs":
        # max_iter=1 per step() call: one evaluation and one update, the state carries over, so the
        # caller's loop sees every iteration. Negative tolerances: the authors disable torch's own.
        return torch.optim.LBFGS([x], lr=learning_rate, max_iter=1, history_size=history_size, tolerance_grad=-1.0,
                                 tolerance_change=-1.0)
    return torch.optim.Adam([x], lr=learning_rate)


def _evaluate(frames: list[_Frame], active: list[int], objective: FramesObjective, fallback: FramesObjective | None,
              scaler: LossScale, objective_scale: float) -> None:
    """One evaluation of the ``active`` frames: their terms, and the gradient of each one's total
    in its leaf's ``.grad`` (none for a frame whose loss is not finite even in ``fallback``)."""
    leaves = [frames[k].x for k in active]
    for _ in range(40):  # float16 overflow retries; each halves the scale
        for leaf in leaves:
            leaf.grad = None
        terms = objective(_stacked(leaves), active)
        totals = [_total(t) for t in terms]
        finite = [bool(torch.isfinite(t)) for t in totals]
        if all(finite):
            if scaler.backward(torch.stack(totals).sum() * objective_scale, leaves):
                break
            continue
        # no loss scale helps a loss that overflowed itself: those frames again in float32
        bad = [j for j, ok in enumerate(finite) if not ok]
        if fallback is not None:
            again = fallback(_stacked([leaves[j] for j in bad]), [active[j] for j in bad])
            for j, t in zip(bad, again):
                terms[j], totals[j] = t, _total(t)
            torch.stack([totals[j] for j in bad]).sum().backward()  # past float16's range (see the module doc)
        good = [j for j, ok in enumerate(finite) if ok]
        if not good or scaler.backward(torch.stack([totals[j] for j in good]).sum() * objective_scale,
                                       [leaves[j] for j in good]):
            break
    else:
        raise FloatingPointError("gradient overflow persists at every loss scale")
    for k, t, total in zip(active, terms, totals):
        frames[k].outcome.losses = {name: float(v.detach()) for name, v in t.items()}
        frames[k].outcome.losses["total"] = float(total.detach())
        frames[k].seen = total.detach() * objective_scale


def _stacked(leaves: list[torch.Tensor]) -> torch.Tensor:
    return leaves[0] if len(leaves) == 1 else torch.cat(leaves)


def _total(terms: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.stack([t.float() for t in terms.values()]).sum()


def _record(frame: _Frame, iteration: int, evaluated: torch.Tensor) -> bool:
    """Book one evaluation of ``frame``; False when its run ends (non-finite loss, or settled)."""
    outcome = frame.outcome
    total = outcome.losses["total"]
    outcome.iterations = iteration
    outcome.history.append(total)
    if not math.isfinite(total):
        log.warning("loss became %s at iteration %d; keeping the best finite image", total, iteration)
        outcome.stop_reason = "non-finite"
        return False
    if not frame.best_losses or total < frame.best_losses["total"]:
        frame.best_x, frame.best_losses = evaluated, dict(outcome.losses)
    if frame.stop.should_stop(iteration, total):
        log.debug("relative loss change below %g over %d iterations: stopping at %d",
                  frame.stop.tol, frame.stop.interval, iteration)
        outcome.stop_reason = "converged"
        return False
    return True


def _summed(losses: list[dict[str, float]]) -> dict[str, float]:
    summed = dict(losses[0])
    for other in losses[1:]:
        for name, value in other.items():
            summed[name] = summed.get(name, 0.0) + value
    return summed
