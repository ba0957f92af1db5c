"""Head rotations as ER-NeRF's tracker stores them in track_params.pt (`euler`, R = Rx·Ry·Rz)."""

from __future__ import annotations

import numpy as np
from jaxtyping import Float


def matrix_to_euler(rotations: Float[np.ndarray, "frames 3 3"]) -> Float[np.ndarray, "frames 3"]:
    """Angles (x, y, z) in radians with R = Rx·Ry·Rz: the `euler` of ER-NeRF's track_params.pt."""
    ry = np.arcsin(np.clip(rotations[:, 0, 2], -1.0, 1.0))
    rx = np.arctan2(-rotations[:, 1, 2], rotations[:, 2, 2])
    rz = np.arctan2(-rotations[:, 0, 1], rotations[:, 0, 0])
    return np.stack([rx, ry, rz], -1)


def euler_to_matrix(euler: Float[np.ndarray, "frames 3"]) -> Float[np.ndarray, "frames 3 3"]:
    """Inverse of `matrix_to_euler` (ER-NeRF's euler2rot)."""
    rx, ry, rz = (euler[:, i] for i in range(3))
    one, zero = np.ones_like(rx), np.zeros_like(rx)
    mx = np.stack([one, zero, zero, zero, np.cos(rx), -np.sin(rx), zero, np.sin(rx), np.cos(rx)], -1)
    my = np.stack([np.cos(ry), zero, np.sin(ry), zero, one, zero, -np.sin(ry), zero, np.cos(ry)], -1)
    mz = np.stack([np.cos(rz), -np.sin(rz), zero, np.sin(rz), np.cos(rz), zero, zero, zero, one], -1)
    return mx.reshape(-1, 3, 3) @ my.reshape(-1, 3, 3) @ mz.reshape(-1, 3, 3)
