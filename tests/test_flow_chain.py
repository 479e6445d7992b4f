"""flow.chain and ``--long-term-chain``: a long-term pair's flow from its neighbours' flows composed."""

from __future__ import annotations

import json

import numpy as np
import pytest

import flow
from flow.chain import global_motion
from flow.synthetic import CameraPath, camera_clip, endpoint_error, textured_image


def _crossing_clip(n_frames: int = 5):
    """A slow pan over a picture with a flat sky, a textured disc crossing it 9 px a frame, 128x72:
    a pair three frames apart sees 27 px of the disc's motion and hides background in between."""
    picture = textured_image(300, 480, seed=5)
    picture[:110] = (30, 40, 70)
    path = CameraPath(pan=(0.04, 0.0), disc_radius=0.22, disc_speed=(9.0, 0.0), disc_start=(0.2, 0.55))
    return camera_clip(picture, textured_image(200, 200, seed=6), n_frames, (128, 72), path, seed=3)


def test_composing_translations_adds_them_and_a_field_is_sampled_where_the_first_step_lands() -> None:
    right = np.zeros((20, 30, 2), np.float32)
    right[..., 0] = 2.0
    down = np.zeros((20, 30, 2), np.float32)
    down[..., 1] = 3.0
    assert np.allclose(flow.compose_flows([right, down]), [2.0, 3.0])
    # the second step varies along x: a pixel takes its value 2 px to the right of where it starts
    ramp = np.zeros((20, 30, 2), np.float32)
    ramp[..., 0] = np.arange(30, dtype=np.float32)[None, :] * 0.1
    composed = flow.compose_flows([right, ramp])
    assert np.allclose(composed[5, 10], [2.0 + 1.2, 0.0])
    assert np.array_equal(flow.compose_flows([ramp]), ramp)


def test_composing_refuses_an_empty_chain_and_flows_of_different_sizes() -> None:
    with pytest.raises(flow.FlowError, match="at least one"):
        flow.compose_flows([])
    with pytest.raises(flow.FlowError, match="chain"):
        flow.compose_flows([np.zeros((4, 5, 2), np.float32), np.zeros((4, 6, 2), np.float32)])


def test_exact_neighbour_flows_composed_give_the_exact_flow_of_what_every_frame_between_shows() -> None:
    clip = _crossing_clip()
    t, s = 4, 1
    truth, visible = clip.flow_between(t, s)
    shown_between = visible.copy()
    for q in range(s + 1, t):
        shown_between &= clip.flow_between(t, q)[1]
    composed = flow.compose_flows([clip.backward[q] for q in range(t, s, -1)])
    assert endpoint_error(composed, truth, shown_between) < 0.05


def test_the_fused_long_pair_beats_both_its_direct_estimate_and_the_composition_alone() -> None:
    # Measured here, over the pixels both frames show: dense DIS across the three frames 2.59 px,
    # the composition of the neighbours' dense DIS flows 0.72 (wrong where the disc hid the
    # background between), the two fused 0.50; the other way round fused 0.49 against 2.39.
    clip = _crossing_clip()
    t, s = 4, 1
    truth, visible = clip.flow_between(t, s)
    estimator = flow.create_estimator("dis_dense")
    direct = (estimator(clip.frames[t], clip.frames[s]), estimator(clip.frames[s], clip.frames[t]))
    neighbours_back = [estimator(clip.frames[q], clip.frames[q - 1]) for q in range(t, s, -1)]
    neighbours_fwd = [estimator(clip.frames[q], clip.frames[q + 1]) for q in range(s, t)]
    chained = (flow.compose_flows(neighbours_back), flow.compose_flows(neighbours_fwd))
    fused, fused_back = flow.fuse_with_chain(clip.frames[t], clip.frames[s], direct, chained)
    errors = {name: endpoint_error(f, truth, visible) for name, f in
              (("direct", direct[0]), ("chained", chained[0]), ("fused", fused))}
    assert errors["fused"] < 0.8 * min(errors["direct"], errors["chained"]), errors
    truth_back, visible_back = clip.flow_between(s, t)
    assert endpoint_error(fused_back, truth_back, visible_back) < endpoint_error(direct[1], truth_back, visible_back)


