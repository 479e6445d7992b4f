"""Frame pairs with exactly known flow, for tests and benchmarks.

A textured background moves by a rotation plus a translation, and a textured disc moves over it
by its own translation, hiding background in one frame that is visible in the other. Textures
are analytic (sums of random sinusoids and soft-edged blobs), so every frame is sampled exactly
at its pixel centres and the ground truth has no interpolation error.

Conventions as in the rest of ``flow``: ``forward`` is flow(a -> b) with a(x) = b(x + forward(x))
for pixels visible in both frames; ``backward`` is flow(b -> a).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from flow.warp import lands_inside


@dataclass(frozen=True)
class SyntheticPair:
    """Two RGB uint8 frames, both flows, and where each frame's pixels have no match."""

    a: np.ndarray  # HxWx3 uint8
    b: np.ndarray  # HxWx3 uint8
    forward: np.ndarray  # HxWx2 float32, flow a -> b
    backward: np.ndarray  # HxWx2 float32, flow b -> a
    occluded_a: np.ndarray  # HxW bool: a's pixel is hidden in b or leaves the image
    occluded_b: np.ndarray  # HxW bool: b's pixel is hidden in a or comes from outside
    disc_a: np.ndarray  # HxW bool: a's pixel is on the moving disc


@dataclass(frozen=True)
class Motion:
    """Background: rotate by ``rotation_deg`` about the image centre, then translate by
    ``shift`` (pixels, x then y). Disc: radius ``disc_radius`` centred at ``disc_centre`` (as a
    fraction of width, height) in frame a, translated by ``disc_shift`` in frame b."""

    shift: tuple[float, float] = (5.0, -3.0)
    rotation_deg: float = 2.0
    disc_radius: float = 16.0
    disc_centre: tuple[float, float] = (0.45, 0.5)
    disc_shift: tuple[float, float] = (-4.0, 5.0)


class Texture:
    """An analytic RGB texture: T(x, y) in 0..255 for any float coordinates."""

    def __init__(self, seed: int, scale: float, waves: int = 96, blobs: int = 40) -> None:
        rng = np.random.default_rng(seed)
        freq = np.exp(rng.uniform(math.log(0.04), math.log(0.9), waves))  # radians per pixel
        angle = rng.uniform(0, math.pi, waves)
        self._kx, self._ky = freq * np.cos(angle), freq * np.sin(angle)
        self._phase = rng.uniform(0, 2 * math.pi, waves)
        # Mostly grey texture with some colour, amplitudes falling with frequency.
        colour = rng.normal(size=(waves, 1)) + 0.4 * rng.normal(size=(waves, 3))
        self._amp = colour / freq[:, None] ** 0.5
        # Flat blobs with soft (3 px) edges add strong edges at many orientations.
        self._blob_xy = rng.uniform(0, scale, (blobs, 2))
        self._blob_r = rng.uniform(0.02, 0.1, blobs) * scale
        self._std = np.sqrt((self._amp ** 2).sum(0) / 2)
        blob_colour = rng.normal(size=(blobs, 1)) + 0.5 * rng.normal(size=(blobs, 3))
        self._blob_rgb = blob_colour * self._std

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """x, y: HxW float coordinates -> HxWx3 float in 0..255."""
        arg = x[..., None] * self._kx + y[..., None] * self._ky + self._phase
        value = np.sin(arg) @ self._amp
        for (bx, by), radius, rgb in zip(self._blob_xy, self._blob_r, self._blob_rgb):
            dist = np.hypot(x - bx, y - by)
            value += rgb * (0.5 - 0.5 * np.tanh((dist - radius) / 3.0))[..., None]
        return 127.5 + 120.0 * np.tanh(value / (1.5 * self._std))


