"""`crop.json`: where in the input video the training frames were cut from, so renders can be pasted back.

`ernerf-process` writes it; ER-NeRF's own preprocessing does not, so a folder may lack it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

from ernerf_ns.layout.errors import DatasetError
from ernerf_ns.layout.folder import PortraitFolder

CROP_FILE = PortraitFolder(".").crop_record.name


@dataclass(frozen=True)
class CropRecord:
    """How the frames relate to the input video (written as crop.json)."""

    video_size: tuple[int, int]
    """Input frame width and height (pixels)."""
    crop: Optional[tuple[int, int, int, int]]
    """x, y, w, h of the cut in input pixels; None when the whole frame is used."""
    frame_size: tuple[int, int]
    """Width and height of the written frames."""

    def save(self, folder: Path) -> None:
        """Write the record into the dataset folder `folder`."""
        PortraitFolder(folder).crop_record.write_text(json.dumps(asdict(self), indent=2))


def read_crop_record(folder: Path) -> CropRecord:
    """The dataset folder's crop.json, checked: sizes positive, the cut overlapping the video."""
    path = PortraitFolder(folder).crop_record
    if not path.is_file():
        raise DatasetError(
            f"{path}: not found, so where the training frames were cut from the video is unknown (the dataset was "
            "not cut by ernerf-process, or by an older ernerf-process); write it by hand as "
            '{"video_size": [W, H], "crop": [x, y, w, h] or null, "frame_size": [w, h]}'
        )
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise DatasetError(f"{path}: unreadable ({err})") from err
    if not isinstance(raw, dict) or not {"video_size", "crop", "frame_size"} <= raw.keys():
        raise DatasetError(f"{path}: expected keys 'video_size', 'crop' and 'frame_size'")
    video_size, frame_size = _pair(raw["video_size"], path, "video_size"), _pair(raw["frame_size"], path, "frame_size")
    crop = raw["crop"]
    if crop is not None:
        if not (isinstance(crop, list) and len(crop) == 4 and all(isinstance(v, int) for v in crop)):
            raise DatasetError(f"{path}: 'crop' should be null or [x, y, w, h] in pixels, got {crop!r}")
        x, y, w, h = crop
        if w <= 0 or h <= 0 or x >= video_size[0] or y >= video_size[1] or x + w <= 0 or y + h <= 0:
            raise DatasetError(f"{path}: crop {crop} does not overlap the {video_size[0]}x{video_size[1]} video")
        crop = (x, y, w, h)
    return CropRecord(video_size=video_size, crop=crop, frame_size=frame_size)


def _pair(value, path: Path, key: str) -> tuple[int, int]:
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) and v > 0 for v in value)):
        raise DatasetError(f"{path}: '{key}' should be [width, height] in pixels, got {value!r}")
    return value[0], value[1]
