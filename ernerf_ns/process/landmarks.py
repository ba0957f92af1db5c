"""Face landmarks: mediapipe's 478-point mesh per frame and ER-NeRF's 68 points from it (the `.lms` files are
`ernerf_ns.layout.landmarks`')."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from jaxtyping import Float

from ernerf_ns.face.mediapipe_models import NUM_MESH_POINTS, FaceMesh
from ernerf_ns.layout.folder import PortraitFolder
from ernerf_ns.process.errors import ProcessError
from ernerf_ns.process.video import read_frame


def frame_ranges(indices: Iterable[int]) -> str:
    """'3-7, 12' for [3, 4, 5, 6, 7, 12]: how frame lists appear in error messages."""
    out: list[str] = []
    items = sorted(indices)
    start = prev = None
    for i in items + [None]:
        if start is not None and (i is None or i != prev + 1):
            out.append(f"{start}" if start == prev else f"{start}-{prev}")
            start = None
        if i is not None and start is None:
            start = i
        prev = i
    return ", ".join(out)


def fill_gaps(mesh: Float[np.ndarray, "frames 478 3"], found: np.ndarray, max_gap: int, folder: Path) -> np.ndarray:
    """Interpolate landmarks over runs of at most `max_gap` frames without a face; raise naming longer runs."""
    missing = np.flatnonzero(~found)
    if missing.size == 0:
        return mesh
    mesh = mesh.copy()
    if not found.any():
        raise ProcessError(f"{folder}: no face found in any of the {len(found)} frames")
    runs: list[list[int]] = []
    for i in missing:
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(int(i))
        else:
            runs.append([int(i)])
    long = [i for run in runs if len(run) > max_gap for i in run]
    if long:
        raise ProcessError(
            f"{folder}: no face found in frames {frame_ranges(long)} (of {len(found)}); "
            "cut those frames out or use --crop to frame the speaker"
        )
    index = np.arange(len(found))
    flat = mesh.reshape(len(found), -1)
    for col in range(flat.shape[1]):
        flat[~found, col] = np.interp(index[~found], index[found], flat[found, col])
    return flat.reshape(mesh.shape)


def detect_landmarks(
    folder: PortraitFolder, num_frames: int, max_gap: int = 2, progress: Callable[[Iterable[int]], Iterable[int]] = iter
) -> tuple[Float[np.ndarray, "frames 478 3"], np.ndarray]:
    """Run the face mesh over the folder's frames; raise on a second face or on a long run without a face.

    Returns the landmarks and the indices of frames whose landmarks were interpolated.
    """
    mesh = np.zeros((num_frames, NUM_MESH_POINTS, 3))
    found = np.zeros(num_frames, dtype=bool)
    with FaceMesh(video_mode=True, max_faces=2) as face_mesh:
        for i in progress(range(num_frames)):
            faces = face_mesh(read_frame(folder, i))
            if len(faces) > 1:
                raise ProcessError(f"{folder.frame(i)}: two faces in frame {i}; use --crop x,y,w,h to keep one speaker")
            if faces:
                mesh[i], found[i] = faces[0], True
    return fill_gaps(mesh, found, max_gap, folder.frames_dir), np.flatnonzero(~found)