def test_the_global_motion_is_the_homography_most_vectors_follow_and_none_without_one() -> None:
    height, width = 40, 60
    grid = np.stack(np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)), axis=-1)
    homography = np.array([[1.02, 0.01, 1.5], [-0.01, 0.99, -0.7], [1e-4, 0.0, 1.0]])
    moved = grid @ homography[:2, :2].T + homography[:2, 2]
    truth = moved / (grid @ homography[2, :2] + homography[2, 2])[..., None] - grid
    field = truth.copy()
    field[5:25, 10:40] = (9.0, -4.0)  # a quarter of the frame moves on its own
    assert np.abs(global_motion(field) - truth).max() < 0.01
    rng = np.random.default_rng(0)
    assert global_motion(rng.normal(0, 5, (height, width, 2)).astype(np.float32)) is None


def _revealed(clip, t: int, s: int) -> np.ndarray:
    """Pixels frames t and s both show and some frame between hides."""
    _, visible = clip.flow_between(t, s)
    shown_between = visible.copy()
    for q in range(s + 1, t):
        shown_between &= clip.flow_between(t, q)[1]
    return visible & ~shown_between


def test_with_the_camera_background_a_disc_hid_between_two_frames_gets_the_cameras_motion() -> None:
    # Measured here, over the pixels frames 4 and 1 both show and a frame between hides: the
    # direct estimate fused with the composition alone is off by 0.36 px; with the composition's
    # global motion offered where the composition breaks, 0.15.
    clip = _crossing_clip()
    t, s = 4, 1
    truth, _ = clip.flow_between(t, s)
    revealed = _revealed(clip, t, s)
    estimator = flow.create_estimator("dis_dense")
    direct = (estimator(clip.frames[t], clip.frames[s]), estimator(clip.frames[s], clip.frames[t]))
    chained = (flow.compose_flows([estimator(clip.frames[q], clip.frames[q - 1]) for q in range(t, s, -1)]),
               flow.compose_flows([estimator(clip.frames[q], clip.frames[q + 1]) for q in range(s, t)]))
    without, _ = flow.fuse_with_chain(clip.frames[t], clip.frames[s], direct, chained)
    with_camera, _ = flow.fuse_with_chain(clip.frames[t], clip.frames[s], direct, chained, camera=True)
    assert revealed.sum() > 100
    assert endpoint_error(with_camera, truth, revealed) < 0.2 < 0.3 < endpoint_error(without, truth, revealed)


def test_a_job_with_long_term_camera_fuses_its_long_pairs_with_the_cameras_motion(tmp_path) -> None:
    from videostyle.flowstage import PairMethods

    errors = {}
    for camera in (False, True):
        clip, store, units = _units(tmp_path / str(camera), [(1, 2), (2, 3), (3, 4), (1, 4)],
                                    PairMethods("dis_dense", chain=True, camera=camera))
        for name in ("flow/1-2", "flow/2-3", "flow/3-4", "flow/1-4"):
            units[name].work()
        truth, _ = clip.flow_between(3, 0)
        errors[camera] = endpoint_error(store.flow(4, 1), truth, _revealed(clip, 3, 0))
    assert errors[True] < 0.5 * errors[False], errors


def _units(tmp_path, pairs, methods):
    from videostyle.flowstage import FlowStore, flow_units

    clip = _crossing_clip()
    store = FlowStore(tmp_path)
    return clip, store, {u.name: u for u in flow_units(store, pairs, lambda i: clip.frames[i - 1], methods)}


def test_a_chained_long_pair_waits_for_its_neighbours_and_fuses_their_flows(tmp_path) -> None:
    from videostyle.flowstage import LONG_TERM_FLOW_KIND, PairMethods

    methods = PairMethods("dis_fine", "dis_dense", chain=True)
    clip, store, units = _units(tmp_path, [(1, 2), (1, 4), (2, 3), (2, 4), (3, 4)], methods)
    assert list(units) == ["flow/1-2", "flow/2-3", "flow/3-4", "flow/1-4", "flow/2-4"]  # each after its needs
    assert units["flow/1-4"].needs == ("flow/1-2", "flow/2-3", "flow/3-4")
    assert units["flow/2-4"].needs == ("flow/2-3", "flow/3-4") and units["flow/1-2"].needs == ()
    assert units["flow/1-4"].kind == LONG_TERM_FLOW_KIND
    for name in ("flow/1-2", "flow/2-3", "flow/3-4", "flow/1-4"):
        units[name].work()
    made = store.flow(4, 1)
    direct = flow.estimate_flow(clip.frames[3], clip.frames[0], "dis_dense")
    truth, visible = clip.flow_between(3, 0)
    assert endpoint_error(made, truth, visible) < endpoint_error(direct, truth, visible)
    assert store.reliability(4, 1).shape == (72, 128)


