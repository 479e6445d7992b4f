"""flow.fusion and the ``fused`` method: per pixel the right candidate, and better than each member."""

from __future__ import annotations

import numpy as np
import pytest

import flow
from flow.estimators import DISDenseEstimator, UpsampledEstimator
from flow.fusion import fuse_flows
from flow.synthetic import CameraPath, Motion, camera_clip, endpoint_error, make_pair, textured_image
from flow.warp import warp
from videostyle.config import resolve_settings
from videostyle.errors import UserError


def _hard_clip():
    """A pan over a picture whose top third is a flat night sky, a textured disc moving 10 px a
    frame against it (about 14 px relative to the background), 128x72."""
    picture = textured_image(300, 480, seed=5)
    picture[:110] = (30, 40, 70)
    path = CameraPath(pan=(0.06, 0.0), disc_radius=0.25, disc_speed=(10.0, 0.0), disc_start=(0.15, 0.6))
    return camera_clip(picture, textured_image(200, 200, seed=6), 3, (128, 72), path, seed=1)


def test_fused_beats_every_member_on_a_flat_sky_and_a_fast_disc() -> None:
    # Measured: fused 0.27 px; members dis_fine 0.42, dis_dense@x2 0.43, dis_dense 0.52, deepflow 1.48.
    clip = _hard_clip()
    members = {"dis_dense": DISDenseEstimator(), "dis_fine": flow.create_estimator("dis_fine"),
               "deepflow": flow.create_estimator("deepflow"),
               "dis_dense@x2": UpsampledEstimator(DISDenseEstimator(), 2), "fused": flow.create_estimator("fused")}
    errors = {name: endpoint_error(est(clip.frames[2], clip.frames[1]), clip.backward[2], clip.visible[2])
              for name, est in members.items()}
    fused = errors.pop("fused")
    assert fused < 0.8 * min(errors.values()), (fused, errors)


def test_each_pixel_takes_the_candidate_that_explains_the_frames() -> None:
    pair = make_pair(64, 96, Motion(shift=(3.0, -2.0), rotation_deg=0.0, disc_radius=0.0), seed=2)
    truth, back = pair.forward, pair.backward
    left = np.zeros((64, 96, 1), bool)
    left[:, :48] = True
    wrong = truth + np.float32(4.0)
    right_only = np.where(left, wrong, truth)  # right on the right half
    left_only = np.where(left, truth, wrong)  # right on the left half
    fused, choice = fuse_flows(pair.a, pair.b, [right_only, left_only], [back])
    inner = np.zeros((64, 96), bool)
    inner[3:-3, 3:-8] = True  # away from the frame's edges, where targets leave the image
    inner[:, 45:51] = False  # the seam: the 3x3 window straddles both halves
    assert (choice[inner & left[..., 0]] == 1).mean() > 0.98
    assert (choice[inner & ~left[..., 0]] == 0).mean() > 0.98
    assert endpoint_error(fused, truth, inner) < 0.1


def test_a_candidate_the_opposite_flow_contradicts_loses_where_the_image_cannot_tell() -> None:
    # A flat frame: the photometric term is zero for every candidate; the forward-backward term decides.
    flat = np.full((40, 48, 3), 90, np.uint8)
    still, moving = np.zeros((40, 48, 2), np.float32), np.full((40, 48, 2), 2.0, np.float32)
    _, choice = fuse_flows(flat, flat, [moving, still], [still])
    assert (choice == 1).all()


def test_upsampled_estimation_gives_flow_at_the_frames_size_and_scale() -> None:
    pair = make_pair(48, 64, Motion(shift=(3.0, 1.5), rotation_deg=0.0, disc_radius=0.0), seed=4)
    flw = UpsampledEstimator(DISDenseEstimator(), 2)(pair.a, pair.b)
    assert flw.shape == (48, 64, 2) and flw.dtype == np.float32
    assert endpoint_error(flw, pair.forward, ~pair.occluded_a) < 0.3


def test_the_second_direction_reuses_the_members_flows_and_equals_a_fresh_estimate() -> None:
    clip = _hard_clip()
    a, b = clip.frames[1], clip.frames[2]
    estimator = flow.create_estimator("fused")
    estimator(a, b)
    cached = estimator(b, a)
    assert np.array_equal(cached, flow.estimate_flow(b, a, "fused"))
    # A different pair is not served from the cache.
    other = estimator(clip.frames[0], clip.frames[1])
    assert np.array_equal(other, flow.estimate_flow(clip.frames[0], clip.frames[1], "fused"))
    assert not np.array_equal(other, cached)


def test_fused_is_a_flow_method_setting() -> None:
    assert "fused" in flow.available_methods()
    assert resolve_settings(overrides={"flow": {"method": "fused"}}).flow.method == "fused"
    with pytest.raises(UserError, match="fusd"):
        resolve_settings(overrides={"flow": {"method": "fusd"}})


