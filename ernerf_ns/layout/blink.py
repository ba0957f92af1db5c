"""`au.csv`: OpenFace's action-unit csv, of which ER-NeRF reads only the ' AU45_r' column (blink intensity).

ER-NeRF conditions the eyes on clip(AU45_r, 0, AU45_CLOSED) / AU45_CLOSED; row k is frame k.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
from jaxtyping import Float

from ernerf_ns.audio.windows import VIDEO_FPS
from ernerf_ns.layout.errors import DatasetError

AU45_CLOSED = 2.0
"""AU45 intensity (OpenFace's range is 0..5) at which ER-NeRF takes the eyes as closed: the top of its range."""


def write_au_csv(path: Path, au45: Float[np.ndarray, " frames"], fps: float = VIDEO_FPS) -> None:
    """OpenFace-style csv with its ', ' separator (ER-NeRF indexes ' AU45_r'); frames numbered from 1."""
    lines = ["frame, timestamp, confidence, success, AU45_r"]
    for i, value in enumerate(au45):
        lines.append(f"{i + 1}, {i / fps:.3f}, 0.98, 1, {value:.2f}")
    path.write_text("\n".join(lines) + "\n")


def read_blink(path: Path) -> Float[np.ndarray, " frames"]:
    """Read OpenFace's ' AU45_r' column (blink intensity 0..5, ER-NeRF clips it to 0..2); row k is frame k."""
    with path.open(newline="") as file:
        reader = csv.reader(file)
        values = []
        try:
            try:
                header = [name.strip() for name in next(reader)]
            except StopIteration as err:
                raise DatasetError(f"{path}: empty csv") from err
            if "AU45_r" not in header:
                raise DatasetError(f"{path}: no ' AU45_r' column (OpenFace action-unit csv expected)")
            column = header.index("AU45_r")
            for row in reader:
                if not row:
                    continue
                frame, line = len(values), reader.line_num
                text = row[column].strip() if column < len(row) else ""
                try:
                    value = float(text)
                except ValueError:
                    value = math.nan
                if not math.isfinite(value):
                    raise DatasetError(
                        f"{path}: AU45_r of frame {frame} (line {line}) is {text!r}; expected a finite number"
                    )
                values.append(value)
        except (csv.Error, UnicodeDecodeError) as err:
            raise DatasetError(f"{path}: not a csv file ({err})") from err
    return np.array(values, dtype=np.float32)


def eye_openness(au45: Float[np.ndarray, " frames"], smooth_window: int = 3) -> Float[np.ndarray, " frames"]:
    """ER-NeRF's eye conditioning: clip(AU45_r, 0, 2) / 2, averaged over a small centred window."""
    eye = np.clip(au45, 0.0, AU45_CLOSED) / AU45_CLOSED
    if smooth_window > 1 and len(eye) > 1:
        # ER-NeRF's --smooth_eye: the window is cut short at the clip ends, not padded.
        half = smooth_window // 2
        sums = np.concatenate([[0.0], np.cumsum(eye, dtype=np.float64)])
        index = np.arange(len(eye))
        lo, hi = np.maximum(index - half, 0), np.minimum(index + smooth_window - half, len(eye))
        eye = (sums[hi] - sums[lo]) / (hi - lo)
    return eye.astype(np.float32)
