"""`parsing/<i>.png`, ER-NeRF's parsing PNGs: head (face + hair) (255, 0, 0), neck (0, 255, 0), torso
(0, 0, 255), background white.

Those triples are in OpenCV's BGR channel order, exactly as ER-NeRF writes (cv2.imwrite) and reads
(cv2.imread) `parsing/<i>.png`: in an RGB image viewer the head shows blue and the torso red. Keeping
the bytes identical lets either tool train on folders made by the other.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from jaxtyping import UInt8

from ernerf_ns.layout.errors import DatasetError

BACKGROUND, HEAD, NECK, TORSO = 0, 1, 2, 3
"""Label values of the parsing maps before colouring."""
COLOURS = np.array([[255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255]], dtype=np.uint8)
"""Colour of each label in `parsing/<i>.png`, in OpenCV's BGR channel order (ER-NeRF's)."""


def colourise(labels: UInt8[np.ndarray, "H W"]) -> UInt8[np.ndarray, "H W 3"]:
    """Label map → ER-NeRF parsing colours, BGR channel order."""
    return COLOURS[labels]


def labels_from_colours(bgr: UInt8[np.ndarray, "H W 3"]) -> UInt8[np.ndarray, "H W"]:
    """ER-NeRF parsing colours (BGR order) → label map; anything but the three part colours is background."""
    # Which of B, G, R is lit, as 3 bits: 1 = head (B), 2 = neck (G), 4 = torso (R), 7 = white background.
    bits = (bgr[..., 0] > 127).astype(np.uint8) | ((bgr[..., 1] > 127) << 1) | ((bgr[..., 2] > 127) << 2)
    table = np.array([BACKGROUND, HEAD, NECK, BACKGROUND, TORSO, BACKGROUND, BACKGROUND, BACKGROUND], np.uint8)
    return table[bits]


def write_parsing(path: Path, labels: UInt8[np.ndarray, "H W"]) -> None:
    """Write a label map as ER-NeRF writes its parsing PNGs."""
    if not cv2.imwrite(str(path), colourise(labels)):
        raise DatasetError(f"{path}: cannot write parsing image")


def read_parsing(path: Path) -> UInt8[np.ndarray, "H W"]:
    """Read a parsing PNG (ours or ER-NeRF's) as a label map."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise DatasetError(f"{path}: parsing image is missing or unreadable")
    return labels_from_colours(bgr)
