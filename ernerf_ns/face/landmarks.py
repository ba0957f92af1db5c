"""Face-mesh vertex indices of the landmark sets ER-NeRF and the trackers use (68-point layout, outline,
eyes), and the selection of the 68 points from a mesh."""

from __future__ import annotations

import numpy as np
from jaxtyping import Float

from ernerf_ns.face.mediapipe_models import NUM_MESH_POINTS

# The 68-point (iBUG / dlib) layout ER-NeRF reads, as face-mesh vertex indices. Points 0-16 run
# along the jaw from the image-left ear (at eye level) to the image-right ear; subject-right features (eyebrow,
# eye) come first because they appear on the image's left.
MESH_TO_68 = np.array(
    [
        # jaw 0-16 (8 = chin)
        234, 93, 132, 58, 172, 136, 150, 176, 152, 400, 379, 365, 397, 288, 361, 323, 454,
        # eyebrows 17-21 and 22-26, outer to inner then inner to outer
        70, 63, 105, 66, 107, 336, 296, 334, 293, 300,
        # nose bridge 27-30 (30 = tip) and nostril base 31-35
        168, 197, 5, 4, 98, 97, 2, 326, 327,
        # eyes 36-41 and 42-47: corner, upper lid, corner, lower lid
        33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
        # outer lips 48-59 from the image-left corner, upper then lower
        61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91,
        # inner lips 60-67
        78, 81, 13, 311, 308, 402, 14, 178,
    ],
    dtype=np.int64,
)  # fmt: skip

FACE_OVAL = np.array(
    [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
     152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109],
    dtype=np.int64,
)  # fmt: skip
"""The mesh's outline, clockwise in the image from the forehead (10) via the image-right side and the chin (152)."""
JAW = FACE_OVAL[8:29]
"""The lower outline from the image-right ear (454) via the chin (152) to the image-left ear (234)."""
FOREHEAD, CHIN = 10, 152
TRACKING_POINTS = np.union1d(np.arange(0, 468, 3), MESH_TO_68)
"""Mesh points the head tracker fits: every third vertex plus the 68 (neighbouring vertices add little)."""
RIGHT_EYE = np.array([33, 160, 158, 133, 153, 144])
"""Subject's right eye (image left), dlib order: corner, two upper-lid points, corner, two lower-lid points."""
LEFT_EYE = np.array([263, 387, 385, 362, 380, 373])
"""Subject's left eye (image right), same order as RIGHT_EYE (outer corner first)."""


def mesh_to_68(mesh: Float[np.ndarray, "*batch 478 dims"]) -> Float[np.ndarray, "*batch 68 dims"]:
    """Select the 68 iBUG points from face-mesh landmarks (any trailing coordinate dims)."""
    if mesh.shape[-2] != NUM_MESH_POINTS:
        raise ValueError(f"expected {NUM_MESH_POINTS} face-mesh points, got {mesh.shape[-2]}")
    return mesh[..., MESH_TO_68, :]
