"""Small readers for the files of an ER-NeRF folder: transforms json, landmarks, blink csv, image headers.

Each raises DatasetError naming the file (and the frame where one is at fault), so a user sees which of their
files to fix before any training step runs. They run on every ns-train/ns-eval/ns-viewer start, so each reads
no more of a file than its check needs (image headers and tails, not pixels).
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ernerf_ns.data.errors import DatasetError

ROTATION_TOLERANCE = 1e-2
"""How far a transform_matrix's rotation part may be from orthonormal (|det - 1| and max |R^T R - I|).

ER-NeRF's tracker writes exact rotations (euler angles to a matrix); a json edited by hand or a broken tracker
is what this catches, not float rounding.
"""

_END_MARKERS = {"JPEG": b"\xff\xd9", "PNG": b"IEND\xaeB`\x82"}
"""The bytes a complete file of each format ends with: JPEG's end-of-image marker, PNG's IEND chunk and its CRC."""
_TAIL_BYTES = 32
"""How much of a file's end is searched for its end marker (a few writers pad after JPEG's FF D9)."""


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


def read_landmarks(path: Path) -> np.ndarray:
    """Read a 68-point `.lms` file ("x y" per line) as float32 [68, 2]."""
    try:
        lms = np.loadtxt(path, dtype=np.float32)
    except (OSError, ValueError) as err:
        raise DatasetError(f"{path}: cannot read landmarks ({err})") from err
    if lms.shape != (68, 2):
        raise DatasetError(f"{path}: expected 68 landmarks 'x y', got array of shape {lms.shape}")
    if not np.isfinite(lms).all():
        first = int(np.flatnonzero(~np.isfinite(lms).all(axis=1))[0])
        raise DatasetError(f"{path}: landmark {first} (line {first + 1}) holds NaN or inf")
    return lms


def read_blink(path: Path) -> np.ndarray:
    """Read OpenFace's ' AU45_r' column (blink intensity 0..5, ER-NeRF clips it to 0..2); row k is frame k."""
    with path.open(newline="") as file:
        reader = csv.reader(file)
        values = []
        try:
            try:
                header = [name.strip() for name in next(reader)]
            except StopIteration as err:
                raise DatasetError(f"{path}: empty csv") from err
            if "AU45_r" not in header:
                raise DatasetError(f"{path}: no ' AU45_r' column (OpenFace action-unit csv expected)")
            column = header.index("AU45_r")
            for row in reader:
                if not row:
                    continue
                frame, line = len(values), reader.line_num
                text = row[column].strip() if column < len(row) else ""
                try:
                    value = float(text)
                except ValueError:
                    value = math.nan
                if not math.isfinite(value):
                    raise DatasetError(
                        f"{path}: AU45_r of frame {frame} (line {line}) is {text!r}; expected a finite number"
                    )
                values.append(value)
        except (csv.Error, UnicodeDecodeError) as err:
            raise DatasetError(f"{path}: not a csv file ({err})") from err
    return np.array(values, dtype=np.float32)


def eye_openness(au45: np.ndarray, smooth_window: int = 3) -> np.ndarray:
    """ER-NeRF's eye conditioning: clip(AU45_r, 0, 2) / 2, averaged over a small centred window."""
    eye = np.clip(au45, 0.0, 2.0) / 2.0
    if smooth_window > 1 and len(eye) > 1:
        # ER-NeRF's --smooth_eye: the window is cut short at the clip ends, not padded.
        half = smooth_window // 2
        sums = np.concatenate([[0.0], np.cumsum(eye, dtype=np.float64)])
        index = np.arange(len(eye))
        lo, hi = np.maximum(index - half, 0), np.minimum(index + smooth_window - half, len(eye))
        eye = (sums[hi] - sums[lo]) / (hi - lo)
    return eye.astype(np.float32)


def landmark_rects(lms: np.ndarray) -> dict[str, np.ndarray]:
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


def read_image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image file, read from its header; a missing, empty, non-image or truncated file raises.

    Pixels are not decoded: a file cut short is caught by its missing end marker (JPEG's FF D9, PNG's IEND),
    so checking thousands of frames costs milliseconds, not a decode each.
    """
    try:
        with path.open("rb") as file:
            length = file.seek(0, os.SEEK_END)
            if length == 0:
                raise DatasetError(f"{path}: empty file (0 bytes), not an image")
            file.seek(0)
            try:
                with Image.open(file) as image:
                    size, kind = image.size, image.format
            except Exception as err:  # PIL raises OSError, SyntaxError, struct.error, ... for a broken header
                raise DatasetError(f"{path}: not an image PIL can read ({type(err).__name__})") from err
            file.seek(max(length - _TAIL_BYTES, 0))
            tail = file.read()
    except FileNotFoundError as err:
        raise DatasetError(f"{path}: image not found") from err
    except IsADirectoryError as err:
        raise DatasetError(f"{path}: is a folder, not an image") from err
    marker = _END_MARKERS.get(kind or "")
    if marker is not None and marker not in tail:
        raise DatasetError(f"{path}: truncated {kind} file (no end marker; {length} bytes)")
    return size
