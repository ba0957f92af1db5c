"""LMD over an evaluation set: per-image terms whose plain averages give the mean over found faces.

Nerfstudio averages every per-image metric over all images, and a frame where no face is found has no
distance. Each image therefore reports whether a face was found and its distance (and squared distance)
or zeros; from the averages, `summarise_lmd` recovers the mean (and spread) over the found frames alone.
"""

from __future__ import annotations

import math
from typing import Dict, Optional

FOUND, DISTANCE, SQUARED = "lmd_face_found", "lmd_distance", "lmd_distance_squared"
"""Per-image keys: 1 or 0; the distance in pixels or 0; its square or 0."""


def lmd_terms(distance: Optional[float]) -> Dict[str, float]:
    """One image's LMD terms; `distance` is None when a face was not found in the render or the frame."""
    if distance is None:
        return {FOUND: 0.0, DISTANCE: 0.0, SQUARED: 0.0}
    return {FOUND: 1.0, DISTANCE: float(distance), SQUARED: float(distance) ** 2}


def summarise_lmd(metrics: Dict[str, float], with_std: bool = False) -> Dict[str, float]:
    """`metrics` (averages over the images) with the LMD terms replaced by `lmd` (and `lmd_std`), the mean
    (and standard deviation) over the frames where both faces were found, and `lmd_faces_found`, their share.

    With no face found there is no LMD: the key is left out rather than set to NaN, which is not valid JSON
    (ns-eval writes these numbers to a .json file).
    """
    if FOUND not in metrics:
        return metrics
    summary = {key: value for key, value in metrics.items() if not key.startswith((FOUND, DISTANCE, SQUARED))}
    found = metrics[FOUND]
    summary["lmd_faces_found"] = found
    if found > 0:
        mean = metrics[DISTANCE] / found
        summary["lmd"] = mean
        if with_std:
            summary["lmd_std"] = math.sqrt(max(metrics[SQUARED] / found - mean**2, 0.0))
    return summary
