"""The square cut around the speaker's head, chosen by hand or from face detections (its record, `crop.json`,
is written and read by `ernerf_ns.layout.crop`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ernerf_ns.process.errors import ProcessError

HEAD_TO_CROP = 3.2
"""Crop side / face-detector box height: leaves room for hair, neck and shoulders, like ER-NeRF's clips."""
HEAD_DROP = 0.35
"""How far below the face centre the crop is centred, in face heights (the torso is below the head)."""


def parse_crop(spec: str) -> str | tuple[int, int, int, int] | None:
    """'none' → None, 'auto' → 'auto', 'x,y,w,h' → a tuple of ints."""
    spec = spec.strip().lower()
    if spec in ("", "none"):
        return None
    if spec == "auto":
        return "auto"
    parts = spec.split(",")
    try:
        values = tuple(int(v) for v in parts)
    except ValueError:
        values = ()
    if len(values) != 4 or values[2] <= 0 or values[3] <= 0 or values[0] < 0 or values[1] < 0:
        raise ProcessError(f"--crop {spec!r}: expected 'none', 'auto' or 'x,y,w,h' with w, h > 0")
    return values  # type: ignore[return-value]


def check_crop(crop: tuple[int, int, int, int], width: int, height: int, source: Path) -> None:
    """Raise unless the cut lies inside a width × height frame."""
    x, y, w, h = crop
    if x + w > width or y + h > height:
        raise ProcessError(f"{source}: --crop {x},{y},{w},{h} reaches outside the {width}x{height} frame")


def auto_crop(boxes: list[tuple[float, float, float, float]], width: int, height: int) -> tuple[int, int, int, int]:
    """A square around all the face boxes seen, sized for head and shoulders and kept inside the frame.

    boxes: one face box (x, y, w, h) per sampled frame. The side shrinks to the frame's short side when
    the head fills the frame (an already framed portrait keeps its whole width or height).
    """
    if not boxes:
        raise ValueError("no face boxes to crop around")
    arr = np.asarray(boxes, dtype=np.float64)
    centres = arr[:, :2] + arr[:, 2:] / 2
    face = float(np.median(arr[:, 3]))
    spread = centres.max(0) - centres.min(0)
    side = HEAD_TO_CROP * face + float(spread.max())
    side = int(min(round(side), width, height)) // 2 * 2
    cx = float(np.median(centres[:, 0]))
    cy = float(np.median(centres[:, 1])) + HEAD_DROP * face
    x = int(round(np.clip(cx - side / 2, 0, width - side)))
    y = int(round(np.clip(cy - side / 2, 0, height - side)))
    return x, y, side, side
