"""`transforms_train.json` / `transforms_val.json`: intrinsics, per-frame camera poses and ER-NeRF's split.

The writer takes head poses as the tracker fits them (head → camera) and stores each frame's camera → head
`transform_matrix`; the reader checks every key and value ER-NeRF relies on and raises DatasetError naming
the file and the frame at fault.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from jaxtyping import Float

from ernerf_ns.layout.errors import DatasetError
from ernerf_ns.layout.folder import PortraitFolder

ROTATION_TOLERANCE = 1e-2
"""How far a transform_matrix's rotation part may be from orthonormal (|det - 1| and max |R^T R - I|).

ER-NeRF's tracker writes exact rotations (euler angles to a matrix); a json edited by hand or a broken tracker
is what this catches, not float rounding.
"""


def split_index(num_frames: int) -> int:
    """ER-NeRF's split: the first int(N * 10 / 11) frames train, the rest validate."""
    return int(num_frames * 10 / 11)


def pose_to_transform(
    rotations: Float[np.ndarray, "frames 3 3"], translations: Float[np.ndarray, "frames 3"]
) -> Float[np.ndarray, "frames 4 4"]:
    """Head poses (camera = R·head + t) to camera → head matrices [R^T, -R^T t], ER-NeRF's save_transforms.

    Computed in the inputs' precision: ER-NeRF runs it in float32, and a float32 pose gives its json values.
    """
    dtype = np.result_type(rotations, translations)
    rot_inv = np.transpose(np.asarray(rotations, dtype=dtype), (0, 2, 1))
    c2w = np.tile(np.eye(4, dtype=dtype), (len(rot_inv), 1, 1))
    c2w[:, :3, :3] = rot_inv
    c2w[:, :3, 3] = -(rot_inv @ np.asarray(translations, dtype=dtype)[:, :, None])[:, :, 0]
    return c2w


def write_transforms(
    folder: PortraitFolder,
    camera_to_head: Float[np.ndarray, "frames 4 4"],
    focal: float,
    image_size: tuple[int, int],
) -> tuple[int, int]:
    """Write both json files (focal_len, cx, cy and per-frame img_id / aud_id / transform_matrix).

    The principal point is the image centre (width, height) / 2, as ER-NeRF assumes. Returns the number of
    train and val frames.
    """
    width, height = image_size
    num = len(camera_to_head)
    matrices = np.asarray(camera_to_head, dtype=np.float64)
    split = split_index(num)
    for name, ids in (("train", range(0, split)), ("val", range(split, num))):
        content = {
            "focal_len": float(focal),
            "cx": width / 2.0,
            "cy": height / 2.0,
            "frames": [{"img_id": i, "aud_id": i, "transform_matrix": matrices[i].tolist()} for i in ids],
        }
        folder.transforms(name).write_text(json.dumps(content, indent=2))
    return split, num - split


def read_transforms(path: Path) -> dict[str, Any]:
    """Read transforms_{train,val}.json and check the keys and values ER-NeRF relies on.

    Intrinsics must be positive numbers; every frame needs integer `img_id` (and `aud_id`, if given) and a
    finite 4x4 `transform_matrix` whose rotation part is a rotation within ROTATION_TOLERANCE.
    """
    if not path.is_file():
        raise DatasetError(f"{path}: transforms file not found (is this an ER-NeRF dataset folder?)")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DatasetError(f"{path}: corrupt json ({err.msg} at line {err.lineno})") from err
    except UnicodeDecodeError as err:
        raise DatasetError(f"{path}: not a text file ({err.reason})") from err
    if not isinstance(meta, dict):
        raise DatasetError(f"{path}: expected a json object with focal_len, cx, cy and frames")
    for key in ("focal_len", "cx", "cy", "frames"):
        if key not in meta:
            raise DatasetError(f"{path}: missing key '{key}'")
    for key in ("focal_len", "cx", "cy"):
        value = meta[key]
        if not _is_number(value) or not math.isfinite(value) or value <= 0:
            raise DatasetError(f"{path}: '{key}' is {value!r}; expected a positive number of pixels")
    if not isinstance(meta["frames"], list) or not meta["frames"]:
        raise DatasetError(f"{path}: 'frames' is empty or not a list")
    matrices = []
    for i, frame in enumerate(meta["frames"]):
        if not isinstance(frame, dict) or "img_id" not in frame or "transform_matrix" not in frame:
            raise DatasetError(f"{path}: frame {i} lacks 'img_id' or 'transform_matrix'")
        for key in ("img_id", "aud_id"):
            value = frame.get(key, 0)
            if not _is_number(value) or not math.isfinite(value) or value != int(value) or value < 0:
                raise DatasetError(f"{path}: frame {i} has {key} {value!r}; expected a frame number (integer >= 0)")
        try:
            matrix = np.asarray(frame["transform_matrix"], dtype=np.float64)
        except (TypeError, ValueError):
            matrix = None
        if matrix is None or matrix.shape != (4, 4):
            raise DatasetError(f"{path}: frame {i} (img_id {frame['img_id']}) transform_matrix is not 4x4 numbers")
        matrices.append(matrix)
    _check_poses(path, np.stack(matrices), [frame["img_id"] for frame in meta["frames"]])
    return meta


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_poses(path: Path, c2w: np.ndarray, img_ids: list) -> None:
    """All matrices at once: a per-frame loop over 2000 frames of numpy calls would cost more than the json."""

    def fail(bad: np.ndarray, problem: str) -> None:
        first = int(np.flatnonzero(bad)[0])
        count = f"; {int(bad.sum())} of {len(bad)} frames" if bad.sum() > 1 else ""
        raise DatasetError(f"{path}: frame {first} (img_id {img_ids[first]}) transform_matrix {problem}{count}")

    finite = np.isfinite(c2w).all(axis=(1, 2))
    if not finite.all():
        fail(~finite, "holds NaN or inf")
    rotation = c2w[:, :3, :3]
    det = np.linalg.det(rotation)
    singular = np.abs(det) < ROTATION_TOLERANCE
    if singular.any():
        fail(singular, "is singular (its rotation part has determinant 0)")
    off_identity = np.abs(rotation.transpose(0, 2, 1) @ rotation - np.eye(3)).max(axis=(1, 2))
    not_rotation = (np.abs(det - 1) > ROTATION_TOLERANCE) | (off_identity > ROTATION_TOLERANCE)
    if not_rotation.any():
        first = int(np.flatnonzero(not_rotation)[0])
        fail(not_rotation, f"is not a rotation (det {det[first]:.3g}, R^T R off identity by {off_identity[first]:.3g})")
