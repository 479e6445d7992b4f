"""Bounds before allocation: what a file or a setting claims is checked before any work is sized
by it (the nothing-lost issue's item 4)."""

from __future__ import annotations

import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import flow
from videostyle.cli import main
from videostyle.errors import UserError
from videostyle.flowstage import FLOW_BYTES_PER_PIXEL, check_flow_fits
from videostyle.images import MAX_IMAGE_PIXELS, load_image


def invoke(*args: str | Path):
    return CliRunner().invoke(main, [str(a) for a in args])


def png_claiming(path: Path, width: int, height: int) -> Path:
    """A valid PNG header claiming ``width`` x ``height``, with a few bytes of (bogus) data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def test_an_image_claiming_a_huge_size_is_refused_from_its_header(tmp_path: Path) -> None:
    bomb = png_claiming(tmp_path / "bomb.png", 65535, 65535)
    assert bomb.stat().st_size < 200
    with pytest.raises(UserError, match=r"claims more than the 134,217,728 pixels"):
        load_image(bomb)
    within = png_claiming(tmp_path / "wide.png", 20000, 7000)  # 140 Mpx: past ours, under Pillow's limit
    with pytest.raises(UserError, match=r"is 20000x7000, claims more than"):
        load_image(within)
    assert 65535 * 65535 > MAX_IMAGE_PIXELS
    result = invoke("image", tmp_path / "bomb.png", "--style", bomb, "-o", tmp_path / "o.png")
    assert result.exit_code == 2 and "claims more than the" in result.output


def test_a_flow_header_is_checked_against_the_file_size_before_it_is_read(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "big.flo"
    path.write_bytes(flow.io.FLO_TAG + np.array([65536, 65536], "<i4").tobytes() + b"\0" * 64)
    read_whole = []
    monkeypatch.setattr(flow.io, "_read_bytes", lambda *a: read_whole.append(a) or b"")
    with pytest.raises(flow.FlowError, match="truncated: 76 bytes, expected 34359738380"):
        flow.read_flo(path)
    pgm = tmp_path / "big.pgm"
    pgm.write_bytes(b"P5\n65536 65536\n255\n" + b"\0" * 16)
    with pytest.raises(flow.FlowError, match="truncated"):
        flow.read_pgm(pgm)
    assert read_whole == []  # neither file was read past its header


def test_flow_that_would_not_fit_in_memory_is_refused_with_what_fits() -> None:
    room = 2 * 10**9
    with pytest.raises(UserError, match=r"optical flow of 8000x6000 frames needs about 19\.6 GB, 2\.0 GB "
                                        r"available; \d+x\d+ or smaller fits"):
        check_flow_fits(8000, 6000, available=room)
    check_flow_fits(1920, 1080, available=1920 * 1080 * FLOW_BYTES_PER_PIXEL + 400 * 2**20)


def test_fused_flow_is_charged_for_its_four_members_and_its_doubled_frames() -> None:
    room = 1920 * 1080 * FLOW_BYTES_PER_PIXEL + 400 * 2**20  # enough for dense DIS at 1080p
    check_flow_fits(1920, 1080, available=room, method="dis_dense")
    with pytest.raises(UserError, match=r"optical flow by fused of 1920x1080 frames needs about 4\.\d GB"):
        check_flow_fits(1920, 1080, available=room, method="fused")


def test_frames_that_would_not_fit_on_the_disk_are_refused_before_extraction(tiny_clip: Path, tiny_style: Path,
                                                                             tmp_path: Path, monkeypatch) -> None:
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=10_000))
    job = tmp_path / "job"
    result = invoke("run", tiny_clip, "--style", tiny_style, "--job-dir", job, "--plan-only", "--flow", "dis")
    assert result.exit_code == 2, result.output
    assert "5 frames of 64x48 need up to 0.0 GB for PNG frames, 0.0 GB free" in result.output
    assert not (job / "frames").exists()


@pytest.mark.parametrize("args, message", [
    (["--passes", "1000000000"], "--passes must be at most 1000 (got 1000000000)"),
    (["--iterations", str(10**12)], "--iterations must be at most 100000"),
    (["--width", "1000000"], "must be at most 16384"),
    (["--size", "100000x16"], "each from 16 to 16384"),
])
def test_settings_that_size_work_have_upper_bounds(tiny_clip: Path, tiny_style: Path, tmp_path: Path,
                                                   args: list[str], message: str) -> None:
    result = invoke("run", tiny_clip, "--style", tiny_style, "--job-dir", tmp_path / "job", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output and not (tmp_path / "job").exists()
