"""Contact sheets: every stage's row is there, in order, showing the right files."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

import flow
import videostyle.cli.eval_cmds  # noqa: F401  (registers the commands)
from videostyle import sheet
from videostyle.cli import main
from videostyle.images import load_image, save_image

H, W, N = 12, 16, 5
THUMB = 32  # cells are 32x24


def solid(value: tuple[int, int, int]) -> np.ndarray:
    return np.broadcast_to(np.clip(value, 0, 255).astype(np.uint8), (H, W, 3)).copy()


def make_job(root, passes=(1, 2, 3), final=True):
    """A job whose every image is one solid colour that says what it is."""
    (root / "frames").mkdir(parents=True)
    (root / "job.json").write_text("{}")
    for t in range(1, N + 1):
        save_image(root / "frames" / f"frame_{t:05d}.png", solid((10 * t, 0, 0)))
        for p in passes:
            save_image(root / "stylized" / "key1" / f"pass_{p:02d}" / f"frame_{t:05d}.png",
                       solid((0, 40 * p, 10 * t)))
        if final:
            save_image(root / "final" / f"frame_{t:05d}.png", solid((0, 0, 250)))
    flows = root / "flow" / "flowkey"
    for t in range(2, N + 1):
        flw = np.zeros((H, W, 2), np.float32)
        flw[..., 0] = t  # rightward, faster each frame
        flow.write_flo(flows / f"backward_{t}_{t - 1}.flo", flw)
        mask = np.full((H, W), 255, np.uint8)
        mask[:, : W // 2] = 0  # left half unreliable
        flow.write_pgm(flows / f"reliable_{t}_{t - 1}.pgm", mask)
    return root


def cell(image, row, col, th=THUMB * H // W):
    """Centre pixel of the cell in ``row`` (0 = input) and ``col``."""
    y = sheet.HEADER_HEIGHT + row * (th + sheet.GAP) + th // 2
    x = sheet.LABEL_WIDTH + col * (THUMB + sheet.GAP) + THUMB // 2
    return image[y, x]


def test_pick_evenly_keeps_ends():
    assert sheet.pick_evenly([1, 2, 3, 4, 5], 3) == [1, 3, 5]
    assert sheet.pick_evenly([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 4) == [1, 4, 7, 10]
    assert sheet.pick_evenly([1, 2], 5) == [1, 2]
    assert sheet.pick_evenly([4, 5, 6], 1) == [4]


def test_sheet_rows_show_each_stage(tmp_path):
    job = make_job(tmp_path / "job")
    image = sheet.contact_sheet(job, frames=3, passes=5, thumb_width=THUMB)
    th = THUMB * H // W
    rows = ["input", "flow", "mask", "pass 01", "pass 02", "pass 03", "final"]
    assert image.shape == (sheet.HEADER_HEIGHT + len(rows) * (th + sheet.GAP),
                           sheet.LABEL_WIDTH + 3 * (THUMB + sheet.GAP), 3)
    # Columns are frames 1, 3, 5.
    assert [tuple(cell(image, 0, c)) for c in range(3)] == [(10, 0, 0), (30, 0, 0), (50, 0, 0)]
    assert tuple(cell(image, 4, 2)) == (0, 80, 50)  # pass 2, frame 5
    assert tuple(cell(image, 6, 1)) == (0, 0, 250)  # final
    # Frame 1 has no backward flow: a grey placeholder; later frames show a coloured flow.
    first_flow = image[sheet.HEADER_HEIGHT + th + sheet.GAP + 2, sheet.LABEL_WIDTH + 2]
    assert tuple(first_flow) == sheet.MISSING
    flow_colour = cell(image, 1, 2)
    assert int(flow_colour.max()) - int(flow_colour.min()) > 50  # saturated, not grey
    # Masks: the right half is white (reliable), the left half black.
    mask_y = sheet.HEADER_HEIGHT + 2 * (th + sheet.GAP) + th // 2
    x0 = sheet.LABEL_WIDTH + 2 * (THUMB + sheet.GAP)
    assert image[mask_y, x0 + 2].max() == 0 and image[mask_y, x0 + THUMB - 3].min() == 255


def test_sheet_limits_passes_and_marks_missing_stages(tmp_path):
    job = make_job(tmp_path / "job", passes=range(1, 11), final=False)
    image = sheet.contact_sheet(job, frames=2, passes=3, thumb_width=THUMB)
    th = THUMB * H // W
    # input, flow, mask, passes 1 / 6 / 10 (evenly, ends kept), no final row
    assert image.shape[0] == sheet.HEADER_HEIGHT + 6 * (th + sheet.GAP)
    assert tuple(cell(image, 3, 0)) == (0, 40, 10)
    assert tuple(cell(image, 5, 1)) == (0, 255, 50)  # pass 10 green saturates (400 -> 255)
    # A missing frame in a pass shows as a grey cell rather than failing.
    (job / "stylized" / "key1" / "pass_10" / f"frame_{N:05d}.png").unlink()
    image = sheet.contact_sheet(job, frames=2, passes=3, thumb_width=THUMB)
    corner = image[sheet.HEADER_HEIGHT + 5 * (th + sheet.GAP) + 1,
                   sheet.LABEL_WIDTH + (THUMB + sheet.GAP) + 1]
    assert tuple(corner) == sheet.MISSING


def test_sheet_command_writes_png(tmp_path):
    job = make_job(tmp_path / "job")
    out = tmp_path / "s.png"
    result = CliRunner().invoke(main, ["sheet", str(job), "-o", str(out), "--thumb-width", "40"])
    assert result.exit_code == 0, result.output
    written = load_image(out)
    assert written.shape[1] == sheet.LABEL_WIDTH + 4 * (40 + sheet.GAP)


def test_sheet_of_non_job_folder_is_a_user_error(tmp_path):
    result = CliRunner().invoke(main, ["sheet", str(tmp_path), "-o", str(tmp_path / "s.png")])
    assert result.exit_code == 2 and result.output.startswith("error:")


@pytest.mark.parametrize("frames", [1, 7])
def test_sheet_handles_few_or_more_frames_than_clip(tmp_path, frames):
    job = make_job(tmp_path / "job", passes=(1,))
    image = sheet.contact_sheet(job, frames=frames, thumb_width=THUMB)
    assert image.shape[1] == sheet.LABEL_WIDTH + min(frames, N) * (THUMB + sheet.GAP)
