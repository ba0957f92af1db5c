"""Pasting renders back into the original video's full-size frames (`ernerf-render --portrait`).

`ernerf-process --crop` cuts a box around the speaker and resizes it to the training frames, recording
the cut in the dataset's crop.json. Undoing that (resize the render to the box, put it where the box
was) returns the talking head to the shot the user filmed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, Iterator, Optional

import cv2
import numpy as np
from jaxtyping import Float, UInt8

from ernerf_ns.errors import UserError
from ernerf_ns.layout import crop as layout_crop
from ernerf_ns.layout.crop import CROP_FILE, CropRecord
from ernerf_ns.layout.errors import DatasetError

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")
"""Image files read from the --portrait folder."""


class PortraitError(UserError, ValueError):
    """The dataset's crop record or the full-frame folder cannot be used; the message names the file."""


# -- pure pasting ----------------------------------------------------------------------------------
def feather_weights(
    width: int, height: int, feather: int, seams: tuple[bool, bool, bool, bool]
) -> Float[np.ndarray, "height width"]:
    """Weight of the pasted image per pixel of a width × height box: 1 inside, ramping down at its seams.

    seams: whether the left, top, right and bottom edges lie inside the frame. Edges on the frame's own
    border are no seam, so they are not faded. The ramp is (d + 1) / (feather + 1) for the pixel d
    pixels in from a seam, so the outermost row still shows some render and the fade stays inside the box.
    """
    left, top, right, bottom = seams
    return np.minimum(_ramp(height, feather, top, bottom)[:, None], _ramp(width, feather, left, right)[None, :])


def _ramp(size: int, feather: int, start: bool, end: bool) -> Float[np.ndarray, " size"]:
    ramp = np.ones(size, np.float32)
    if feather <= 0:
        return ramp
    rising = np.minimum(1.0, (np.arange(size, dtype=np.float32) + 1) / (feather + 1))
    if start:
        ramp = np.minimum(ramp, rising)
    if end:
        ramp = np.minimum(ramp, rising[::-1])
    return ramp


def resize_image(image: UInt8[np.ndarray, "h w 3"], width: int, height: int) -> UInt8[np.ndarray, "height width 3"]:
    """`image` at width × height: area averaging when shrinking (no aliasing), bicubic when enlarging."""
    if image.shape[1] == width and image.shape[0] == height:
        return image
    shrink = width < image.shape[1] and height < image.shape[0]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def paste_back(
    frame: UInt8[np.ndarray, "H W 3"],
    render: UInt8[np.ndarray, "h w 3"],
    crop: Optional[tuple[int, int, int, int]],
    feather: int = 0,
) -> UInt8[np.ndarray, "H W 3"]:
    """`frame` with `render` resized to the crop (x, y, w, h) and put in its place; a new array.

    The parts of the crop outside the frame are clipped. crop None means the frames were the whole
    video frame, so the result is the render resized to the frame. `feather` > 0 fades the render into
    the frame over that many pixels inside each crop edge that lies within the frame, hiding the seam.
    """
    height, width = frame.shape[:2]
    x, y, w, h = crop if crop is not None else (0, 0, width, height)
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, width), min(y + h, height)
    out = frame.copy()
    if x0 >= x1 or y0 >= y1:
        return out
    patch = resize_image(render, w, h)[y0 - y : y1 - y, x0 - x : x1 - x]
    seams = (x > 0, y > 0, x + w < width, y + h < height)
    weight = feather_weights(w, h, feather, seams)[y0 - y : y1 - y, x0 - x : x1 - x, None]
    if np.all(weight == 1):
        out[y0:y1, x0:x1] = patch
        return out
    blend = weight * patch.astype(np.float32) + (1 - weight) * frame[y0:y1, x0:x1].astype(np.float32)
    out[y0:y1, x0:x1] = np.clip(np.round(blend), 0, 255).astype(np.uint8)
    return out


# -- files -----------------------------------------------------------------------------------------
def read_crop_record(dataset: Path) -> CropRecord:
    """The dataset's crop.json (`layout.crop`), its problems reported as this module's `PortraitError`."""
    try:
        return layout_crop.read_crop_record(dataset)
    except DatasetError as err:
        raise PortraitError(str(err)) from err


def _natural_key(path: Path) -> list:
    # "2.jpg" before "10.jpg": ER-NeRF and ffmpeg's %d name frames without zero padding.
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def list_full_frames(folder: Path) -> list[Path]:
    """The image files in `folder` in frame order (numbers in names compare as numbers)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PortraitError(f"{folder}: --portrait folder not found")
    frames = sorted((p for p in folder.iterdir() if p.suffix.lower() in FRAME_SUFFIXES), key=_natural_key)
    if not frames:
        raise PortraitError(f"{folder}: no {'/'.join(FRAME_SUFFIXES)} frames in the --portrait folder")
    return frames


def read_full_frame(path: Path, video_size: tuple[int, int]) -> UInt8[np.ndarray, "H W 3"]:
    """One original frame as RGB; raise unless it has the video size crop.json records."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise PortraitError(f"{path}: not a readable image")
    height, width = image.shape[:2]
    if (width, height) != tuple(video_size):
        raise PortraitError(
            f"{path}: {width}x{height}, but {CROP_FILE} says the video was {video_size[0]}x{video_size[1]}; "
            "--portrait wants the original video's frames, not the dataset's"
        )
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def paste_into_full_frames(
    renders: Iterable[UInt8[np.ndarray, "h w 3"]],
    frame_ids: np.ndarray,
    full_frames: list[Path],
    record: CropRecord,
    feather: int = 0,
) -> Iterator[UInt8[np.ndarray, "H W 3"]]:
    """Yield render i pasted into full frame `frame_ids[i] mod len(full_frames)`."""
    cached_index, cached = -1, None
    for render, frame_id in zip(renders, frame_ids, strict=True):
        index = int(frame_id) % len(full_frames)
        if index != cached_index:  # static poses reuse one frame: read it once
            cached_index, cached = index, read_full_frame(full_frames[index], record.video_size)
        yield paste_back(cached, render, record.crop, feather)
