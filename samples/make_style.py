"""Paint the bundled style image, `swirls.png`, so the project ships a painting it may redistribute.

Thick brush strokes follow a swirling vector field (a few vortices over a gentle drift), in a
night-sky palette with bright stars: texture and palette that style transfer can pick up.

    python samples/make_style.py            # rewrites samples/swirls.png (deterministic)
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

WIDTH, HEIGHT = 512, 384
PALETTE_SKY = np.array([[22, 43, 99], [37, 74, 150], [64, 112, 186], [104, 153, 206],
                        [170, 200, 220], [18, 30, 70]], dtype=np.float64)
PALETTE_STAR = np.array([[246, 214, 84], [250, 236, 150], [232, 176, 52]], dtype=np.float64)
PALETTE_GROUND = np.array([[25, 40, 30], [48, 66, 44], [86, 92, 52], [30, 30, 44]], dtype=np.float64)


def vortex_field(rng: np.random.Generator, n_vortices: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Unit direction field (dx, dy) on the canvas: vortices plus a horizontal drift."""
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    dx = np.ones_like(xs) * 0.6
    dy = np.zeros_like(ys)
    for _ in range(n_vortices):
        cx, cy = rng.uniform(0, WIDTH), rng.uniform(0, HEIGHT * 0.7)
        strength = rng.uniform(40, 90) * rng.choice([-1, 1])
        rx, ry = xs - cx, ys - cy
        r2 = rx**2 + ry**2 + 400.0
        dx += -ry * strength / r2
        dy += rx * strength / r2
    norm = np.hypot(dx, dy) + 1e-9
    return dx / norm, dy / norm


def stroke(canvas: np.ndarray, field: tuple[np.ndarray, np.ndarray], start: tuple[float, float],
           colour: np.ndarray, length: int, width: int) -> None:
    """One brush stroke traced along the field, with a darker edge under a lighter body."""
    x, y = start
    points = []
    for _ in range(length):
        xi, yi = int(np.clip(x, 0, WIDTH - 1)), int(np.clip(y, 0, HEIGHT - 1))
        points.append((x, y))
        x += 2.0 * field[0][yi, xi]
        y += 2.0 * field[1][yi, xi]
    pts = np.array(points, dtype=np.int32).reshape(-1, 1, 2)
    edge = tuple(int(c) for c in colour * 0.55)
    body = tuple(int(c) for c in np.clip(colour, 0, 255))
    cv2.polylines(canvas, [pts], False, edge, width + 2, cv2.LINE_AA)
    cv2.polylines(canvas, [pts], False, body, width, cv2.LINE_AA)


def paint(seed: int = 7) -> np.ndarray:
    """Return the painting as HxWx3 uint8 RGB."""
    rng = np.random.default_rng(seed)
    canvas = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    canvas[:] = (30, 50, 110)
    field = vortex_field(rng)
    horizon = int(HEIGHT * 0.72)
    for _ in range(2600):
        x, y = rng.uniform(-20, WIDTH), rng.uniform(0, horizon)
        colour = PALETTE_SKY[rng.integers(len(PALETTE_SKY))] + rng.normal(0, 12, 3)
        stroke(canvas, field, (x, y), colour, int(rng.integers(8, 22)), int(rng.integers(3, 7)))
    for _ in range(900):
        x, y = rng.uniform(-20, WIDTH), rng.uniform(horizon - 10, HEIGHT)
        colour = PALETTE_GROUND[rng.integers(len(PALETTE_GROUND))] + rng.normal(0, 10, 3)
        stroke(canvas, (np.ones_like(field[0]), np.full_like(field[1], -0.25)), (x, y), colour,
               int(rng.integers(6, 16)), int(rng.integers(3, 6)))
    for _ in range(9):
        cx, cy, radius = rng.uniform(20, WIDTH - 20), rng.uniform(15, horizon * 0.8), rng.uniform(6, 18)
        for ring in range(int(radius), 0, -3):
            colour = PALETTE_STAR[rng.integers(len(PALETTE_STAR))]
            cv2.circle(canvas, (int(cx), int(cy)), ring + 4, tuple(int(c * 0.7) for c in colour), 2, cv2.LINE_AA)
            cv2.circle(canvas, (int(cx), int(cy)), ring, tuple(int(c) for c in colour), 3, cv2.LINE_AA)
    return canvas


def main() -> None:
    out = Path(__file__).resolve().parent / "swirls.png"
    cv2.imwrite(str(out), cv2.cvtColor(paint(), cv2.COLOR_RGB2BGR))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
