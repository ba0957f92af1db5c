"""Semantic parsing in ER-NeRF's colour code: head (face + hair) (255, 0, 0), neck (0, 255, 0), torso (0, 0, 255),
background white.

Those triples are in OpenCV's BGR channel order, exactly as ER-NeRF writes (cv2.imwrite) and reads
(cv2.imread) `parsing/<i>.png`: in an RGB image viewer the head shows blue and the torso red. Keeping
the bytes identical lets either tool train on folders made by the other.

Without a face-parsing network the labels come from mediapipe's person segmentation, the face-mesh
outline and a few rules: the head is the person above the jaw line (and beside it up to the ears),
the neck is skin-coloured person below the chin, the torso is the rest of the person. With
`--parsing-checkpoint` a BiSeNet face-parsing model decides instead (see `bisenet.py`).
"""

from __future__ import annotations

import cv2
import numpy as np
from jaxtyping import Float, UInt8

from ernerf_ns.face.landmarks import CHIN, FACE_OVAL, FOREHEAD, JAW
from ernerf_ns.layout.parsing import BACKGROUND, HEAD, NECK, TORSO

HAIR_MARGIN = 0.45
"""How far beside the face (in face widths) hair and ears may still count as head."""
NECK_LENGTH = 0.75
"""How far below the chin (in face heights) the neck may reach before clothes are assumed."""
NECK_WIDTH = 0.8
"""Widest neck (in face widths)."""
SKIN_DISTANCE = 3.0
"""Colour distance (Mahalanobis, in the face's own Cr/Cb spread) still counted as skin."""


def _polygon_mask(shape: tuple[int, int], points: np.ndarray) -> np.ndarray:
    mask = np.zeros(shape, dtype=np.uint8)
    cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
    return mask.astype(bool)


def _skin_mask(rgb: np.ndarray, face: np.ndarray) -> np.ndarray:
    """Pixels whose chroma is close to the face's (so the neck is told from a collar or a shirt)."""
    chroma = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)[..., 1:].astype(np.float32)
    inner = cv2.erode(face.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    samples = chroma[inner if inner.sum() > 20 else face].astype(np.float64)
    if len(samples) < 10:
        return np.zeros(face.shape, dtype=bool)
    centre = np.median(samples, axis=0)
    # Median-based spread: eyes, brows and lips inside the outline would inflate a plain covariance.
    dist = np.linalg.norm(samples - centre, axis=1)
    cov = np.cov(samples[dist <= np.percentile(dist, 80)].T) + np.eye(2) * 4.0
    (a, b), (_, c) = np.linalg.inv(cov)
    x, y = chroma[..., 0] - np.float32(centre[0]), chroma[..., 1] - np.float32(centre[1])
    return a * x * x + 2 * b * x * y + c * y * y < SKIN_DISTANCE**2


def _largest_component_touching(mask: np.ndarray, seed: np.ndarray) -> np.ndarray:
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    touching = np.unique(labels[seed & mask])
    touching = touching[touching > 0]
    if touching.size == 0:
        return np.zeros_like(mask)
    sizes = [(labels == k).sum() for k in touching]
    return labels == touching[int(np.argmax(sizes))]


def parse_frame(
    rgb: UInt8[np.ndarray, "H W 3"], person: Float[np.ndarray, "H W"], mesh: Float[np.ndarray, "478 3"]
) -> UInt8[np.ndarray, "H W"]:
    """Label map (BACKGROUND/HEAD/NECK/TORSO) of one frame from its person probability and face mesh."""
    height, width = person.shape
    points = mesh[:, :2]
    face = _polygon_mask((height, width), points[FACE_OVAL])
    is_person = (person > 0.5) | face
    face_h = float(np.linalg.norm(points[FOREHEAD] - points[CHIN]))
    jaw = points[JAW]  # image-right ear → chin → image-left ear
    face_w = float(np.linalg.norm(jaw[0] - jaw[-1]))
    margin, drop, top = HAIR_MARGIN * face_w, 0.1 * face_h, -10.0 * height

    # Head zone: above the jaw, and beside it above ear level, up to a hair margin on each side.
    right, left = jaw[0], jaw[-1]
    side = np.sign(right[0] - left[0]) or 1.0
    zone = np.concatenate(
        [jaw, [[left[0] - side * margin, left[1] + drop], [left[0] - side * margin, top],
               [right[0] + side * margin, top], [right[0] + side * margin, right[1] + drop]]]
    )  # fmt: skip
    chin = points[CHIN]
    skin = _skin_mask(rgb, face)
    # Beside the jaw, down to halfway from the ears to the chin, what is not skin is hair (lower
    # down it is more often a collar).
    beside = np.zeros((height, width), dtype=bool)
    x0, x1 = sorted((left[0] - side * margin, right[0] + side * margin))
    low = 0.5 * (0.5 * (left[1] + right[1]) + chin[1])
    beside[: max(int(round(low)), 0), max(int(x0), 0) : max(int(np.ceil(x1)), 0)] = True
    head = (is_person & (_polygon_mask((height, width), zone) | (beside & ~skin))) | face
    head = _largest_component_touching(head, face) | face

    # Neck zone: a band hanging from the lower jaw, limited in width and length.
    down = chin - points[FOREHEAD]
    down /= np.linalg.norm(down) + 1e-9
    across = np.array([-down[1], down[0]])
    half = 0.5 * NECK_WIDTH * face_w
    bottom = chin + down * NECK_LENGTH * face_h
    band = np.array([chin - across * half - down * face_h, bottom - across * half, bottom + across * half,
                     chin + across * half - down * face_h])  # fmt: skip
    neck = is_person & ~head & _polygon_mask((height, width), band) & skin
    # Only skin connected to the head counts: skin-coloured patches lower on the clothes do not.
    jaw_ring = cv2.dilate(head.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool) & ~head
    neck = _largest_component_touching(neck, jaw_ring)
    neck = cv2.morphologyEx(neck.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8)).astype(bool)
    neck &= is_person & ~head

    labels = np.full((height, width), BACKGROUND, dtype=np.uint8)
    labels[is_person] = TORSO
    labels[neck] = NECK
    labels[head] = HEAD
    return labels
