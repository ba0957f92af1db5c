"""`gt_imgs` (the frame over the clean background) and `torso_imgs` (RGBA neck + torso, head removed).

ER-NeRF trains the torso as a 2D layer under the head, so the torso image must not have a hole where
the chin hid the neck: the top neck and torso colours are stretched upwards under the head.
"""

from __future__ import annotations

import cv2
import numpy as np
from jaxtyping import UInt8

from ernerf_ns.layout.parsing import BACKGROUND, HEAD, NECK, TORSO

NECK_FILL = 0.1
"""How far (fraction of the image height) the neck is continued up under the head."""
TORSO_FILL = 0.018
"""How far the torso is continued up where it meets the head directly (e.g. hair on the shoulders)."""
DARKEN = 0.98
"""Per-pixel darkening of the continued colours: the skin under the chin is in shadow."""


def ground_truth(rgb: UInt8[np.ndarray, "H W 3"], labels: np.ndarray, background: np.ndarray) -> np.ndarray:
    """The frame with its background pixels replaced by the static background (what the model must render)."""
    return np.where((labels == BACKGROUND)[..., None], background, rgb)


def _extend_up(image: np.ndarray, part: np.ndarray, head: np.ndarray, length: int, push_down: int = 0) -> np.ndarray:
    """Continue each column's top pixel of `part` upwards through the head (only where the head sits on it).

    The colour is taken up to `push_down` pixels lower, away from the soft border. Returns the written mask.
    """
    height, width = part.shape
    written = np.zeros_like(part)
    if length <= 0 or not part.any():
        return written
    top = np.argmax(part, axis=0)
    cols = np.flatnonzero(part.any(0) & (top > 0) & head[np.maximum(top - 1, 0), np.arange(width)])
    if cols.size == 0:
        return written
    source = top[cols].copy()
    for _ in range(push_down):
        below = np.minimum(source + 1, height - 1)
        source = np.where(part[below, cols], below, source)
    offsets = np.arange(length + 1)
    rows = source[None, :] - offsets[:, None]  # [L + 1, m]
    valid = rows >= 0
    colours = image[source, cols].astype(np.float32)[None] * (DARKEN ** offsets.astype(np.float32))[:, None, None]
    grid_cols = np.broadcast_to(cols, rows.shape)
    image[rows[valid], grid_cols[valid]] = np.clip(colours[valid], 0, 255).astype(np.uint8)
    written[rows[valid], grid_cols[valid]] = True
    return written


def torso_layer(gt: UInt8[np.ndarray, "H W 3"], labels: np.ndarray) -> UInt8[np.ndarray, "H W 4"]:
    """RGBA neck + torso layer, head removed and the neck continued under it; transparent elsewhere."""
    height = labels.shape[0]
    head, torso = labels == HEAD, labels == TORSO
    # A slightly taller neck (as ER-NeRF dilates it vertically) so its top row is inside the skin.
    neck = cv2.dilate((labels == NECK).astype(np.uint8), np.ones((7, 1), np.uint8)).astype(bool) & ~torso
    image = gt.copy()
    filled_torso = _extend_up(image, torso, head, int(round(TORSO_FILL * height)))
    filled_neck = _extend_up(image, neck, head, int(round(NECK_FILL * height)), push_down=4)
    if filled_neck.any():
        blurred = cv2.GaussianBlur(image, (5, 5), 0)
        image[filled_neck] = blurred[filled_neck]
    mask = neck | torso | filled_neck | filled_torso
    image[~mask] = 0
    return np.concatenate([image, (mask * 255).astype(np.uint8)[..., None]], axis=-1)
