"""The benchmarks' time records: a resumed job's partial time must not pass for a whole run's."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
temporal_bench = pytest.importorskip("temporal_bench")


def fake_run(seconds: float, leaves: str = "final.json"):
    def stylize(clip, style, settings, job: Path, flow_files) -> float:
        job.mkdir(parents=True, exist_ok=True)
        (job / leaves).write_text("{}")
        return seconds
    return stylize


def test_a_whole_run_is_recorded_and_a_cached_rerun_reports_it(tmp_path, monkeypatch, capsys):
    job = tmp_path / "job"
    monkeypatch.setattr(temporal_bench, "stylize", fake_run(12.5))
    assert temporal_bench.timed_stylize(None, Path("s.jpg"), None, job, None) == 12.5
    monkeypatch.setattr(temporal_bench, "stylize", fake_run(0.01))
    assert temporal_bench.timed_stylize(None, Path("s.jpg"), None, job, None) == 12.5
    assert "resumed" not in capsys.readouterr().err


def test_a_resumed_run_is_marked_partial_and_warns_on_every_report(tmp_path, monkeypatch, capsys):
    job = tmp_path / "job"
    job.mkdir()
    (job / "frames").mkdir()  # what a killed run left
    monkeypatch.setattr(temporal_bench, "stylize", fake_run(3.0))
    assert temporal_bench.timed_stylize(None, Path("s.jpg"), None, job, None) == 3.0
    assert temporal_bench.seconds_file(job).read_text().split() == ["3.000", "resumed"]
    assert "was resumed" in capsys.readouterr().err
    monkeypatch.setattr(temporal_bench, "stylize", fake_run(0.01))
    assert temporal_bench.timed_stylize(None, Path("s.jpg"), None, job, None) == 3.0
    assert "was resumed" in capsys.readouterr().err


def test_the_independent_baseline_ignores_what_only_the_temporal_loss_reads():
    """Tuning runs of the temporal loss share the preset's independent frames instead of redrawing them."""
    def baseline(extra: dict):
        return temporal_bench.independent_settings(temporal_bench.preset_settings("default", 64, extra))
    plain = baseline({})
    assert baseline({"style": {"temporal_criterion": "smoothl1"}, "video": {"temporal_weight": 2400.0}}) == plain
    assert plain.video.temporal_weight == 0.0
    assert baseline({"style": {"style_weight": 40.0}}) != plain


def test_the_held_out_bench_shares_independent_frames_unless_an_override_changes_them():
    heldout_bench = pytest.importorskip("heldout_bench")
    plain, folder = heldout_bench.independent_run("default", 64, {})
    for temporal_only in ({"flow": {"method": "dis_dense"}},
                          {"style": {"temporal_criterion": "mse"}, "video": {"temporal_weight": 100.0}}):
        assert heldout_bench.independent_run("default", 64, temporal_only) == (plain, folder)
    restyled, other = heldout_bench.independent_run("default", 64, {"style": {"style_weight": 40.0}})
    assert restyled != plain and other != folder
