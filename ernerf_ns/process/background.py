"""The static background `bc.jpg`: for each pixel, the frame where it lies farthest from the speaker."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import cv2
import numpy as np
from jaxtyping import Bool, UInt8
from scipy import ndimage

MIN_DISTANCE = 5.0
"""Pixels closer than this (pixels) to the speaker in every frame count as never seen: soft edges
and shadows there would stain the background, so they are filled from their nearest seen neighbour."""


class BackgroundAccumulator:
    """Keep, per pixel, the colour from the frame in which it is farthest from any foreground pixel.

    Frames are added one at a time so the whole video never sits in memory.
    """

    def __init__(self, height: int, width: int):
        self.best = np.zeros((height, width), dtype=np.float32)
        self.image = np.zeros((height, width, 3), dtype=np.uint8)

    def add(self, rgb: UInt8[np.ndarray, "H W 3"], background: Bool[np.ndarray, "H W"]) -> None:
        dist = cv2.distanceTransform(background.astype(np.uint8), cv2.DIST_L2, 5)
        better = dist > self.best
        self.best[better] = dist[better]
        self.image[better] = rgb[better]

    def result(self) -> UInt8[np.ndarray, "H W 3"]:
        """The background, with never-seen pixels filled from the nearest seen one."""
        seen = self.best > MIN_DISTANCE
        if not seen.any():
            seen = self.best > 0
        if not seen.any():
            return self.image.copy()
        _, (rows, cols) = ndimage.distance_transform_edt(~seen, return_indices=True)
        return self.image[rows, cols]


def sample_indices(num_frames: int, max_frames: int) -> np.ndarray:
    """Evenly spread frame indices (the background barely changes, so a subset is enough)."""
    return np.unique(np.linspace(0, num_frames - 1, min(num_frames, max_frames)).round().astype(int))


def estimate_background(
    frames: Iterable[tuple[np.ndarray, np.ndarray]], height: int, width: int, progress: Callable = iter
) -> UInt8[np.ndarray, "H W 3"]:
    """Background from (RGB frame, background mask) pairs."""
    acc = BackgroundAccumulator(height, width)
    for rgb, mask in progress(frames):
        acc.add(rgb, mask)
    return acc.result()
