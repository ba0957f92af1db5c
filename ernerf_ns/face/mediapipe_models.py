"""The three mediapipe 0.10.21 models we use, which ship inside its wheel (no download at run time).

Imported lazily so the rest of the package (and training) works without mediapipe installed.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from types import ModuleType

import numpy as np

from ernerf_ns.errors import UserError

NUM_MESH_POINTS = 478
"""Face-mesh landmarks with refine_landmarks=True (468 mesh points + 10 iris points)."""


class FaceModelError(UserError):
    """mediapipe is missing or unusable, or a model file cannot be loaded; the message says what to do."""


@contextlib.contextmanager
def native_logs_silenced() -> Iterator[None]:
    """Send the process's stderr (fd 2) to /dev/null while mediapipe runs.

    mediapipe's C++ threads log TFLite-delegate and graph notices straight to fd 2; they mean nothing
    to a user and break the progress display. Our own console writes to a copy of fd 2 (`stderr_copy`).
    """
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def stderr_copy():
    """A text stream on a duplicate of fd 2, which keeps working while `native_logs_silenced` is on."""
    return os.fdopen(os.dup(2), "w", buffering=1)


def import_mediapipe() -> ModuleType:
    """mediapipe, or an error that says how to install it next to nerfstudio."""
    try:
        import mediapipe as mp
    except ImportError as err:
        raise FaceModelError(
            "mediapipe is not installed: run ./setup.sh in the ernerf-ns checkout (it installs mediapipe==0.10.21 "
            "without its declared dependencies, see .ci/install-process-deps.sh)"
        ) from err
    from google.protobuf import __version__ as protobuf_version

    # Under protobuf 3.x mediapipe imports but its graphs fail with an obscure RuntimeError.
    if tuple(int(p) for p in protobuf_version.split(".")[:2]) < (4, 25):
        raise FaceModelError(
            f"mediapipe needs protobuf>=4.25.3 but {protobuf_version} is installed (any pip install of this project "
            "or of nerfstudio puts back nerfstudio's protobuf<=3.20.3 pin): run ./setup.sh in the ernerf-ns "
            "checkout again"
        )
    return mp


class FaceMesh:
    """mediapipe face mesh in video mode (tracks between frames, re-detects when the face is lost).

    Two faces are looked for so that a second person in view is reported instead of silently tracked.
    """

    def __init__(self, video_mode: bool = True, max_faces: int = 2):
        mp = import_mediapipe()
        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=not video_mode,
            max_num_faces=max_faces,
            refine_landmarks=True,
            min_detection_confidence=0.5,
            min_tracking_confidence=0.5,
        )

    def __enter__(self) -> FaceMesh:
        return self

    def __exit__(self, *exc) -> None:
        self._mesh.close()

    def __call__(self, rgb: np.ndarray) -> list[np.ndarray]:
        """Faces in an RGB frame, each [478, 3]: x, y in pixels and z in pixels of the same scale as x.

        mediapipe's z is relative depth (smaller = closer to the camera) in units of the image width.
        """
        height, width = rgb.shape[:2]
        result = self._mesh.process(np.ascontiguousarray(rgb))
        faces = []
        for face in result.multi_face_landmarks or []:
            points = np.array([(p.x, p.y, p.z) for p in face.landmark], dtype=np.float64)
            points *= np.array([width, height, width])
            faces.append(points)
        return faces


class FaceDetector:
    """mediapipe's full-range face detector (faces up to ~5 m away: small speakers in wide frames)."""

    def __init__(self, min_confidence: float = 0.5):
        mp = import_mediapipe()
        self._detector = mp.solutions.face_detection.FaceDetection(
            model_selection=1, min_detection_confidence=min_confidence
        )

    def __enter__(self) -> FaceDetector:
        return self

    def __exit__(self, *exc) -> None:
        self._detector.close()

    def __call__(self, rgb: np.ndarray) -> list[tuple[float, float, float, float]]:
        """Face boxes (x, y, w, h) in pixels."""
        height, width = rgb.shape[:2]
        result = self._detector.process(np.ascontiguousarray(rgb))
        boxes = []
        for det in result.detections or []:
            box = det.location_data.relative_bounding_box
            boxes.append((box.xmin * width, box.ymin * height, box.width * width, box.height * height))
        return boxes


class PersonSegmenter:
    """mediapipe selfie segmentation (general model): per-pixel probability of a person."""

    def __init__(self):
        mp = import_mediapipe()
        self._segmenter = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)

    def __enter__(self) -> PersonSegmenter:
        return self

    def __exit__(self, *exc) -> None:
        self._segmenter.close()

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """Person probability [H, W] float32 in [0, 1]."""
        result = self._segmenter.process(np.ascontiguousarray(rgb))
        return np.asarray(result.segmentation_mask, dtype=np.float32)
