"""Re-export of `ernerf_ns.layout.parsing` under its earlier path, which the side-by-side tooling in
`../shared/anchor/` (unpack.py) imports."""

from ernerf_ns.layout.parsing import (  # noqa: F401
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
