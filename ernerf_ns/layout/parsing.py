"""`parsing/<i>.png`: a frame's head / neck / torso / background labels in ER-NeRF's colour code.

The colours and their reader and writer live in `ernerf_ns.data.parsing_colours` (which other modules import
too); this module is their place in the folder format.
"""

from __future__ import annotations

from ernerf_ns.data.parsing_colours import (
    BACKGROUND,
    COLOURS,
    HEAD,
    NECK,
    TORSO,
    colourise,
    labels_from_colours,
    read_parsing,
    write_parsing,
)

__all__ = [
    "BACKGROUND",
    "COLOURS",
    "HEAD",
    "NECK",
    "TORSO",
    "colourise",
    "labels_from_colours",
    "read_parsing",
    "write_parsing",
]