def textured_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """An HxWx3 uint8 image with texture at many scales and some sharp-ish edges."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    return _to_uint8(Texture(seed, max(height, width))(x, y))


def make_pair(height: int, width: int, motion: Motion = Motion(), seed: int = 0) -> SyntheticPair:
    """Frames a and b of a rotating, shifting background with a disc moving over it."""
    background = Texture(seed, max(height, width))
    disc = Texture(seed + 1, 4 * motion.disc_radius)
    rot = math.radians(motion.rotation_deg)
    cos, sin = math.cos(rot), math.sin(rot)
    cx, cy = (width - 1) / 2, (height - 1) / 2
    tx, ty = motion.shift
    dx, dy = motion.disc_shift
    ox_a, oy_a = motion.disc_centre[0] * width, motion.disc_centre[1] * height
    ox_b, oy_b = ox_a + dx, oy_a + dy
    radius = motion.disc_radius
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)

    # Background: a's pixel x shows T_bg(M(x)), b's pixel y shows T_bg(y).
    mx = cos * (x - cx) - sin * (y - cy) + cx + tx
    my = sin * (x - cx) + cos * (y - cy) + cy + ty
    # Inverse: b's pixel y came from M^-1(y) in a.
    ix = cos * (x - cx - tx) + sin * (y - cy - ty) + cx
    iy = -sin * (x - cx - tx) + cos * (y - cy - ty) + cy

    in_disc_a = np.hypot(x - ox_a, y - oy_a) <= radius
    in_disc_b = np.hypot(x - ox_b, y - oy_b) <= radius
    disc_centre = 2 * radius  # the disc texture is sampled around (2r, 2r)
    a = np.where(in_disc_a[..., None],
                 disc(x - ox_a + disc_centre, y - oy_a + disc_centre), background(mx, my))
    b = np.where(in_disc_b[..., None],
                 disc(x - ox_b + disc_centre, y - oy_b + disc_centre), background(x, y))

    forward = np.stack([np.where(in_disc_a, dx, mx - x), np.where(in_disc_a, dy, my - y)], -1)
    backward = np.stack([np.where(in_disc_b, -dx, ix - x), np.where(in_disc_b, -dy, iy - y)], -1)
    hidden_in_b = ~in_disc_a & (np.hypot(mx - ox_b, my - oy_b) <= radius)
    hidden_in_a = ~in_disc_b & (np.hypot(ix - ox_a, iy - oy_a) <= radius)
    return SyntheticPair(
        a=_to_uint8(a), b=_to_uint8(b),
        forward=forward.astype(np.float32), backward=backward.astype(np.float32),
        occluded_a=hidden_in_b | (lands_inside(forward) == 0),
        occluded_b=hidden_in_a | (lands_inside(backward) == 0),
        disc_a=in_disc_a,
    )


def endpoint_error(flw: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean Euclidean distance between two HxWx2 flows, over ``mask`` (bool HxW) if given."""
    err = np.hypot(flw[..., 0] - truth[..., 0], flw[..., 1] - truth[..., 1])
    return float(err[mask].mean() if mask is not None else err.mean())


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- moving-camera clips


@dataclass(frozen=True)
class Disc:
    """A disc cut from a picture that slides across the frame: it enters at ``start`` (fractions
    of width and height), moves ``speed`` pixels per frame (x, y) at the output size and has a
    radius of ``radius`` times the frame height."""

    start: tuple[float, float]
    speed: tuple[float, float]
    radius: float = 0.22

    def centre(self, size: tuple[int, int], k: int) -> tuple[float, float]:
        width, height = size
        return self.start[0] * width + self.speed[0] * k, self.start[1] * height + self.speed[1] * k

    def scaled(self, factor: float) -> Disc:
        return replace(self, speed=(self.speed[0] * factor, self.speed[1] * factor))


@dataclass(frozen=True)
class CameraPath:
    """A virtual camera over a still picture, and discs cut from other pictures sliding past it.

    Over the whole clip the camera pans by ``pan`` (fractions of the frame's width and height),
    zooms in by ``zoom`` (0.15: the last frame shows 15% less of the picture across) and rotates by
    ``rotation_deg``, at constant speed; ``shake`` adds a seeded hand-held wobble of that many
    pixels. The first disc (radius ``disc_radius`` times the frame height) enters at ``disc_start``
    (fractions of width and height) and moves ``disc_speed`` pixels per frame (x, y) at the
    output size; ``disc_radius = 0`` leaves it out. ``more_discs`` slide over it, each drawn above
    the ones before.
    """

    pan: tuple[float, float] = (0.25, 0.0)
    zoom: float = 0.0
    rotation_deg: float = 0.0
    shake: float = 0.0
    disc_radius: float = 0.22
    disc_start: tuple[float, float] = (0.05, 0.5)
    disc_speed: tuple[float, float] = (25.0, 0.0)
    more_discs: tuple[Disc, ...] = ()

    @property
    def discs(self) -> tuple[Disc, ...]:
        """Every disc, bottom first."""
        first = (Disc(self.disc_start, self.disc_speed, self.disc_radius),) if self.disc_radius > 0 else ()
        return first + self.more_discs

    def scaled(self, factor: float) -> CameraPath:
        """The same motion for frames ``factor`` times as large: pixel speeds and shake scaled."""
        return replace(self, shake=self.shake * factor,
                       disc_speed=(self.disc_speed[0] * factor, self.disc_speed[1] * factor),
                       more_discs=tuple(d.scaled(factor) for d in self.more_discs))


