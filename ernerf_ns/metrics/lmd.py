"""Landmark distance (LMD), the lip-sync metric of talking-head papers: mean mouth-landmark error in pixels.

Landmarks come from the same mediapipe face mesh and 478 → 68 mapping that `ernerf-process` uses,
so a render is measured the way its training frames were labelled. The 20 mouth points are iBUG
48–67 (outer and inner lip contours). mediapipe is imported on first use only: it is an optional
dependency of the preprocessing, and training must not need it.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np
from jaxtyping import Float
from torch import Tensor

from ernerf_ns.face.landmarks import mesh_to_68
from ernerf_ns.face.mediapipe_models import FaceMesh, native_logs_silenced

MOUTH = slice(48, 68)
"""iBUG indices of the mouth: outer lip 48–59, inner lip 60–67."""
DETECT_MIN_SIZE = 256
"""Images whose shorter side is below this are upscaled before detection (see `mouth_landmarks`)."""

_face_mesh: FaceMesh | None = None
_face_mesh_lock = threading.Lock()


def _detector() -> FaceMesh:
    """One still-image face mesh per process: independent frames, so nothing is tracked between render and truth."""
    global _face_mesh
    if _face_mesh is None:
        _face_mesh = FaceMesh(video_mode=False, max_faces=1)
    return _face_mesh


def as_uint8_rgb(image: np.ndarray | Tensor) -> np.ndarray:
    """An H×W×3 RGB uint8 array from uint8, or from floats in [0, 1] (numpy or a torch render)."""
    if isinstance(image, Tensor):
        image = image.detach().cpu().numpy()
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB image H×W×3, got shape {image.shape}")
    if image.dtype == np.uint8:
        return np.ascontiguousarray(image)
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def mouth_landmarks(image: np.ndarray | Tensor) -> Float[np.ndarray, "20 2"] | None:
    """The 20 iBUG mouth points (x, y in the image's pixels), or None when no face is found.

    mediapipe misses faces in small images (a 64 px render of a 512 px portrait), so images with a
    shorter side below `DETECT_MIN_SIZE` are upscaled (bicubic) first and the points scaled back:
    mediapipe's coordinates are fractions of the image size, so they map back exactly per axis.
    """
    rgb = as_uint8_rgb(image)
    height, width = rgb.shape[:2]
    if min(height, width) < DETECT_MIN_SIZE:
        factor = DETECT_MIN_SIZE / min(height, width)
        rgb = cv2.resize(rgb, (round(width * factor), round(height * factor)), interpolation=cv2.INTER_CUBIC)
    # mediapipe's C++ side prints delegate notices to fd 2 on its first runs; they would land in the
    # middle of nerfstudio's progress display (fd 2 is redirected only while the mesh runs).
    with _face_mesh_lock, native_logs_silenced():
        faces = _detector()(rgb)
    if not faces:
        return None
    points = mesh_to_68(faces[0])[MOUTH, :2]
    return points * np.array([width / rgb.shape[1], height / rgb.shape[0]])


def landmark_distance(a: Float[np.ndarray, "points 2"], b: Float[np.ndarray, "points 2"]) -> float:
    """Mean Euclidean distance between corresponding points."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"expected two point sets [N, D] of one shape, got {a.shape} and {b.shape}")
    return float(np.linalg.norm(a - b, axis=-1).mean())


def lmd(render: np.ndarray | Tensor, truth: np.ndarray | Tensor) -> float | None:
    """LMD in pixels between a render and its ground-truth frame; None if either has no detectable face.

    Raw pixel distance, no alignment: head pose comes from the camera, so an offset mouth is an error.
    Compare values only between images of the same size.
    """
    if tuple(render.shape) != tuple(truth.shape):
        raise ValueError(f"render and truth differ in shape: {tuple(render.shape)} vs {tuple(truth.shape)}")
    render_points = mouth_landmarks(render)
    if render_points is None:
        return None
    truth_points = mouth_landmarks(truth)
    if truth_points is None:
        return None
    return landmark_distance(render_points, truth_points)
