"""Small readers for the files of an ER-NeRF folder: transforms json, landmarks, blink csv.

Each raises DatasetError naming the file, so a user sees which of their files to fix.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from ernerf_ns.data.errors import DatasetError


def read_transforms(path: Path) -> dict[str, Any]:
    """Read transforms_{train,val}.json and check the keys ER-NeRF relies on."""
    if not path.is_file():
        raise DatasetError(f"{path}: transforms file not found (is this an ER-NeRF dataset folder?)")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DatasetError(f"{path}: corrupt json ({err.msg} at line {err.lineno})") from err
    for key in ("focal_len", "cx", "cy", "frames"):
        if key not in meta:
            raise DatasetError(f"{path}: missing key '{key}'")
    if not meta["frames"]:
        raise DatasetError(f"{path}: 'frames' is empty")
    for i, frame in enumerate(meta["frames"]):
        if "img_id" not in frame or "transform_matrix" not in frame:
            raise DatasetError(f"{path}: frame {i} lacks 'img_id' or 'transform_matrix'")
        if np.asarray(frame["transform_matrix"]).shape != (4, 4):
            raise DatasetError(f"{path}: frame {i} transform_matrix is not 4x4")
    return meta


def read_landmarks(path: Path) -> np.ndarray:
    """Read a 68-point `.lms` file ("x y" per line) as float32 [68, 2]."""
    try:
        lms = np.loadtxt(path, dtype=np.float32)
    except (OSError, ValueError) as err:
        raise DatasetError(f"{path}: cannot read landmarks ({err})") from err
    if lms.shape != (68, 2):
        raise DatasetError(f"{path}: expected 68 landmarks 'x y', got array of shape {lms.shape}")
    return lms


def read_blink(path: Path) -> np.ndarray:
    """Read OpenFace's ' AU45_r' column (blink intensity 0..5, ER-NeRF clips it to 0..2)."""
    with path.open(newline="") as file:
        reader = csv.reader(file)
        try:
            header = [name.strip() for name in next(reader)]
        except StopIteration as err:
            raise DatasetError(f"{path}: empty csv") from err
        if "AU45_r" not in header:
            raise DatasetError(f"{path}: no ' AU45_r' column (OpenFace action-unit csv expected)")
        column = header.index("AU45_r")
        try:
            return np.array([float(row[column]) for row in reader if row], dtype=np.float32)
        except (ValueError, IndexError) as err:
            raise DatasetError(f"{path}: malformed AU45_r value ({err})") from err


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
