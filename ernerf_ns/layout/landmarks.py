"""`ori_imgs/<i>.lms`: a frame's 68 iBUG landmarks, one "x y" line each, in pixels.

Coordinates are continuous with pixel j spanning [j, j + 1] (the rays' convention, pixel centres at j + 0.5).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from jaxtyping import Float

from ernerf_ns.layout.errors import DatasetError

NUM_LANDMARKS = 68
LMS_FORMAT = "%.4f"
"""Four decimals: a ten-thousandth of a pixel, far below any detector's error."""


def write_landmarks(path: Path, points: Float[np.ndarray, "68 2"]) -> None:
    """Write one 'x y' line per landmark (only the first two coordinates of `points` are kept)."""
    np.savetxt(path, np.asarray(points)[:, :2], fmt=LMS_FORMAT)


def read_landmarks(path: Path) -> Float[np.ndarray, "68 2"]:
    """Read a 68-point `.lms` file ("x y" per line) as float32 [68, 2]."""
    try:
        lms = np.loadtxt(path, dtype=np.float32)
    except (OSError, ValueError) as err:
        raise DatasetError(f"{path}: cannot read landmarks ({err})") from err
    if lms.shape != (NUM_LANDMARKS, 2):
        raise DatasetError(f"{path}: expected 68 landmarks 'x y', got array of shape {lms.shape}")
    if not np.isfinite(lms).all():
        first = int(np.flatnonzero(~np.isfinite(lms).all(axis=1))[0])
        raise DatasetError(f"{path}: landmark {first} (line {first + 1}) holds NaN or inf")
    return lms


def landmark_rects(lms: Float[np.ndarray, "68 2"]) -> dict[str, np.ndarray]:
    """Face, lips and eyes rectangles [xmin, ymin, xmax, ymax] in pixels, as ER-NeRF derives them.

    Lips: a square around landmarks 48–59 (ER-NeRF pads the lips box to a square for its patch loss).
    """
    face = np.array([*lms.min(0), *lms.max(0)], dtype=np.float32)
    lips = lms[48:60]
    centre = (lips.min(0) + lips.max(0)) / 2
    half = (lips.max(0) - lips.min(0)).max() / 2
    lips_rect = np.array([*(centre - half), *(centre + half)], dtype=np.float32)
    eyes = lms[36:48]
    eyes_rect = np.array([*eyes.min(0), *eyes.max(0)], dtype=np.float32)
    return {"face": face, "lips": lips_rect, "eyes": eyes_rect}
