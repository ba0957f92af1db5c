"""Eye blinks as OpenFace's AU45 intensity (`au.csv`, see `ernerf_ns.layout.blink`), from the face mesh's eyes.

ER-NeRF reads only the ' AU45_r' column and uses clip(AU45_r, 0, 2) / 2 as the eye-closure input.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Float

from ernerf_ns.face.landmarks import LEFT_EYE, RIGHT_EYE
from ernerf_ns.layout.blink import AU45_CLOSED

CLOSED_RATIO = 0.3
"""Eye aspect ratio of a fully closed eye, relative to the same eye open (mesh lids never quite meet)."""
FULL_BLINK_AU = AU45_CLOSED
"""AU45 intensity given to a full blink: the top of the range ER-NeRF uses."""


def eye_aspect_ratio(mesh: Float[np.ndarray, "frames 478 3"]) -> Float[np.ndarray, " frames"]:
    """Mean of both eyes' (|p2 - p6| + |p3 - p5|) / (2 |p1 - p4|) (Soukupová and Čech), 2D."""
    ratios = []
    for eye in (RIGHT_EYE, LEFT_EYE):
        p = mesh[:, eye, :2]
        vertical = np.linalg.norm(p[:, 1] - p[:, 5], axis=-1) + np.linalg.norm(p[:, 2] - p[:, 4], axis=-1)
        ratios.append(vertical / (2 * np.linalg.norm(p[:, 0] - p[:, 3], axis=-1) + 1e-9))
    return np.mean(ratios, axis=0)


def blink_intensity(ear: Float[np.ndarray, " frames"]) -> Float[np.ndarray, " frames"]:
    """AU45-like intensity: 0 with the eyes as open as usual, FULL_BLINK_AU when closed.

    'As open as usual' is the 90th percentile of the clip, since eyes are open most of the time.
    """
    open_ear = float(np.percentile(ear, 90))
    if open_ear <= 0:
        return np.zeros_like(ear)
    closure = (open_ear - ear) / (open_ear * (1 - CLOSED_RATIO))
    return np.clip(closure, 0.0, 1.25) * FULL_BLINK_AU
