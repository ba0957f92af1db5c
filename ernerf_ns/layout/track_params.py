"""`track_params.pt`: the head tracker's poses and focal length, in ER-NeRF's tracker units.

ER-NeRF's tracker stores `euler` (radians, R = Rx·Ry·Rz, head → camera), `trans` in units TRACKER_SCALE
times the transforms json's, and `focal` as a 1-element tensor; its save_transforms step turns them into the
json's poses. `ernerf-process` adds its 3D landmarks and reprojection errors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from ernerf_ns.layout.head_pose import euler_to_matrix
from ernerf_ns.layout.transforms import pose_to_transform

TRACKER_SCALE = 10.0
"""ER-NeRF's tracker works in units 10x the transforms json's: its save_transforms step divides `trans` by 10."""


def track_params(
    euler: Float[np.ndarray, "frames 3"], translations: Float[np.ndarray, "frames 3"], focal: float, **extra: Tensor
) -> dict[str, Tensor]:
    """The file's fields from head poses (head → camera: `euler` as `head_pose.matrix_to_euler` gives them,
    translations in json units) and the focal in pixels.

    Stored in float32, as ER-NeRF's tracker saves them; `extra` fields are stored as given.
    """
    return {
        "euler": torch.from_numpy(np.asarray(euler)).float(),
        "trans": torch.from_numpy(np.asarray(translations) * TRACKER_SCALE).float(),
        # A 1-element tensor, as ER-NeRF's tracker saves it (its save_transforms step reads focal[0]).
        "focal": torch.tensor([focal], dtype=torch.float32),
        **extra,
    }


def write_track_params(path: Path, params: dict[str, Tensor]) -> None:
    torch.save(params, path)


def read_track_params(path: Path) -> dict[str, Tensor]:
    """The saved fields (tensors only: nothing else in the file is run or unpickled)."""
    return torch.load(path, weights_only=True)


def track_params_to_transforms(params: dict[str, Tensor]) -> tuple[Float[np.ndarray, "frames 4 4"], float]:
    """The json's camera → head matrices and focal, as ER-NeRF's save_transforms derives them from the file."""
    rotations = euler_to_matrix(params["euler"].double().numpy())
    translations = params["trans"].double().numpy() / TRACKER_SCALE
    return pose_to_transform(rotations, translations), float(params["focal"][0])
