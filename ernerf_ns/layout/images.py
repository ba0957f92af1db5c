"""The folder's images (`ori_imgs/`, `gt_imgs/`, `torso_imgs/`, `bc.jpg`): checked from headers and tails.

The dataparser checks every image on each ns-train/ns-eval/ns-viewer start, so it reads no pixels.
"""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

from ernerf_ns.layout.errors import DatasetError

_END_MARKERS = {"JPEG": b"\xff\xd9", "PNG": b"IEND\xaeB`\x82"}
"""The bytes a complete file of each format ends with: JPEG's end-of-image marker, PNG's IEND chunk and its CRC."""
_TAIL_BYTES = 32
"""How much of a file's end is searched for its end marker (a few writers pad after JPEG's FF D9)."""


def read_image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image file, read from its header; a missing, empty, non-image or truncated file raises.

    Pixels are not decoded: a file cut short is caught by its missing end marker (JPEG's FF D9, PNG's IEND),
    so checking thousands of frames costs milliseconds, not a decode each.
    """
    try:
        with path.open("rb") as file:
            length = file.seek(0, os.SEEK_END)
            if length == 0:
                raise DatasetError(f"{path}: empty file (0 bytes), not an image")
            file.seek(0)
            try:
                with Image.open(file) as image:
                    size, kind = image.size, image.format
            except Exception as err:  # PIL raises OSError, SyntaxError, struct.error, ... for a broken header
                raise DatasetError(f"{path}: not an image PIL can read ({type(err).__name__})") from err
            file.seek(max(length - _TAIL_BYTES, 0))
            tail = file.read()
    except FileNotFoundError as err:
        raise DatasetError(f"{path}: image not found") from err
    except IsADirectoryError as err:
        raise DatasetError(f"{path}: is a folder, not an image") from err
    marker = _END_MARKERS.get(kind or "")
    if marker is not None and marker not in tail:
        raise DatasetError(f"{path}: truncated {kind} file (no end marker; {length} bytes)")
    return size
