"""flow.pairs: which flows a video needs, and their file names."""

from __future__ import annotations

import pytest

import flow


def test_adjacent_pairs_in_both_directions() -> None:
    assert flow.pairs_needed(3, (1,)) == [(1, 2), (2, 1), (2, 3), (3, 2)]


def test_long_term_offsets_skip_frames_before_the_first() -> None:
    pairs = flow.pairs_needed(5, (1, 2, 4))
    assert pairs[:2] == [(1, 2), (2, 1)]
    assert (1, 5) in pairs and (5, 1) in pairs
    assert all(abs(a - b) in (1, 2, 4) and 1 <= min(a, b) and max(a, b) <= 5 for a, b in pairs)
    # Every offset j from every frame i > j, both ways: 2 * ((5-1) + (5-2) + (5-4)).
    assert len(pairs) == len(set(pairs)) == 16


def test_offsets_beyond_the_clip_and_tiny_clips() -> None:
    assert flow.pairs_needed(3, (10, 20)) == []
    assert flow.pairs_needed(1, (1,)) == []
    assert flow.pairs_needed(0, (1,)) == []
    assert flow.pairs_needed(2, (1,), first=0) == [(0, 1), (1, 0)]


@pytest.mark.parametrize("offsets", [(), (0,), (-1,), (1.5,)])
def test_bad_offsets_are_flow_errors(offsets) -> None:
    with pytest.raises(flow.FlowError):
        flow.pairs_needed(4, offsets)


def test_authors_file_names() -> None:
    assert flow.flow_file_name(1, 2) == "forward_1_2.flo"
    assert flow.flow_file_name(2, 1) == "backward_2_1.flo"
    assert flow.reliable_file_name(2, 1) == "reliable_2_1.pgm"
    with pytest.raises(flow.FlowError):
        flow.flow_file_name(3, 3)
