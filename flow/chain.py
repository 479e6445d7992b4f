"""Flow between frames further apart, from the flows between the frames along the way.

An estimator asked for the flow between frames k apart sees k times the motion and everything
that changed in between; the flows between neighbours are already there, and each is good. Their
composition ``f(t -> t-k)(x) = f1(x) + f2(x + f1(x)) + ...`` (``f1 = f(t -> t-1)``, ``f2 =
f(t-1 -> t-2)``, ...) follows every pixel that every frame between shows, but is wrong where a
frame between hides it: a background pixel behind a passing object, exactly where the long-term
terms of the temporal loss matter. There a direct estimate of the pair may find it. So the pair's
flow takes, per pixel, whichever of the two explains the frames better (``flow.fusion``).

Measured on the benchmark's synthetic clips at 128 px, 12 frames, pairs 2, 3 and 5 apart, against
the exact flow (``benchmarks/flow_classes_bench.py --gaps 2,3,5``, fused flow between neighbours):
over pixels every frame between shows, dense DIS across the frames is off by 2.5 px on ``crossing``
and 2.7 px on ``pan``, fused with the composition by 0.14 and 0.15 px (0.14-0.24 px on five of six
classes; on ``fast`` 1.6 px either way, where the neighbours' flows miss the disc themselves); over
pixels hidden in between and shown again, 9.7 px on ``crossing`` against dense DIS's 12.8.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from flow.errors import FlowError
from flow.estimators import fuse_candidates
from flow.io import check_flow
from flow.warp import warp


def compose_flows(steps: Sequence[np.ndarray]) -> np.ndarray:
    """The flow from the first frame to the last of a chain, from the flows between consecutive
    frames: ``steps[0]`` from frame 0 to frame 1, ``steps[1]`` from frame 1 to frame 2, ...
    (each HxWx2 on its own first frame's grid, all of one size)."""
    if not steps:
        raise FlowError("a chain of flows needs at least one flow")
    total = check_flow(steps[0], "first flow of the chain").copy()
    for k, step in enumerate(steps[1:], start=2):
        step = check_flow(step, f"flow {k} of the chain")
        if step.shape != total.shape:
            raise FlowError(f"flow {k} of the chain is {step.shape[1]}x{step.shape[0]}, "
                            f"the first {total.shape[1]}x{total.shape[0]}")
        total += warp(step, total)
    return total


def fuse_with_chain(a: np.ndarray, b: np.ndarray, direct: tuple[np.ndarray, np.ndarray],
                    chained: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Flows a -> b and b -> a, per pixel the direct estimate or the composed one, whichever fits
    the frames better; ``direct`` and ``chained`` are each (a -> b, b -> a)."""
    forwards, backwards = [direct[0], chained[0]], [direct[1], chained[1]]
    return fuse_candidates(a, b, forwards, backwards), fuse_candidates(b, a, backwards, forwards)