def test_warped_frame_matches_better_with_the_fused_flow() -> None:
    # What the stylizer feels: frame t-1 warped by the flow t -> t-1 lines up with frame t.
    clip = _hard_clip()
    t, s = clip.frames[2], clip.frames[1]
    visible = clip.visible[2]

    def residual(method: str) -> float:
        return float(np.abs(warp(s, flow.estimate_flow(t, s, method)) - t).mean(axis=2)[visible].mean())

    assert residual("fused") < residual("dis_dense")


def test_flow_upsample_setting_reaches_the_estimator_and_the_flows_key() -> None:
    from videostyle.flowstage import PairMethods, planned_source

    settings = resolve_settings(overrides={"flow": {"method": "dis_dense", "upsample": 2}})
    assert settings.flow.upsample == 2
    assert planned_source(PairMethods.of(settings.flow), None) == "dis_dense@x2"
    assert planned_source(PairMethods("dis_dense"), None) == "dis_dense"
    assert flow.create_estimator("dis_dense", 2).name == "dis_dense@x2"
    with pytest.raises(UserError, match="upsample"):
        resolve_settings(overrides={"flow": {"upsample": 0}})
    with pytest.raises(flow.FlowError, match="whole number"):
        flow.create_estimator("dis", 0)


def test_run_records_the_fused_upsampled_flow_method(tiny_clip, tiny_style, tmp_path) -> None:
    import json

    from click.testing import CliRunner

    from videostyle.cli import main

    job = tmp_path / "job"
    result = CliRunner().invoke(main, ["run", str(tiny_clip), "--style", str(tiny_style), "--job-dir", str(job),
                                       "--plan-only", "--flow", "fused", "--flow-upsample", "2", "--long-term", "1"])
    assert result.exit_code == 0, result.output
    # neighbours only: no long-term pair, so default's estimator for those is not part of the record
    assert json.loads((job / "job.json").read_text())["flow"]["method"] == "fused@x2"


def test_a_flow_unit_of_the_fused_method_writes_its_flows_both_ways(tmp_path) -> None:
    from videostyle.flowstage import FlowStore, PairMethods, flow_units

    clip = _hard_clip()
    store = FlowStore(tmp_path)
    [unit] = flow_units(store, [(2, 3)], lambda i: clip.frames[i - 1], PairMethods("fused"))
    unit.work()
    assert np.array_equal(store.flow(3, 2), flow.estimate_flow(clip.frames[2], clip.frames[1], "fused"))
    assert np.array_equal(store.flow(2, 3), flow.estimate_flow(clip.frames[1], clip.frames[2], "fused"))
    assert store.reliability(3, 2).shape == (72, 128)


def test_long_term_pairs_can_have_an_estimator_of_their_own(tmp_path, monkeypatch) -> None:
    from videostyle.flowstage import LONG_TERM_FLOW_KIND, FlowStore, PairMethods, flow_units, recorded_method

    clip = _hard_clip()
    used: dict[tuple[int, int], set[str]] = {}

    def recording(method, upsample=1):
        estimator = real(method, upsample)

        def estimate(a, b):
            key = tuple(sorted(next(i + 1 for i, f in enumerate(clip.frames) if f is frame) for frame in (a, b)))
            used.setdefault(key, set()).add(method)
            return estimator(a, b)
        return estimate

    real = flow.create_estimator
    monkeypatch.setattr(flow, "create_estimator", recording)
    methods = PairMethods("dis_fine", "dis_dense")
    units = flow_units(FlowStore(tmp_path), [(1, 2), (1, 3)], lambda i: clip.frames[i - 1], methods)
    for unit in units:
        unit.work()
    assert used == {(1, 2): {"dis_fine"}, (1, 3): {"dis_dense"}}
    assert [u.kind for u in units] == ["", LONG_TERM_FLOW_KIND]  # timed apart by the plan's estimates
    assert methods.source == "dis_fine+long:dis_dense" and recorded_method(methods.source) == "dis_fine"
    assert PairMethods("fused", "dis_dense", 2).source == "fused@x2+long:dis_dense"
    # the same estimator, said either way, keeps the flows' key they always had
    assert PairMethods("fused", "same").source == PairMethods("fused", "fused").source == "fused"
    same = flow_units(FlowStore(tmp_path), [(1, 3)], lambda i: clip.frames[i - 1], PairMethods("fused"))
    assert same[0].kind == ""


def test_the_long_term_flow_method_is_a_setting_of_run(tiny_clip, tiny_style, tmp_path) -> None:
    import json

    from click.testing import CliRunner

    from videostyle.cli import main

    job = tmp_path / "job"
    result = CliRunner().invoke(main, ["run", str(tiny_clip), "--style", str(tiny_style), "--job-dir", str(job),
                                       "--plan-only", "--flow", "fused", "--long-term-flow", "dis_dense",
                                       "--long-term", "1,2"])
    assert result.exit_code == 0, result.output
    assert json.loads((job / "job.json").read_text())["flow"]["method"] == "fused+long:dis_dense+chain"
    bad = CliRunner().invoke(main, ["run", str(tiny_clip), "--style", str(tiny_style), "--job-dir",
                                    str(tmp_path / "other"), "--long-term-flow", "nope"])
    assert bad.exit_code == 2 and "nope" in bad.output and "Traceback" not in bad.output