def test_a_long_pair_across_a_pair_not_planned_is_made_from_its_frames_alone(tmp_path) -> None:
    from videostyle.flowstage import PairMethods

    clip, store, units = _units(tmp_path, [(1, 2), (1, 3)], PairMethods("dis_dense", chain=True))
    assert units["flow/1-3"].needs == ()
    units["flow/1-3"].work()
    assert np.array_equal(store.flow(3, 1), flow.estimate_flow(clip.frames[2], clip.frames[0], "dis_dense"))


def test_a_neighbour_flow_of_another_size_in_the_job_is_one_clear_error(tmp_path) -> None:
    from videostyle.errors import UserError
    from videostyle.flowstage import PairMethods

    _, store, units = _units(tmp_path, [(1, 2), (2, 3), (1, 3)], PairMethods("dis", chain=True))
    units["flow/1-2"].work()
    units["flow/2-3"].work()
    flow.write_flo(store.flow_path(2, 3), np.zeros((10, 12, 2), np.float32))  # a share rewrote it
    with pytest.raises(UserError, match="12x10"):
        units["flow/1-3"].work()


def test_the_chain_enters_the_flows_key_only_with_long_term_pairs(tiny_clip, tiny_style, tmp_path) -> None:
    from click.testing import CliRunner

    from videostyle.cli import main
    from videostyle.config import resolve_settings
    from videostyle.flowstage import PairMethods, recorded_method

    def planned(*options: str) -> str:
        job = tmp_path / str(len(list(tmp_path.iterdir())))
        result = CliRunner().invoke(main, ["run", str(tiny_clip), "--style", str(tiny_style), "--job-dir", str(job),
                                           "--plan-only", "--flow", "dis", *options])
        assert result.exit_code == 0, result.output
        return json.loads((job / "job.json").read_text())["flow"]["method"]

    assert planned("--long-term", "1,2", "--long-term-flow", "dis_dense", "--long-term-chain") == \
        "dis+long:dis_dense+chain"
    assert planned("--long-term", "1,2", "--long-term-flow", "same", "--long-term-chain") == "dis+chain"
    assert planned("--long-term", "1") == "dis"  # no long pair: nothing to chain
    assert planned("--long-term", "1,2") == "dis+long:dis_dense+chain"  # default's long-term flows
    assert planned("--long-term", "1,2", "--no-long-term-chain") == "dis+long:dis_dense"  # the key of before
    assert planned("--long-term", "1,2", "--long-term-camera") == "dis+long:dis_dense+chain+camera"
    assert planned("--long-term", "1,2", "--long-term-camera", "--no-long-term-chain") == "dis+long:dis_dense"
    assert recorded_method("fused@x2+long:dis_dense+chain") == recorded_method("fused+chain") == "fused"
    settings = resolve_settings(overrides={"flow": {"long_term": (1, 3), "long_term_chain": True}})
    assert PairMethods.of(settings.flow).chain


def test_the_camera_without_a_chained_long_pair_is_a_note_that_it_changes_nothing() -> None:
    from videostyle.config import resolve_settings
    from videostyle.flowstage import long_term_camera_note

    def note(**flow_settings):
        return long_term_camera_note(resolve_settings(overrides={"flow": flow_settings}).flow)

    assert "changes nothing" in note(long_term=(1,), long_term_chain=True, long_term_camera=True)
    assert "changes nothing" in note(long_term=(1, 3), long_term_chain=False, long_term_camera=True)
    assert note(long_term=(1, 3), long_term_chain=True, long_term_camera=True) is None
    assert note(long_term=(1,), long_term_camera=False) is None


def test_status_names_the_chain_in_words() -> None:
    from videostyle.status import _flow_source_words

    assert _flow_source_words("fused+long:dis_dense+chain") == \
        "fused, long-term pairs dis_dense and the neighbours' flows composed"
    assert _flow_source_words("dis+chain") == "dis, long-term pairs with the neighbours' flows composed"
    assert _flow_source_words("fused+long:dis_dense+chain+camera") == \
        "fused, long-term pairs dis_dense and the neighbours' flows composed and the camera's motion"
    assert _flow_source_words("fused+long:dis_dense") == "fused, long-term pairs dis_dense"
    assert _flow_source_words("fused@x2") == "fused@x2"
