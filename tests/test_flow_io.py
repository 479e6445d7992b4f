"""flow.io: Middlebury .flo and PGM files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import flow
from flow.io import pgm_bytes

EXAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "artistic-videos-example"
needs_example = pytest.mark.skipif(not EXAMPLE.is_dir(), reason="../shared/data is absent")


def _random_flow(height: int = 7, width: int = 5, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 4, (height, width, 2)).astype(np.float32)


def test_flo_round_trip_keeps_values_and_layout(tmp_path: Path) -> None:
    flw = _random_flow()
    flw[0, 0] = [np.nan, -0.0]
    path = tmp_path / "x.flo"
    flow.write_flo(path, flw)
    data = path.read_bytes()
    assert data[:4] == b"PIEH"
    assert np.frombuffer(data[4:12], "<i4").tolist() == [5, 7]  # width, then height
    # Row-major, u and v interleaved: the 2nd float pair is pixel (x=1, y=0).
    assert np.frombuffer(data[12 + 8:12 + 16], "<f4").tolist() == flw[0, 1].tolist()
    back = flow.read_flo(path)
    assert back.dtype == np.float32 and back.shape == (7, 5, 2)
    assert back.tobytes() == flw.tobytes()  # bit-exact, NaN and -0 included


@needs_example
@pytest.mark.parametrize("name", ["forward_1_2.flo", "backward_5_4.flo"])
def test_reference_flo_round_trips_byte_exact(tmp_path: Path, name: str) -> None:
    original = (EXAMPLE / "deepflow" / name).read_bytes()
    flw = flow.read_flo(EXAMPLE / "deepflow" / name)
    assert flw.shape == (350, 450, 2)
    flow.write_flo(tmp_path / name, flw)
    assert (tmp_path / name).read_bytes() == original


@pytest.mark.parametrize("mangle, message", [
    (lambda d: d[:-3], "truncated"),
    (lambda d: d[:10], "truncated|not a Middlebury"),
    (lambda d: d + b"\0\0\0\0", "trailing"),
    (lambda d: b"XXXX" + d[4:], "not a Middlebury"),
    (lambda d: d[:4] + np.array([-5, 7], "<i4").tobytes() + d[12:], "implausible"),
    (lambda d: b"", "not a Middlebury"),
])
def test_malformed_flo_is_one_line_flow_error(tmp_path: Path, mangle, message) -> None:
    good = tmp_path / "good.flo"
    flow.write_flo(good, _random_flow())
    bad = tmp_path / "bad.flo"
    bad.write_bytes(mangle(good.read_bytes()))
    with pytest.raises(flow.FlowError, match=message) as info:
        flow.read_flo(bad)
    assert "\n" not in str(info.value)


def test_missing_flo_is_flow_error(tmp_path: Path) -> None:
    with pytest.raises(flow.FlowError, match="not found"):
        flow.read_flo(tmp_path / "nope.flo")


def test_write_flo_rejects_wrong_shape(tmp_path: Path) -> None:
    with pytest.raises(flow.FlowError, match="HxWx2"):
        flow.write_flo(tmp_path / "x.flo", np.zeros((4, 4, 3), np.float32))


def test_writes_are_atomic_and_leave_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "x.flo"
    flow.write_flo(path, _random_flow())
    flow.write_flo(path, _random_flow(seed=1))  # replace an existing file
    flow.write_pgm(tmp_path / "sub" / "m.pgm", np.full((3, 4), 200.0))
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["m.pgm", "x.flo"]
    assert flow.read_flo(path).tobytes() == _random_flow(seed=1).tobytes()


def test_write_pgm_truncates_and_clips_like_the_authors(tmp_path: Path) -> None:
    values = np.array([[254.999, 0.9, -3.0], [300.0, np.nan, 128.5]], dtype=np.float32)
    path = tmp_path / "m.pgm"
    flow.write_pgm(path, values)
    assert path.read_bytes()[:len(b"P5\n3 2\n255\n")] == b"P5\n3 2\n255\n"
    assert flow.read_pgm(path).tolist() == [[254, 0, 0], [255, 0, 128]]


@needs_example
def test_reference_pgm_reads_and_writes_byte_exact() -> None:
    path = EXAMPLE / "deepflow" / "reliable_2_1.pgm"
    mask = flow.read_pgm(path)
    assert mask.shape == (350, 450) and mask.dtype == np.uint8
    assert pgm_bytes(mask) == path.read_bytes()


def test_read_pgm_accepts_comments_and_plain_format(tmp_path: Path) -> None:
    binary = tmp_path / "b.pgm"
    binary.write_bytes(b"P5\n# made by hand\n2 2\n# max\n255\n\x00\x0a\xff\x80")
    assert flow.read_pgm(binary).tolist() == [[0, 10], [255, 128]]
    plain = tmp_path / "p.pgm"
    plain.write_bytes(b"P2\n3 1\n255\n1 2   3\n")
    assert flow.read_pgm(plain).tolist() == [[1, 2, 3]]


@pytest.mark.parametrize("content, message", [
    (b"P5\n4 4\n255\n\x00\x01", "truncated"),
    (b"P6\n1 1\n255\n\x00\x00\x00", "not a PGM"),
    (b"P5\n4", "bad header"),
    (b"P5\n2 2\n65535\n" + b"\0" * 8, "maxval"),
])
def test_malformed_pgm_is_flow_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.pgm"
    path.write_bytes(content)
    with pytest.raises(flow.FlowError, match=message):
        flow.read_pgm(path)


def test_plain_pgm_with_garbage_is_flow_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.pgm"
    path.write_bytes(b"P2\n2 1\n255\n1 x\n")
    with pytest.raises(flow.FlowError, match="not a number"):
        flow.read_pgm(path)


def test_authors_file_names() -> None:
    assert flow.flow_file_name(1, 2) == "forward_1_2.flo"
    assert flow.flow_file_name(2, 1) == "backward_2_1.flo"
    assert flow.reliable_file_name(2, 1) == "reliable_2_1.pgm"
    with pytest.raises(flow.FlowError):
        flow.flow_file_name(3, 3)


def test_atomic_writes_get_the_mode_of_any_new_file(tmp_path):
    import os

    from flow.atomic import atomic_write_bytes

    before = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "a.bin", b"x")
    finally:
        os.umask(before)
    assert (tmp_path / "a.bin").stat().st_mode & 0o777 == 0o644
