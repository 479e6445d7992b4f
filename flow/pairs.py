"""Which flows a video needs, and the authors' file names for them.

Frames are numbered from 1 (as in the job folder and the authors' files). A pair (a, b) means
flow(a -> b). Temporal consistency of frame i with frame i-j needs flow(i -> i-j) to warp frame
i-j onto frame i, and its reliability needs the opposite flow(i-j -> i) too; the multi-pass
algorithm also warps in the other direction. So every offset j in J asks for both directions.
"""

from __future__ import annotations

from collections.abc import Iterable

from flow.errors import FlowError


def pairs_needed(n_frames: int, offsets: Iterable[int] = (1,), first: int = 1
                 ) -> list[tuple[int, int]]:
    """All (a, b) with |a - b| in ``offsets`` among frames first..first+n_frames-1, both ways.

    Ordered by the later frame, then offset, forward (i-j -> i) before backward (i -> i-j),
    so flows for early frames come first. Offsets of n_frames or more yield nothing.
    E.g. ``pairs_needed(3, (1,)) == [(1, 2), (2, 1), (2, 3), (3, 2)]``.
    """
    steps = sorted(set(_check_offsets(offsets)))
    if n_frames < 0:
        raise FlowError(f"number of frames must be >= 0, got {n_frames}")
    pairs: list[tuple[int, int]] = []
    for later in range(first + 1, first + n_frames):
        for j in steps:
            earlier = later - j
            if earlier >= first:
                pairs.append((earlier, later))
                pairs.append((later, earlier))
    return pairs


def flow_file_name(a: int, b: int) -> str:
    """The authors' name for flow(a -> b): ``forward_a_b.flo`` if a < b, else ``backward_a_b.flo``.
    """
    if a == b:
        raise FlowError(f"no flow from frame {a} to itself")
    return f"{'forward' if a < b else 'backward'}_{a}_{b}.flo"


def reliable_file_name(a: int, b: int) -> str:
    """The authors' name for the reliability of flow(a -> b): ``reliable_a_b.pgm``."""
    if a == b:
        raise FlowError(f"no flow from frame {a} to itself")
    return f"reliable_{a}_{b}.pgm"


def _check_offsets(offsets: Iterable[int]) -> list[int]:
    values = list(offsets)
    if not values or any(isinstance(j, bool) or int(j) != j or j < 1 for j in values):
        raise FlowError(f"frame offsets must be positive integers, got {values}")
    return [int(j) for j in values]
