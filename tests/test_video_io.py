from pathlib import Path

import numpy as np
import pytest

from conftest import make_clip
from videostyle.errors import UserError
from videostyle.images import load_image, save_image
from videostyle.video_io import (assemble_video, extract_frames, frame_name, output_size, parse_frame_range,
                                 parse_size, probe_sequence, probe_video)


def test_probe_reads_size_fps_frames_audio(tiny_clip: Path) -> None:
    info = probe_video(tiny_clip)
    assert (info.width, info.height, info.fps, info.n_frames, info.has_audio) == (64, 48, "10/1", 5, True)


def test_probe_rejects_non_video(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.mp4"
    bogus.write_text("this is not a video")
    with pytest.raises(UserError, match="cannot read"):
        probe_video(bogus)
    with pytest.raises(UserError, match="not found"):
        probe_video(tmp_path / "missing.mp4")


def test_extract_range_and_resize(tiny_clip: Path, tmp_path: Path) -> None:
    info = probe_video(tiny_clip)
    count = extract_frames(tiny_clip, info, tmp_path / "frames", (32, 24), first=2, last=4)
    assert count == 3
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == [frame_name(i) for i in (1, 2, 3)]
    assert load_image(tmp_path / "frames" / frame_name(1)).shape == (24, 32, 3)
    # frame 1 of the range is frame 2 of the clip: compare with a full extraction
    extract_frames(tiny_clip, info, tmp_path / "all", (32, 24))
    np.testing.assert_array_equal(load_image(tmp_path / "frames" / frame_name(1)),
                                  load_image(tmp_path / "all" / frame_name(2)))


def test_assemble_keeps_fps_and_audio(tiny_clip: Path, tmp_path: Path) -> None:
    info = probe_video(tiny_clip)
    n = extract_frames(tiny_clip, info, tmp_path / "frames", (64, 48))
    out = tmp_path / "out.mp4"
    assemble_video(tmp_path / "frames", n, info, out, audio_source=tiny_clip)
    result = probe_video(out)
    assert (result.fps, result.n_frames, result.has_audio) == ("10/1", 5, True)


def test_assemble_without_audio(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "silent.mp4", audio=False)
    info = probe_video(clip)
    assert not info.has_audio
    n = extract_frames(clip, info, tmp_path / "frames", (64, 48))
    assemble_video(tmp_path / "frames", n, info, tmp_path / "out.mp4", audio_source=clip)
    assert probe_video(tmp_path / "out.mp4").n_frames == 5


def test_image_sequence_pattern(tmp_path: Path) -> None:
    for i in range(3, 6):
        save_image(tmp_path / f"shot.{i:04d}.png", np.full((20, 30, 3), i * 20, np.uint8))
    info = probe_sequence(tmp_path / "shot.%04d.png", "24/1")
    assert (info.n_frames, info.width, info.height, info.has_audio) == (3, 30, 20, False)
    n = extract_frames(tmp_path / "shot.%04d.png", info, tmp_path / "frames", (30, 20))
    assert n == 3 and load_image(tmp_path / "frames" / frame_name(1))[0, 0, 0] == 60


def test_parsers() -> None:
    assert parse_size("640x360") == (640, 360)
    assert parse_frame_range("3-10") == (3, 10)
    assert parse_frame_range("5-") == (5, None)
    for bad in ("640", "0x10", "axb"):
        with pytest.raises(UserError):
            parse_size(bad)
    for bad in ("10-3", "0-4", "x"):
        with pytest.raises(UserError):
            parse_frame_range(bad)
    assert output_size((641, 361), None, None) == (640, 360)
    assert output_size((640, 360), None, 320) == (320, 180)
