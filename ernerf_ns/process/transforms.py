"""`transforms_train.json` / `transforms_val.json` in ER-NeRF's layout and split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from jaxtyping import Float


def split_index(num_frames: int) -> int:
    """ER-NeRF's split: the first int(N * 10 / 11) frames train, the rest validate."""
    return int(num_frames * 10 / 11)


def write_transforms(
    folder: Path, camera_to_head: Float[np.ndarray, "frames 4 4"], focal: float, width: int, height: int
) -> tuple[int, int]:
    """Write both json files (focal_len, cx, cy and per-frame img_id / aud_id / transform_matrix).

    Returns the number of train and val frames.
    """
    split = split_index(len(camera_to_head))
    for name, ids in (("train", range(0, split)), ("val", range(split, len(camera_to_head)))):
        data = {
            "focal_len": float(focal),
            "cx": float(width / 2.0),
            "cy": float(height / 2.0),
            "frames": [
                {"img_id": i, "aud_id": i, "transform_matrix": camera_to_head[i].astype(float).tolist()} for i in ids
            ],
        }
        (folder / f"transforms_{name}.json").write_text(json.dumps(data, indent=2))
    return split, len(camera_to_head) - split