@dataclass(frozen=True)
class _Layers:
    """Where each disc is in one frame: centres and radii, bottom first."""

    centres: tuple[tuple[float, float], ...]
    radii: tuple[float, ...]

    def top(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Index + 1 of the topmost disc covering each point, 0 for the background."""
        layer = np.zeros(np.shape(x), dtype=np.int16)
        for i, ((cx, cy), r) in enumerate(zip(self.centres, self.radii)):
            layer[np.hypot(x - cx, y - cy) <= r] = i + 1
        return layer

    def near_a_rim(self, x: np.ndarray, y: np.ndarray, rim: float) -> np.ndarray:
        """Points within ``rim`` of any disc's edge, where disc and what lies under it mix."""
        near = np.zeros(np.shape(x), dtype=bool)
        for (cx, cy), r in zip(self.centres, self.radii):
            near |= np.abs(np.hypot(x - cx, y - cy) - r) <= rim
        return near


@dataclass(frozen=True)
class SyntheticClip:
    """Frames of a moving camera with exactly known flow between consecutive frames.

    ``frames[k]`` is frame k+1 (HxWx3 uint8). For k >= 1, ``backward[k]`` is the flow from frame
    k+1 to frame k and ``forward[k]`` the flow from frame k to frame k+1 (HxWx2 float32, channel 0
    = x), and ``visible[k]`` (HxW bool) marks frame k+1's pixels that frame k shows too, away from
    the discs' antialiased rims: where the metric and the reliability of ``backward[k]`` are
    defined. Index 0 of the three lists is None. :meth:`flow_between` gives the same for any two
    frames.
    """

    frames: list[np.ndarray]
    backward: list[np.ndarray | None]
    forward: list[np.ndarray | None]
    visible: list[np.ndarray | None]
    visible_forward: list[np.ndarray | None]
    poses: list[_Pose] | None = None
    layers: list[_Layers] | None = None
    rim: float = 0.0

    def flow_between(self, t: int, s: int) -> tuple[np.ndarray, np.ndarray]:
        """The exact flow from ``frames[t]`` to ``frames[s]`` (0-based, any two frames) and which
        of ``frames[t]``'s pixels ``frames[s]`` shows."""
        if self.poses is None or self.layers is None:
            raise ValueError("this clip keeps no camera geometry (made by camera_clip)")
        height, width = self.frames[0].shape[:2]
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
        return _pair_flow(self.poses[t], self.poses[s], self.layers[t], self.layers[s], self.rim, xs, ys)


class _Pose:
    """Frame pixel x (pixel centres, origin top-left) -> picture point c + s·R(θ)·(x − o)."""

    def __init__(self, centre: tuple[float, float], scale: float, angle: float, origin: tuple[float, float]) -> None:
        self.cx, self.cy = centre
        self.s, self.cos, self.sin = scale, math.cos(angle), math.sin(angle)
        self.ox, self.oy = origin

    def to_picture(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dx, dy = x - self.ox, y - self.oy
        return (self.cx + self.s * (self.cos * dx - self.sin * dy),
                self.cy + self.s * (self.sin * dx + self.cos * dy))

    def to_frame(self, px: np.ndarray, py: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dx, dy = (px - self.cx) / self.s, (py - self.cy) / self.s
        return self.ox + self.cos * dx + self.sin * dy, self.oy - self.sin * dx + self.cos * dy


def camera_clip(picture: np.ndarray, occluder: np.ndarray | list[np.ndarray], n_frames: int, size: tuple[int, int],
                path: CameraPath = CameraPath(), seed: int = 0, supersample: int = 3,
                optics_blur: float = 0.8) -> SyntheticClip:
    """Film ``picture`` (HxWx3 uint8, larger than the frames) along ``path`` at ``size`` (W, H).

    ``occluder`` is the picture the discs are cut from, or one picture per disc (used in turn).
    Each frame is rendered at ``supersample``× (the picture by cubic interpolation, mirrored beyond
    its edges), blurred by a Gaussian of ``optics_blur`` frame pixels as a lens would and
    box-filtered down to the pixel grid. The flows are the exact maps between the frames' pixel
    centres, and the discs' pixels move rigidly. Without the lens blur a photo filmed at a quarter
    of its size aliases, and the input's own warping error (bilinear) was 4.5 of 255 instead of
    the 1.2 to 1.7 of real footage (the bundled bunny: 1.6); with 0.8 px it is about 1.3.
    """
    width, height = size
    pictures = occluder if isinstance(occluder, list) else [occluder]
    discs = path.discs
    cutouts = [pictures[i % len(pictures)] for i in range(len(discs))]
    poses = _camera_poses(picture.shape, n_frames, size, path, seed)
    layers = [_Layers(tuple(d.centre(size, k) for d in discs), tuple(d.radius * height for d in discs))
              for k in range(n_frames)]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    frames = [_render(picture, cutouts, pose, layer, size, supersample, optics_blur)
              for pose, layer in zip(poses, layers)]
    rim = 1.0 + 2.5 * optics_blur
    backward: list[np.ndarray | None] = [None]
    forward: list[np.ndarray | None] = [None]
    visible: list[np.ndarray | None] = [None]
    visible_forward: list[np.ndarray | None] = [None]
    for k in range(1, n_frames):
        bwd, vis = _pair_flow(poses[k], poses[k - 1], layers[k], layers[k - 1], rim, xs, ys)
        fwd, vis_f = _pair_flow(poses[k - 1], poses[k], layers[k - 1], layers[k], rim, xs, ys)
        backward.append(bwd)
        forward.append(fwd)
        visible.append(vis)
        visible_forward.append(vis_f)
    return SyntheticClip(frames, backward, forward, visible, visible_forward, poses, layers, rim)


def _camera_poses(picture_shape: tuple[int, ...], n_frames: int, size: tuple[int, int], path: CameraPath,
                  seed: int) -> list[_Pose]:
    """Poses whose frames stay inside the picture: the scale is set so the whole path fits."""
    width, height = size
    ph, pw = picture_shape[:2]
    span_x = width * (1 + abs(path.pan[0])) + abs(math.sin(math.radians(path.rotation_deg))) * height
    span_y = height * (1 + abs(path.pan[1])) + abs(math.sin(math.radians(path.rotation_deg))) * width
    scale = 0.95 * min(pw / span_x, ph / span_y)  # picture pixels per frame pixel, first frame
    rng = np.random.default_rng(seed)
    wobble = rng.normal(size=(n_frames, 2)) * path.shake
    origin = ((width - 1) / 2, (height - 1) / 2)
    poses = []
    for k in range(n_frames):
        f = k / max(n_frames - 1, 1)
        s = scale * (1 - path.zoom * f)
        cx = pw / 2 + scale * width * path.pan[0] * (f - 0.5) + scale * wobble[k, 0]
        cy = ph / 2 + scale * height * path.pan[1] * (f - 0.5) + scale * wobble[k, 1]
        poses.append(_Pose((cx, cy), s, math.radians(path.rotation_deg) * f, origin))
    return poses


def _render(picture: np.ndarray, cutouts: list[np.ndarray], pose: _Pose, layers: _Layers, size: tuple[int, int],
            supersample: int, blur: float) -> np.ndarray:
    import cv2  # flow's estimators need OpenCV already; only this generator uses it here

    width, height = size
    k = supersample
    offsets = (np.arange(width * k) + 0.5) / k - 0.5, (np.arange(height * k) + 0.5) / k - 0.5
    xs, ys = np.meshgrid(offsets[0], offsets[1])
    px, py = pose.to_picture(xs, ys)
    image = cv2.remap(picture.astype(np.float32), px.astype(np.float32), py.astype(np.float32),
                      cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)
    for cutout, (cx, cy), radius in zip(cutouts, layers.centres, layers.radii):
        # Each disc shows a patch of its picture that moves with it.
        oh, ow = cutout.shape[:2]
        patch = min(oh, ow) / (2.2 * radius)
        ox = (xs - cx) * patch + ow / 2
        oy = (ys - cy) * patch + oh / 2
        disc_image = cv2.remap(cutout.astype(np.float32), ox.astype(np.float32), oy.astype(np.float32),
                               cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)
        inside = np.hypot(xs - cx, ys - cy) <= radius
        image = np.where(inside[..., None], disc_image, image)
    if blur > 0:
        image = cv2.GaussianBlur(image, (0, 0), blur * k)
    image = image.reshape(height, k, width, k, 3).mean(axis=(1, 3))
    return _to_uint8(image)


def _pair_flow(pose_t: _Pose, pose_s: _Pose, layers_t: _Layers, layers_s: _Layers, rim: float, xs: np.ndarray,
               ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flow from frame t to frame s and which of t's pixels s shows (both HxW grids). A pixel
    moves with the topmost thing covering it (a disc rigidly, the background with the camera), and
    s shows it when that same thing is on top where it lands. Pixels within ``rim`` of a disc's
    edge in either frame mix a disc and what lies under it, so neither motion holds there: they
    count as not shown."""
    height, width = xs.shape
    sx, sy = pose_s.to_frame(*pose_t.to_picture(xs, ys))
    top_t = layers_t.top(xs, ys)
    for i, ((cx_t, cy_t), (cx_s, cy_s)) in enumerate(zip(layers_t.centres, layers_s.centres)):
        on_disc = top_t == i + 1
        sx = np.where(on_disc, xs - cx_t + cx_s, sx)
        sy = np.where(on_disc, ys - cy_t + cy_s, sy)
    seen = ((layers_s.top(sx, sy) == top_t) & ~layers_t.near_a_rim(xs, ys, rim)
            & ~layers_s.near_a_rim(sx, sy, rim))
    inside = (sx >= 0) & (sx <= width - 1) & (sy >= 0) & (sy <= height - 1)
    flw = np.stack([sx - xs, sy - ys], -1).astype(np.float32)
    return flw, seen & inside


def write_clip(clip: SyntheticClip, frames_dir: Path, flows_dir: Path | None = None) -> Path:
    """``clip``'s frames as ``frame_0001.png`` ... in ``frames_dir`` and, with ``flows_dir``, its
    exact flows both ways and their visibility as reliability maps, under the authors' names (the
    files ``videostyle run --flow-files`` and ``videostyle eval --flow`` read). Returns the frames'
    printf pattern."""
    import cv2

    from flow.atomic import atomic_write_bytes
    from flow.io import flow_file_name, reliable_file_name, write_flo, write_pgm

    for k, frame in enumerate(clip.frames, start=1):
        ok, encoded = cv2.imencode(".png", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        assert ok, "PNG encoding of a uint8 RGB frame"
        atomic_write_bytes(Path(frames_dir) / f"frame_{k:04d}.png", encoded.tobytes())
    for k in range(1, len(clip.frames)) if flows_dir is not None else ():
        # frames k and k+1, numbered from 1
        for (t, s), flw, seen in (((k, k + 1), clip.forward[k], clip.visible_forward[k]),
                                  ((k + 1, k), clip.backward[k], clip.visible[k])):
            write_flo(Path(flows_dir) / flow_file_name(t, s), flw)
            write_pgm(Path(flows_dir) / reliable_file_name(t, s), seen.astype(np.uint8) * 255)
    return Path(frames_dir) / "frame_%04d.png"


def write_long_range_flows(clip: SyntheticClip, flows_dir: Path, offsets: Iterable[int]) -> None:
    """Beside :func:`write_clip`'s flows, the exact flows and visibility of the frame pairs
    (a, a+j) for each offset j > 1, both ways, under the same names: what a run with long-term
    offsets (``--long-term``) reads from ``--flow-files``."""
    from flow.io import flow_file_name, reliable_file_name, write_flo, write_pgm

    n = len(clip.frames)
    for j in sorted({j for j in offsets if j > 1}):
        for a in range(1, n + 1 - j):
            for t, s in ((a, a + j), (a + j, a)):
                flw, seen = clip.flow_between(t - 1, s - 1)
                write_flo(Path(flows_dir) / flow_file_name(t, s), flw)
                write_pgm(Path(flows_dir) / reliable_file_name(t, s), seen.astype(np.uint8) * 255)
